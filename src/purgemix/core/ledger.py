"""The run ledger: every input row is accounted for exactly once.

    rows read = quarantined + ingested
    ingested  = kept (in the output) + rewritten + merged (into a named record) + dropped (reason)

New records (``created`` events: fused pairs, distilled clusters) must name parents that exist,
and every output record must be an ingested or a created one. ``check_ledger`` rebuilds the
balance from the run's shards and events, independently of the counters the stages reported.

Ids are compared as 64-bit hashes in sorted numpy arrays (8 bytes per record), so checking a run
of millions of records takes little memory; ids are turned back into text only to name problems.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .ids import hash_ids, id_hash, isin_sorted
from .rundir import RunDir

OUTCOME_CODES = {"dropped": 1, "merged": 2, "rewritten": 3}
OUTCOME_NAMES = {v: k for k, v in OUTCOME_CODES.items()}


class LedgerError(Exception):
    """The ledger of a run does not balance: a bug, never a user error."""


def _union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted distinct values of both (``np.union1d`` by sorting: numpy 2.x's hash-table unique takes
    0.7 s on a million 64-bit hashes, a sort 0.05 s)."""
    s = np.sort(np.concatenate([a, b]))
    return s[np.concatenate([[True], s[1:] != s[:-1]])] if s.size > 1 else s


def _repeated(a: np.ndarray) -> np.ndarray:
    s = np.sort(a)
    return np.unique(s[1:][s[1:] == s[:-1]])


def check_ledger(run: RunDir, executor: Any = None) -> dict[str, Any]:
    """The balance of a run; ``executor`` (``map_shards``): where the shards' events are read."""
    problems: list[str] = []
    stages = run.stage_dirs()
    if not stages:
        return {"balanced": False, "problems": [f"{run.path}: no stages (not a purgemix run directory?)"],
                "problem_count": 1, "inputs": 0, "outputs": 0, "merged": 0, "rewritten": 0}
    incomplete = [s.path.name for s in stages if not s.complete]
    if incomplete:
        problems.append(f"incomplete stages: {', '.join(incomplete)} (re-run the command to finish)")
        stages = [s for s in stages if s.complete]
    if not stages:
        return {"balanced": False, "problems": problems, "problem_count": len(problems), "inputs": 0,
                "outputs": 0, "merged": 0, "rewritten": 0}
    ingest = stages[0]
    rows_read = quarantined = 0
    chunks = []
    for i in range(ingest.info()["shards"]):
        rows_read += ingest.done_info(i)["in"]
        quarantined += sum(1 for e in ingest.read_events(i) if e["outcome"] == "quarantined")
        chunks.append(ingest.read_id_hashes(i))
    inputs = np.sort(np.concatenate(chunks)) if chunks else np.empty(0, np.int64)
    suspects: list[tuple[str, np.ndarray]] = []  # (problem template, hashes) named at the end
    if len(rep := _repeated(inputs)):
        suspects.append(("id {} ingested twice", rep))

    tasks = [((str(stage.path), i), {}) for stage in stages[1:] for i in range(stage.info()["shards"])]
    # each shard's events are read and hashed where the shards are processed (in the workers, when a
    # pool is there); the driver only joins the arrays
    parts = executor.map_shards(_shard_outcomes, tasks) if executor is not None else \
        (_shard_outcomes(*a) for a, _ in tasks)
    parts = list(parts)
    reasons: dict[tuple[str, str], int] = {}
    reason_l = []
    for part in parts:
        problems.extend(part["problems"])
        remap = np.array([reasons.setdefault(tuple(k), len(reasons)) for k in part["reasons"]] or [0], np.int32)
        reason_l.append(remap[part["reason_idx"]])
    created_h, parents_h, parentless, term, into = (_join(parts, k) for k in ("created", "parents", "parentless",
                                                                               "term", "into"))
    codes = _join(parts, "codes", np.int8)
    reason_idx = np.concatenate(reason_l) if reason_l else np.empty(0, np.int32)
    created = np.sort(created_h)
    if len(rep := _repeated(created)):
        suspects.append(("created id {} created twice", rep))
    if len(clash := created[isin_sorted(created, inputs)]):
        suspects.append(("created id {} is also an input id", clash))
    if len(parentless):
        suspects.append(("created id {} names no parents", parentless))
    known = _union(inputs, created)
    if len(missing := np.unique(parents_h[~isin_sorted(parents_h, known)])):
        suspects.append(("a created record names unknown parent {}", missing))

    if len(rep := _repeated(term)):
        suspects.append(("id {} has two outcomes", rep))
    if len(unknown := np.unique(term[~isin_sorted(term, known)])):
        suspects.append(("an event names unknown id {}", unknown))
    if len(bad_into := np.unique(into[~isin_sorted(into, known)])):
        suspects.append(("a record was merged or rewritten into unknown id {}", bad_into))

    last = stages[-1]
    if last.path.name.endswith("-export") and (last.path / "output_ids.npy").exists():
        outputs = np.load(last.path / "output_ids.npy")
    elif len(stages) > 1:
        outputs = np.concatenate([last.read_id_hashes(i) for i in range(last.info()["shards"])] or
                                 [np.empty(0, np.int64)])
    else:
        outputs = inputs
    outputs = np.sort(outputs)
    if len(rep := _repeated(outputs)):
        suspects.append(("id {} appears twice in the output", rep))
    if len(stray := np.unique(outputs[~isin_sorted(outputs, known)])):
        suspects.append(("output id {} is neither an input nor a created record", stray))
    term_sorted = np.sort(term)
    if len(both := np.unique(term[isin_sorted(term, outputs)])):
        suspects.append(("id {} is in the output but also dropped/merged/rewritten", both))
    accounted = _union(outputs, term_sorted)
    if len(vanished := inputs[~isin_sorted(inputs, accounted)]):
        suspects.append(("input id {} vanished: not in the output and no outcome recorded", vanished))
    if len(vanished_c := created[~isin_sorted(created, accounted)]):
        suspects.append(("created id {} vanished: not in the output and no outcome recorded", vanished_c))

    of_inputs = isin_sorted(term, inputs)
    by_outcome = Counter(OUTCOME_NAMES[int(c)] for c in codes[of_inputs])
    reason_names = {v: f"{stage}:{reason}" for (stage, reason), v in reasons.items()}
    dropped_by_reason = Counter(
        reason_names[int(r)] for r, c in zip(reason_idx[of_inputs], codes[of_inputs]) if c == OUTCOME_CODES["dropped"]
    )
    kept = int(isin_sorted(inputs, outputs).sum())
    ingested = len(inputs)
    if rows_read != quarantined + ingested:
        problems.append(f"rows read {rows_read} != quarantined {quarantined} + ingested {ingested}")
    total = kept + by_outcome["dropped"] + by_outcome["merged"] + by_outcome["rewritten"]
    if ingested != total:
        problems.append(f"ingested {ingested} != kept {kept} + dropped {by_outcome['dropped']} + merged "
                        f"{by_outcome['merged']} + rewritten {by_outcome['rewritten']}")
    if suspects:
        problems.extend(_name_problems(stages, suspects))
    return {
        "balanced": not problems,
        "inputs": rows_read,
        "quarantined": quarantined,
        "ingested": ingested,
        "kept": kept,
        "dropped": by_outcome["dropped"],
        "dropped_by_reason": dict(dropped_by_reason),
        "merged": by_outcome["merged"],
        "rewritten": by_outcome["rewritten"],
        "created": len(created),
        "created_in_output": int(isin_sorted(created, outputs).sum()),
        "created_dropped": int(isin_sorted(created, term_sorted).sum()),
        "outputs": len(outputs),
        "problems": problems[:100],
        "problem_count": len(problems),
    }


