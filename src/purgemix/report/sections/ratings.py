"""The ratings section: the ``rating.ds2`` and ``rating.curation`` reports, and histograms of the scores other
than the purge's carried by the records at the end of the run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...core.rundir import StageDir
from .common import PURGE_PREFIX, is_number, iter_records, report_of_section, section_of, unit_bins

MAX_SCORES = 12


def ratings_section(stages: list[StageDir], manifest: dict[str, Any], bins: int) -> dict[str, Any] | None:
    """Rating counts and the curation's correction (manifest), and histograms of the scores other than
    the purge features carried by the records at the end of the run (two streaming passes: range, bins)."""
    out: dict[str, Any] = {}
    rate = report_of_section(stages, manifest, "rating.ds2")
    if rate.get("rated"):
        out["rate"] = {"model": rate.get("model"), **{k: rate.get(k, 0) for k in ("rated", "parsed", "failed", "attempts")}}
    cur = report_of_section(stages, manifest, "rating.curation")
    if cur.get("raw_histogram") or cur.get("transition_matrix"):
        out["curate"] = {k: cur.get(k) for k in ("rated", "unrated", "changed", "raw_histogram", "curated_histogram",
                                                  "transition_matrix", "prior", "note")}
    # scores other than the purge's come only from the stages of the rating and mix sections
    if not any(section_of(sd, manifest).startswith(("rating.", "mix")) for sd in stages):
        return out or None
    last = next((sd for sd in reversed(stages[1:]) if not sd.path.name.endswith("-export") and sd.complete), None)
    if last is None:
        return out or None
    rng: dict[str, list] = {}  # key -> [min, max, all integers, count]
    for recs in iter_records(last):
        for r in recs:
            for k, v in (r.get("scores") or {}).items():
                if k.startswith(PURGE_PREFIX) or not is_number(v):
                    continue
                a = rng.get(k)
                if a is None:
                    if len(rng) >= 4 * MAX_SCORES:
                        continue
                    a = rng[k] = [math.inf, -math.inf, True, 0]
                a[0], a[1] = min(a[0], v), max(a[1], v)
                a[2] = a[2] and float(v).is_integer()
                a[3] += 1
    keys = sorted(rng, key=lambda k: (not k.startswith("ds2."), not k.startswith("mix."), k))[:MAX_SCORES]
    if keys:
        edges = {}
        for k in keys:
            lo, hi, integer, _ = rng[k]
            unit = unit_bins(lo, hi, bins) if integer else None
            edges[k] = unit if unit is not None else np.linspace(lo, hi if hi > lo else lo + 1.0, 21)
        hist = {k: np.zeros(len(edges[k]) - 1, dtype=np.int64) for k in keys}
        for recs in iter_records(last):
            scores = [r.get("scores") or {} for r in recs]
            for k in keys:
                vals = np.array([v for sc in scores if is_number(v := sc.get(k))], dtype=np.float64)
                if vals.size:
                    idx = np.clip(np.searchsorted(edges[k], vals, side="right") - 1, 0, len(edges[k]) - 2)
                    hist[k] += np.bincount(idx, minlength=len(edges[k]) - 1)
        out["stage"] = last.path.name
        out["scores"] = [{"key": k, "edges": [round(float(x), 6) for x in edges[k]], "counts": hist[k].tolist(),
                          "records": rng[k][3], "min": rng[k][0], "max": rng[k][1]} for k in keys]
    return out or None
