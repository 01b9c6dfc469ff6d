"""What every section reads: a stage folder's name, counters, declared section and report, its shards and records.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np

from ...core.rundir import StageDir

BINS = 40
PURGE_PREFIX = "purge."


def stage_name(sd: StageDir) -> str:
    return sd.path.name.split("-", 1)[1] if "-" in sd.path.name else sd.path.name


def stage_info(sd: StageDir, manifest: dict[str, Any]) -> dict[str, Any]:
    if sd.complete:
        return sd.info()
    return dict((manifest.get("stages") or {}).get(stage_name(sd)) or {})


def section_of(sd: StageDir, manifest: dict[str, Any] | None = None) -> str:
    """The report section a stage declared (``Stage.section``, stored with its counters); "" when none."""
    info = sd.info() if sd.complete or manifest is None else stage_info(sd, manifest)
    return info.get("section") or ""


def stage_report(sd: StageDir, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the stage learnt (``Stage.report()``, stored with its counters when it completed)."""
    rep = stage_info(sd, manifest).get("report")
    return rep if isinstance(rep, dict) else {}


def report_of_section(stages: list[StageDir], manifest: dict[str, Any], section: str) -> dict[str, Any]:
    """The report of the last stage that declared ``section``; empty when none did."""
    return next((stage_report(sd, manifest) for sd in reversed(stages) if section_of(sd, manifest) == section), {})


def shards_of(sd: StageDir) -> list[int]:
    return list(range(sd.info()["shards"])) if sd.complete else sd.shard_indices()


def clip(s: str, n: int) -> str:
    s = s or ""
    return s if len(s) <= n else s[:n] + "…"


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def iter_records(sd: StageDir) -> Iterable[list[dict[str, Any]]]:
    for i in shards_of(sd):
        yield sd.read_records(i)


def unit_bins(lo: float, hi: float, bins: int) -> np.ndarray | None:
    if float(lo).is_integer() and float(hi).is_integer() and hi - lo <= bins:
        return np.arange(lo - 0.5, hi + 1.0, 1.0)
    return None