def _join(parts: list[dict[str, Any]], key: str, dtype: Any = np.int64) -> np.ndarray:
    return np.concatenate([p[key] for p in parts]) if parts else np.empty(0, dtype)


def _shard_outcomes(stage_path: str, index: int) -> dict[str, Any]:
    """One stage shard's events as hash arrays: created ids, their parents, the parentless ones, the ids
    that ended (dropped, merged, rewritten) with their outcome codes and reasons, and merge/rewrite targets."""
    from pathlib import Path

    from .rundir import StageDir

    stage = StageDir(Path(stage_path))
    created, parents, parentless, term, codes, reason_idx, into = [], [], [], [], [], [], []
    reasons: dict[tuple[str, str], int] = {}
    problems = []
    for e in stage.read_events(index, records=False):  # ids and outcomes only: no record bodies to decode
        outcome = e["outcome"]
        if outcome == "created":
            created.append(e["id"])
            ps = e.get("parents") or []
            if not ps:
                parentless.append(e["id"])
            parents.extend(ps)
        elif outcome in OUTCOME_CODES:
            term.append(e["id"])
            codes.append(OUTCOME_CODES[outcome])
            key = (e.get("stage", stage.path.name), str(e.get("reason", "?")))
            reason_idx.append(reasons.setdefault(key, len(reasons)))
            if outcome in ("merged", "rewritten"):
                into.append(e.get("into", ""))
        else:
            problems.append(f"{stage.path.name}: unknown outcome '{outcome}'")
    return {"created": hash_ids(created), "parents": hash_ids(parents), "parentless": hash_ids(parentless),
            "term": hash_ids(term), "codes": np.array(codes, dtype=np.int8),
            "reason_idx": np.array(reason_idx, dtype=np.int32), "reasons": list(reasons),
            "into": hash_ids(into), "problems": problems}


def _name_problems(stages, suspects: list[tuple[str, np.ndarray]], per_problem: int = 5) -> list[str]:
    """Turn problem hashes back into ids (a second pass, only when something is wrong)."""
    wanted = {int(h) for _, hs in suspects for h in hs[:per_problem]}
    names: dict[int, str] = {}

    def note(rid: str) -> None:
        h = id_hash(rid)
        if h in wanted:
            names[h] = rid

    ingest = stages[0]
    for i in range(ingest.info()["shards"]):
        for rid in ingest.read_ids(i):
            note(rid)
    for stage in stages[1:]:
        for e in stage.iter_events(records=False):  # ids and outcomes only: no record bodies to decode
            note(e["id"])
            for p in e.get("parents") or []:
                note(p)
            if "into" in e:
                note(e["into"])
    out = []
    for template, hs in suspects:
        shown = ", ".join(names.get(int(h), f"#{int(h) & 0xFFFFFFFF:08x}") for h in hs[:per_problem])
        more = f" (and {len(hs) - per_problem} more)" if len(hs) > per_problem else ""
        out.append(template.format(shown) + more)
    return out
