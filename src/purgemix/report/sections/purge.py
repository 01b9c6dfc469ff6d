"""The purge section: feature histograms from ``scores["purge.*"]`` before (the ``purge.scores`` stage's output)
and after (the last ``purge.*`` stage's output), bins and thresholds from the rule stage's fitted ``state.json``,
rule hits from the drop events' ``rules`` lists.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from ...core.rundir import StageDir, read_json
from ...core.sampling import Reservoir
from .common import PURGE_PREFIX, is_number, iter_records, section_of, unit_bins

SAMPLE = 4096  # values per feature sampled to choose bins when the run has no fitted priors


# shown first when present (beside every feature a rule uses)
KEY_FEATURES = ["instruction.words", "response.words", "response.tokens", "instruction.tokens", "pair.overlap",
                "response.alpha_ratio", "response.stopword_ratio", "response.dup_line_frac", "response.lines",
                "response.mean_word_len", "instruction.lang_conf", "response.lang_conf"]


def purge_section(stages: list[StageDir], events: dict[str, Any], bins: int, max_features: int,
           seed: int) -> dict[str, Any] | None:
    scores_sd = next((sd for sd in stages if sd.complete and section_of(sd) == "purge.scores"), None)
    purge_sds = [sd for sd in stages if sd.complete and section_of(sd).startswith("purge.")]
    rules_sd = next((sd for sd in reversed(purge_sds) if section_of(sd) == "purge.rules"), None)
    state = read_json(rules_sd.path / "state.json") if rules_sd and (rules_sd.path / "state.json").exists() else {}
    out: dict[str, Any] = {}
    if events["rules_fired"]:
        rules = []
        reasons = {r["name"]: r.get("reason") for r in state.get("rules", [])}
        conditions = {r["name"]: r.get("condition") for r in state.get("rules", [])}
        est = state.get("estimated_hit_rate") or {}
        for name, n in events["rules_fired"].most_common():
            rules.append({"name": name, "fired": n, "first": events["rules_first"].get(name, 0),
                          "condition": conditions.get(name) or ("dedup" if "duplicate" in name else None),
                          "reason": reasons.get(name), "estimated_hit_rate": est.get(name)})
        out["rules"] = rules
        out["dropped"] = events["purge_dropped"]
        out["overlaps"] = [{"a": a, "b": b, "n": n} for (a, b), n in events["rule_overlap"].most_common(20)]
        out["warnings"] = state.get("warnings") or []
    if scores_sd is None:
        return out or None
    after_sd = purge_sds[-1]
    features, thresholds = _choose_features(scores_sd, state, max_features)
    if not features:
        return out or None
    priors = (state.get("priors") or {}).get("features") or {}
    edges = {f: _edges_from_prior(priors[f], bins) for f in features if f in priors and priors[f].get("count")}
    need = [f for f in features if edges.get(f) is None]
    if need:  # no fitted priors: choose bins from a sample of the values (one more pass)
        samples = {f: Reservoir(SAMPLE, seed) for f in need}
        for recs in iter_records(scores_sd):
            for r in recs:
                s = r.get("scores") or {}
                for f in need:
                    v = s.get(PURGE_PREFIX + f)
                    if is_number(v):
                        samples[f].add(float(v))
        for f in need:
            edges[f] = _edges_from_values(np.array(samples[f].items, dtype=np.float64), bins)
    features = [f for f in features if edges.get(f) is not None]
    before = {f: np.zeros(len(edges[f]) - 1, dtype=np.int64) for f in features}
    after = {f: np.zeros(len(edges[f]) - 1, dtype=np.int64) for f in features}
    n_before = _fill(scores_sd, features, edges, before)
    n_after = _fill(after_sd, features, edges, after) if after_sd is not scores_sd else n_before
    if after_sd is scores_sd:
        after = before
    out["histograms"] = [
        {"feature": f, "edges": [round(float(x), 6) for x in edges[f]], "before": before[f].tolist(),
         "after": after[f].tolist(), "thresholds": thresholds.get(f, [])}
        for f in features
    ]
    out["before_stage"], out["after_stage"] = scores_sd.path.name, after_sd.path.name
    out["before_records"], out["after_records"] = n_before, n_after
    return out


def _choose_features(sd: StageDir, state: dict[str, Any], limit: int) -> tuple[list[str], dict[str, list]]:
    numeric: dict[str, bool] = {}  # feature -> no text value seen (in the first non-empty shard)
    seen_number: set[str] = set()
    for recs in iter_records(sd):
        for r in recs:
            for k, v in (r.get("scores") or {}).items():
                if k.startswith(PURGE_PREFIX):
                    f = k[len(PURGE_PREFIX):]
                    numeric[f] = numeric.get(f, True) and (v is None or is_number(v) or isinstance(v, bool))
                    if is_number(v):
                        seen_number.add(f)
        if numeric:
            break
    available = [f for f, ok in numeric.items() if ok and f in seen_number]
    thresholds: dict[str, list] = defaultdict(list)
    ruled: list[str] = []
    for rule in state.get("rules") or []:
        for c in rule.get("conditions") or []:
            f, t = c.get("feature"), c.get("threshold")
            if f not in available:
                continue
            if f not in ruled:
                ruled.append(f)
            if is_number(t) and not c.get("pool"):
                thresholds[f].append([f"{rule['name']}: {f} {c.get('op')} {t:.4g}", float(t)])
    chosen = [f for f in KEY_FEATURES if f in available]
    chosen += [f for f in ruled if f not in chosen]
    chosen += [f for f in available if f not in chosen]
    return chosen[:limit], dict(thresholds)


def _edges_from_prior(p: dict[str, Any], bins: int) -> np.ndarray:
    q = np.asarray(p.get("quantiles") or [p.get("min", 0.0), p.get("max", 1.0)], dtype=np.float64)
    lo, hi = float(p.get("min", q[0])), float(p.get("max", q[-1]))
    unit = unit_bins(lo, hi, bins)
    if unit is not None:
        return unit
    if len(q) > 3:
        lo, hi = float(q[1]), float(q[-2])  # 0.1% .. 99.9%: outliers go into the end bins
    if hi <= lo:
        lo, hi = float(q[0]), float(q[-1])
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def _edges_from_values(v: np.ndarray, bins: int) -> np.ndarray | None:
    if v.size == 0:
        return None
    lo, hi = float(v.min()), float(v.max())
    unit = unit_bins(lo, hi, bins)
    if unit is not None:
        return unit
    lo, hi = (float(x) for x in np.quantile(v, [0.001, 0.999]))
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def _fill(sd: StageDir, features: list[str], edges: dict[str, np.ndarray], hist: dict[str, np.ndarray]) -> int:
    n = 0
    for recs in iter_records(sd):
        n += len(recs)
        scores = [r.get("scores") or {} for r in recs]
        for f in features:
            key = PURGE_PREFIX + f
            try:  # numbers and None (-> nan) in one C-level conversion
                vals = np.array([s.get(key) for s in scores], dtype=np.float64)
                vals = vals[~np.isnan(vals)]
            except (TypeError, ValueError):
                vals = np.array([v for s in scores if is_number(v := s.get(key))], dtype=np.float64)
            if vals.size == 0:
                continue
            e = edges[f]
            idx = np.clip(np.searchsorted(e, vals, side="right") - 1, 0, len(e) - 2)
            hist[f] += np.bincount(idx, minlength=len(e) - 1)
    return n
