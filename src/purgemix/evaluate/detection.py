"""How much of the injected noise (``text/degrade.py``) a purge caught: recall and precision per noise type.

Injected noise is a check of the rules' wiring, not a measure of data quality (that needs labels made by
others: ``evaluate/`` suites against a judge's labels and expert revisions). It lives in ``evaluate/`` because
it knows the default rule set's rule names, which the noise toolkit in ``text/`` must not.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Sequence

from ..core.record import Record

# The rules of the default rule set that catch each noise type.
DETECTED_BY = {
    "truncate": {"truncated-response", "ends-mid-sentence"},
    "repeat": {"repeated-lines", "repeated-ngrams"},
    "template": {"template-artefact", "unfilled-placeholder", "html-remnants"},
    "language": {"wrong-language-response", "wrong-language-instruction"},
    "empty": {"empty-response", "non-answer"},
    "duplicate": {"exact-duplicate", "near-duplicate"},
    "near_duplicate": {"exact-duplicate", "near-duplicate"},
    "echo": {"echoes-instruction"},
    "refusal": {"refusal", "ai-disclaimer"},
    "typos": set(),
}
MECHANICAL = ("truncate", "repeat", "template", "language", "empty", "duplicate", "near_duplicate")


def evaluate_detection(records: Sequence[Record], labels: dict[str, dict[str, Any]],
                       dropped: dict[str, tuple[list[str], str | None]]) -> dict[str, Any]:
    """Recall and precision of a purge per injected noise type.

    ``dropped`` maps a dropped id to (rules that fired, ``duplicate_of`` or None). recall(T): injected
    records of type T that were dropped (duplicate types: the pair was resolved, the copy or its original
    dropped as a duplicate of the other); precision(T): records dropped by a rule of T's family that were
    injected noise; clean drop: untouched records dropped by any rule."""
    by_type = defaultdict(set)
    pair_of = {}
    for rid, lab in labels.items():
        by_type[lab["type"]].add(rid)
        if "of" in lab:
            pair_of[rid] = lab["of"]
            pair_of.setdefault(lab["of"], rid)
    dup_reasons = DETECTED_BY["duplicate"]

    def resolved(copy_id):
        orig = pair_of[copy_id]
        for a, b in ((copy_id, orig), (orig, copy_id)):
            d = dropped.get(a)
            if d and set(d[0]) & dup_reasons and d[1] is not None:
                return True
        return False

    rows = {}
    for t, fam in DETECTED_BY.items():
        ids = by_type.get(t, set())
        if t in ("duplicate", "near_duplicate"):
            hits = sum(resolved(i) for i in ids)
        else:
            hits = sum(i in dropped for i in ids)
        flagged = [rid for rid, (rules, dup) in dropped.items() if set(rules) & fam]
        if t in ("duplicate", "near_duplicate"):
            mine = {i for i in ids} | {pair_of[i] for i in ids}
            flagged = [rid for rid in flagged if (rid in mine or dropped[rid][1] in mine)
                       or labels.get(rid, {}).get("type") in ("duplicate", "near_duplicate")
                       or labels.get(dropped[rid][1] or "", {}).get("type") in ("duplicate", "near_duplicate")]
            flagged_all = [rid for rid, (rules, dup) in dropped.items() if set(rules) & fam]
            good = len(flagged)
            n_flag = len(flagged_all)
        else:
            good = sum(1 for rid in flagged if rid in labels)
            n_flag = len(flagged)
        rows[t] = {"injected": len(ids), "recall": hits / len(ids) if ids else None,
                   "flagged": n_flag, "precision": good / n_flag if n_flag else None}
    pair_members = set(pair_of)
    clean = [r["id"] for r in records if r["id"] not in labels]
    clean_dropped = [i for i in clean if i in dropped and not (i in pair_members and set(dropped[i][0]) & dup_reasons)]
    return {"types": rows, "clean": len(clean), "clean_dropped": len(clean_dropped),
            "clean_drop_rate": len(clean_dropped) / max(1, len(clean)),
            "clean_dropped_by_rule": Counter(r for i in clean_dropped for r in dropped[i][0])}
