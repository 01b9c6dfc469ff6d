"""Purge quality: inject known noise into clean data and measure precision and recall per noise type.

    python benchmarks/purge_quality.py [DATA.json ...] [--rate 0.03] [--seed 0] [--rules FILE]

Default data: ../shared/data/gpteacher_roleplay.json and dolly_3k.json (skipped when absent).
Each clean file gets ``rate`` of its records corrupted by every noise type of ``purgemix.text.degrade``
(disjoint subsets; duplicates are appended), then the default purge runs on the noisy file.

recall(T)     injected records of type T that the purge dropped (for duplicate types: the pair was
              resolved, i.e. the copy or its original was dropped as a duplicate of the other)
precision(T)  records dropped by a rule of T's family that were injected noise of any type
              (duplicate family: the dropped record or its ``duplicate_of`` belongs to an injected pair)
clean drop    untouched clean records dropped by any rule (the originals of injected pairs that were
              resolved as duplicates are not counted)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from purgemix.core.pipeline import InputSpec  # noqa: E402
from purgemix.core.shapes import Converter, export  # noqa: E402
from purgemix.evaluate.detection import DETECTED_BY as FAMILIES, MECHANICAL, evaluate_detection as evaluate  # noqa: E402
from purgemix.recipe.verbs import run_purge  # noqa: E402
from purgemix.text.degrade import inject  # noqa: E402

DEFAULT_DATA = ["gpteacher_roleplay.json", "dolly_3k.json"]


def load_records(path: Path, tag: str) -> list[dict]:
    data = orjson.loads(path.read_bytes())
    conv = Converter(tag, {}, None)
    out = []
    for i, obj in enumerate(data):
        r = conv(obj)
        r["id"] = f"{tag}-{i}"
        out.append(r)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", nargs="*")
    ap.add_argument("--rate", type=float, default=0.03)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rules", default=None)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--show", type=int, default=0, help="print N missed / wrongly dropped examples per type")
    args = ap.parse_args()
    os.environ.setdefault("PURGEMIX_NO_PROGRESS", "1")
    shared = ROOT.parent / "shared" / "data"
    paths = [Path(p) for p in args.data] or [shared / n for n in DEFAULT_DATA if (shared / n).exists()]
    if not paths:
        print("no data: pass clean JSON files (e.g. ../shared/data/dolly_3k.json)")
        return 0
    records = []
    for p in paths:
        records += load_records(p, p.stem)
    noisy, labels = inject(records, rate=args.rate, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="purge-quality-") as tmp:
        # one noisy file per clean dataset: each is its own source, as separate inputs would be
        specs = []
        for p in paths:
            src = Path(tmp) / f"{p.stem}.noisy.jsonl"
            src.write_bytes(b"".join(orjson.dumps(export(r, "messages"), option=orjson.OPT_APPEND_NEWLINE)
                                     for r in noisy if r["source"] == p.stem))
            specs.append(InputSpec(str(src)))
        t0 = time.perf_counter()
        summary = run_purge(specs, str(Path(tmp) / "kept.jsonl"), rules=args.rules,
                        run_dir=Path(tmp) / "run", workers=args.workers)
        elapsed = time.perf_counter() - t0
        dropped = {}
        examples = {}
        for line in Path(summary["outputs"]["dropped"]).read_bytes().splitlines():
            d = orjson.loads(line)
            dropped[d["id"]] = (d["purge"]["rules"], d["purge"].get("duplicate_of"))
            examples[d["id"]] = d
    res = evaluate(noisy, labels, dropped)
    print(f"data: {', '.join(str(p) for p in paths)}; {len(records)} clean records, {len(labels)} noisy "
          f"({args.rate:.0%} per type, seed {args.seed}); purge took {elapsed:.1f}s")
    print(f"{'noise type':16} {'injected':>8} {'recall':>7} {'flagged':>8} {'precision':>9}  mechanical")
    ok = True
    for t, row in res["types"].items():
        rec = "-" if row["recall"] is None else f"{row['recall']:.3f}"
        pre = "-" if row["precision"] is None else f"{row['precision']:.3f}"
        mech = t in MECHANICAL
        if mech and ((row["recall"] or 0) < 0.9 or (row["precision"] or 0) < 0.9):
            ok = False
        print(f"{t:16} {row['injected']:>8} {rec:>7} {row['flagged']:>8} {pre:>9}  {'yes' if mech else ''}")
    print(f"clean records dropped: {res['clean_dropped']}/{res['clean']} = {res['clean_drop_rate']:.2%} "
          f"(by rule: {dict(res['clean_dropped_by_rule'].most_common())})")
    ok = ok and res["clean_drop_rate"] <= 0.05
    print("acceptance (P and R >= 0.9 on mechanical types, clean drop <= 5%):", "PASS" if ok else "FAIL")
    if args.show:
        by_id = {r["id"]: r for r in noisy}
        for t in FAMILIES:
            miss = [i for i, lab in labels.items() if lab["type"] == t and i not in dropped][: args.show]
            for i in miss:
                r = by_id[i]
                print(f"MISSED {t}: {labels[i]} | {r['messages'][0]['content'][:80]!r} -> "
                      f"{r['messages'][-1]['content'][-200:]!r}")
        per_rule = Counter()
        clean_dropped = []
        for i in dropped:
            if i in labels or dropped[i][1] is not None:
                continue
            first = dropped[i][0][0]
            per_rule[first] += 1
            if per_rule[first] <= args.show:
                clean_dropped.append(i)
        for i in clean_dropped:
            d = examples[i]
            print(f"CLEAN DROPPED {d['purge']['rules']} {d['purge'].get('values')} | "
                  f"{d['messages'][0]['content'][:80]!r} -> {d['messages'][-1]['content'][-200:]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
