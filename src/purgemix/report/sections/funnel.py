"""The funnel section: rows read and quarantined at ingest, then every stage's counters (in, out, dropped by
reason, merged, rewritten, created), with merge and rewrite reasons from the events.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ...core.rundir import StageDir
from .common import stage_info


def funnel_section(stages: list[StageDir], manifest: dict[str, Any], events: dict[str, Any]) -> dict[str, Any]:
    rows = []
    ingest = stage_info(stages[0], manifest)
    read = int(ingest.get("in", 0))
    quarantined = int(ingest.get("quarantined", 0))
    first = {"stage": stages[0].path.name, "in": read, "out": int(ingest.get("out", read - quarantined)),
             "quarantined": quarantined, "seconds": ingest.get("seconds"), "dropped": {}, "merged": {},
             "rewritten": {}, "created": 0}
    rows.append(first)
    for sd in stages[1:]:
        c = stage_info(sd, manifest)
        reasons = events["reasons"].get(sd.path.name, Counter())
        merged = {r: n for (o, r), n in reasons.items() if o == "merged"}
        rewritten = {r: n for (o, r), n in reasons.items() if o == "rewritten"}
        dropped = dict(c.get("dropped") or {}) or {r: n for (o, r), n in reasons.items() if o == "dropped"}
        rows.append({"stage": sd.path.name, "in": int(c.get("in", 0)), "out": int(c.get("out", 0)),
                     "dropped": dict(sorted(dropped.items(), key=lambda kv: -kv[1])),
                     "merged": merged or ({"": c["merged"]} if c.get("merged") else {}),
                     "rewritten": rewritten or ({"": c["rewritten"]} if c.get("rewritten") else {}),
                     "created": int(c.get("created", 0)), "seconds": c.get("seconds"),
                     "incomplete": not sd.complete})
    final = rows[-1]["out"]
    written = final if stages[-1].path.name.endswith("-export") else None  # None: the run wrote no data file
    return {"read": read, "quarantined": quarantined, "ingested": first["out"], "written": written, "final": final,
            "stages": rows}
