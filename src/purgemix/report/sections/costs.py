"""The costs section: seconds per stage and each model stage's own usage (requests, cache hits, tokens).
"""

from __future__ import annotations

from typing import Any

from ...core.rundir import StageDir
from .common import is_number, stage_info, stage_name, stage_report


def _find_usage(obj: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(obj, dict):
        if any(k in obj for k in ("cache_hits", "tokens_in", "tokens_out", "requests")):
            out.append({"where": path, **{k: v for k, v in obj.items() if is_number(v)}})
            return
        for k, v in obj.items():
            _find_usage(v, f"{path}.{k}" if path else str(k), out)


def costs_section(stages: list[StageDir], manifest: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for sd in stages:
        c = stage_info(sd, manifest)
        rows.append({"stage": sd.path.name, "seconds": c.get("seconds"), "shards": c.get("shards"),
                     "records_in": c.get("in"), "records_out": c.get("out")})
    usage: list[dict[str, Any]] = []
    for key, value in manifest.items():  # wherever the model layer recorded usage (models.rate.usage, ...)
        if key not in ("config", "inputs", "versions", "argv", "executor", "ledger", "stages"):
            _find_usage(value, key, usage)
    for sd in stages:  # usage a stage put in its own counters
        c = stage_info(sd, manifest)
        for k, v in c.items():
            if isinstance(v, dict) and k not in ("dropped",):  # a stage's report is the stage's own
                _find_usage(v, sd.path.name if k == "report" else f"{sd.path.name}.{k}", usage)
    models = {stage_name(sd): m for sd in stages if (m := stage_report(sd, manifest).get("model"))}
    return {"stages": rows, "elapsed_seconds": manifest.get("elapsed_seconds"), "usage": usage, "models": models}
