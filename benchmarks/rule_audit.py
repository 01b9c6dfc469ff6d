"""Precision of each purge rule on real data, against the hand-labelled audit set ``benchmarks/audit/``.

    python benchmarks/rule_audit.py [--rules FILE] [--data-dir ../shared/data]

Runs the default purge (or ``--rules``) on each shared file the audit covers, then, for every audited
record, compares today's decision with the label. A drop labelled "correct" that is still dropped by the
same rule counts for the rule; one that a rule no longer drops is a lost true drop (it counts against the
recall on real defects, shown as "lost"); a drop labelled "wrong" that is no longer dropped is a fixed
false positive. Precision per rule is over the audited drops the rule still makes. An audited keep that is
now dropped is a new decision without a label: counted, and listed so it can be labelled.

The audit holds positions and hashes only (no record text); a record whose hash no longer matches the
data file is reported and skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_result  # noqa: E402

AUDIT = HERE / "audit" / "purge_audit.jsonl"
DUP = ("exact-duplicate", "near-duplicate")


def current_drops(path: Path, rules: str | None, work: Path) -> dict[int, str]:
    """1-based item -> the rule that drops it today (duplicates left out: the audit labels rules)."""
    from purgemix.core.pipeline import InputSpec
    from purgemix.recipe.verbs import run_purge

    summary = run_purge([InputSpec(str(path))], str(work / f"{path.stem}.kept.jsonl"), rules=rules,
                        report_dir=work / f"rep-{path.stem}", run_dir=work / f"run-{path.stem}")
    dropped = Path(summary["outputs"]["dropped"])
    out = {}
    for line in dropped.read_text().splitlines():
        d = json.loads(line)
        reason = d["purge"]["reason"]
        if reason in DUP:
            continue
        out[int(d["lineage"]["ref"].rsplit(":", 1)[1])] = reason
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", default=None)
    ap.add_argument("--data-dir", default=str(HERE.parents[1] / "shared" / "data"))
    args = ap.parse_args()
    rows = [json.loads(line) for line in AUDIT.read_text().splitlines()]
    data = Path(args.data_dir)
    if not data.exists():
        print(f"skip: {data} not found")
        return
    work = Path(tempfile.mkdtemp(prefix="purgemix-audit-"))
    per_rule: dict[str, Counter] = defaultdict(Counter)
    new_drops: list[tuple[str, int, str]] = []
    stale = 0
    for file in sorted({r["file"] for r in rows}):
        raw = json.load(open(data / file))
        drops = current_drops(data / file, args.rules, work)
        for r in (x for x in rows if x["file"] == file):
            rec = raw[r["item"] - 1]
            text = f"{rec.get('instruction', '')}\n{rec.get('input', '') or ''}\n{rec.get('output', '')}"
            if hashlib.blake2b(text.encode(), digest_size=8).hexdigest() != r["blake2b"]:
                stale += 1
                continue
            now = drops.get(r["item"])
            if r["decision"] == "drop":
                c = per_rule[r["rule"]]
                c["audited"] += 1
                if now == r["rule"]:
                    c["still_" + r["verdict"]] += 1
                elif now is None:
                    c["fixed" if r["verdict"] == "wrong" else "lost"] += 1
                else:
                    c["moved"] += 1  # dropped by another rule now: no label for that rule
            elif now is not None:
                new_drops.append((file, r["item"], now))
    lines = ["| rule | audited drops | still dropped: correct | wrong | precision now | false drops fixed | "
             "true drops lost | moved to another rule |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    tot = Counter()
    for rule in sorted(per_rule, key=lambda k: -per_rule[k]["audited"]):
        c = per_rule[rule]
        tot.update(c)
        kept = c["still_correct"] + c["still_wrong"]
        prec = f"{c['still_correct'] / kept:.2f}" if kept else "-"
        lines.append(f"| {rule} | {c['audited']} | {c['still_correct']} | {c['still_wrong']} | {prec} | {c['fixed']} | "
                     f"{c['lost']} | {c['moved']} |")
    kept = tot["still_correct"] + tot["still_wrong"]
    lines.append(f"| **all** | {tot['audited']} | {tot['still_correct']} | {tot['still_wrong']} | "
                 f"{tot['still_correct'] / max(1, kept):.2f} | {tot['fixed']} | {tot['lost']} | {tot['moved']} |")
    lines += ["", f"Audited keeps now dropped (unlabelled new decisions): {len(new_drops)}"
              + "".join(f"\n- {f}:{i} by {rule}" for f, i, rule in new_drops[:20])]
    if stale:
        lines.append(f"\n{stale} audited records no longer match their data file (skipped).")
    text = "\n".join(lines)
    write_result("rule_audit", "Rule precision on the real-data audit set", text)


if __name__ == "__main__":
    main()
