"""The run ledger: every input row is accounted for exactly once.

    rows read = quarantined + ingested
    ingested  = kept (in the output) + rewritten + merged (into a named record) + dropped (reason)

New records (``created`` events: fused pairs, distilled clusters) must name parents that exist,
and every output record must be an ingested or a created one. ``check_ledger`` rebuilds the
balance from the run's shards and events, independently of the counters the stages reported.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .rundir import RunDir, read_json


class LedgerError(Exception):
    """The ledger of a run does not balance: a bug, never a user error."""


def check_ledger(run: RunDir) -> dict[str, Any]:
    problems: list[str] = []
    stages = run.stage_dirs()
    if not stages:
        return {"balanced": False, "problems": [f"{run.path}: no stages (not a purgemix run directory?)"],
                "inputs": 0, "outputs": 0, "merged": 0, "rewritten": 0}
    incomplete = [s.path.name for s in stages if not s.complete]
    if incomplete:
        problems.append(f"incomplete stages: {', '.join(incomplete)} (re-run the command to finish)")
        stages = [s for s in stages if s.complete]
    ingest = stages[0]
    inputs: set[str] = set()
    rows_read = quarantined = 0
    for i in range(ingest.info()["shards"] if ingest.complete else 0):
        rows_read += ingest.done_info(i)["in"]
        quarantined += sum(1 for e in ingest.read_events(i) if e["outcome"] == "quarantined")
        for rid in ingest.read_ids(i):
            if rid in inputs:
                problems.append(f"id {rid} ingested twice")
            inputs.add(rid)

    created: dict[str, list[str]] = {}
    terminal: dict[str, dict[str, Any]] = {}
    for stage in stages[1:]:
        for e in stage.iter_events():
            outcome = e["outcome"]
            if outcome == "created":
                if e["id"] in created or e["id"] in inputs:
                    problems.append(f"{stage.path.name}: created id {e['id']} already exists")
                created[e["id"]] = list(e.get("parents", []))
            elif outcome in ("dropped", "merged", "rewritten"):
                if e["id"] in terminal:
                    problems.append(f"{stage.path.name}: id {e['id']} has two outcomes "
                                    f"({terminal[e['id']]['outcome']}, {outcome})")
                terminal[e["id"]] = e
            else:
                problems.append(f"{stage.path.name}: unknown outcome '{outcome}'")

    last = stages[-1]
    if last.path.name.endswith("-export") and (last.path / "output_ids.json").exists():
        outputs = read_json(last.path / "output_ids.json")
    else:
        outputs = ([rid for i in range(last.info()["shards"]) for rid in last.read_ids(i)]
                   if stages[1:] else sorted(inputs))
    out_set = set(outputs)
    if len(out_set) != len(outputs):
        problems.append(f"{len(outputs) - len(out_set)} duplicate ids in the output")

    known = inputs | created.keys()
    for rid in out_set - known:
        problems.append(f"output id {rid} is neither an input nor a created record")
    for rid, parents in created.items():
        missing = [p for p in parents if p not in known]
        if missing:
            problems.append(f"created id {rid} names unknown parents {missing[:3]}")
        if not parents:
            problems.append(f"created id {rid} names no parents")
    for rid, e in terminal.items():
        if rid not in known:
            problems.append(f"event for unknown id {rid} ({e['outcome']})")
        if e["outcome"] in ("merged", "rewritten") and e.get("into") not in known:
            problems.append(f"id {rid} {e['outcome']} into unknown id {e.get('into')}")
        if rid in out_set:
            problems.append(f"id {rid} is in the output but was {e['outcome']}")

    kept = len(inputs & out_set)
    by_outcome: Counter = Counter()
    dropped_by_reason: Counter = Counter()
    for rid in inputs:
        e = terminal.get(rid)
        if e is None:
            if rid not in out_set:
                problems.append(f"input id {rid} vanished: not in the output and no outcome recorded")
            continue
        by_outcome[e["outcome"]] += 1
        if e["outcome"] == "dropped":
            dropped_by_reason[f"{e['stage']}:{e.get('reason', '?')}"] += 1
    created_in_output = len(out_set & created.keys())
    created_dropped = sum(1 for rid in created if rid in terminal)
    for rid in created:
        if rid not in out_set and rid not in terminal:
            problems.append(f"created id {rid} vanished: not in the output and no outcome recorded")

    ingested = len(inputs)
    if rows_read != quarantined + ingested:
        problems.append(f"rows read {rows_read} != quarantined {quarantined} + ingested {ingested}")
    accounted = kept + by_outcome["dropped"] + by_outcome["merged"] + by_outcome["rewritten"]
    if ingested != accounted:
        problems.append(f"ingested {ingested} != kept {kept} + dropped {by_outcome['dropped']} + merged "
                        f"{by_outcome['merged']} + rewritten {by_outcome['rewritten']}")
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
        "created_in_output": created_in_output,
        "created_dropped": created_dropped,
        "outputs": len(out_set),
        "problems": problems[:100],
        "problem_count": len(problems),
    }
