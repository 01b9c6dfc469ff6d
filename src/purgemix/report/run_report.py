"""The report of any run directory: what happened to the data, stage by stage, as one HTML page.

``build_run_report(run_dir)`` reads the run (manifest, per-stage ``done.json`` counters, events,
fitted ``state.json`` files, records) and returns a JSON-able dict with one entry per section that
the run has data for; ``render_html(report)`` turns it into a self-contained page (inline CSS and
SVG only). Everything is streamed shard by shard: histograms are fixed bins filled as shards are
read, examples and map points are reservoir samples, so memory does not grow with the run.

Sections and where they come from. A stage is found by the report section it declares
(``Stage.section``, stored with its counters), never by its name, and what it learnt while it ran
(``Stage.report()``) is read from its counters too:

``funnel``    ingest ``done.json`` (rows read, quarantined) and every stage's counters (in, out,
              dropped by reason, merged, rewritten, created), merge/rewrite reasons from events.
``purge``     feature histograms from ``scores["purge.*"]``: before = the ``purge.scores`` stage's output,
              after = the output of the last ``purge.*`` stage; bins and thresholds from the rule
              stage's fitted ``state.json``; rule hits from drop events' ``rules`` lists.
``clusters``  cluster sizes and a 2-D map from created records' lineage (``derived_from``,
              ``pairing.cluster``, ``cluster_size``), the reports of the ``mix*`` stages, and persisted
              assignments (``stages/NN-<stage>/clusters.npz``: ``ids``, ``labels``, optional ``xy``
              or ``embeddings``) where a stage writes them.
``examples``  created records (``lineage.derived_from``) next to their parents, looked up in the
              shards of the stage before; failed ones from their drop events.
``ledger``    ``purgemix.core.ledger.check_ledger``.
``ratings``   the ``rating.ds2`` and ``rating.curation`` reports, histograms of the non-purge scores.
``costs``     seconds per stage, each model stage's own usage (requests, cache hits, tokens).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..core.ids import id_hash
from ..core.ledger import check_ledger
from ..core.record import instruction_of, response_of
from ..core.rundir import RunDir, StageDir, read_json

PURGE_PREFIX = "purge."
BINS = 40
SAMPLE = 4096  # values per feature sampled to choose bins when the run has no fitted priors
# shown first when present (beside every feature a rule uses)
KEY_FEATURES = ["instruction.words", "response.words", "response.tokens", "instruction.tokens", "pair.overlap",
                "response.alpha_ratio", "response.stopword_ratio", "response.dup_line_frac", "response.lines",
                "response.mean_word_len", "instruction.lang_conf", "response.lang_conf"]
SECTIONS = ("funnel", "purge", "ratings", "clusters", "examples", "ledger", "costs")
MAX_SCORES = 12


def stage_name(sd: StageDir) -> str:
    return sd.path.name.split("-", 1)[1] if "-" in sd.path.name else sd.path.name


def _info(sd: StageDir, manifest: dict[str, Any]) -> dict[str, Any]:
    if sd.complete:
        return sd.info()
    return dict((manifest.get("stages") or {}).get(stage_name(sd)) or {})


def _section(sd: StageDir, manifest: dict[str, Any] | None = None) -> str:
    """The report section a stage declared (``Stage.section``, stored with its counters); "" when none."""
    info = sd.info() if sd.complete or manifest is None else _info(sd, manifest)
    return info.get("section") or ""


def _stage_report(sd: StageDir, manifest: dict[str, Any]) -> dict[str, Any]:
    """What the stage learnt (``Stage.report()``, stored with its counters when it completed)."""
    rep = _info(sd, manifest).get("report")
    return rep if isinstance(rep, dict) else {}


def _by_section(stages: list[StageDir], manifest: dict[str, Any], section: str) -> dict[str, Any]:
    """The report of the last stage that declared ``section``; empty when none did."""
    return next((_stage_report(sd, manifest) for sd in reversed(stages) if _section(sd, manifest) == section), {})


def _shards(sd: StageDir) -> list[int]:
    return list(range(sd.info()["shards"])) if sd.complete else sd.shard_indices()


def _clip(s: str, n: int) -> str:
    s = s or ""
    return s if len(s) <= n else s[:n] + "…"


class Reservoir:
    """A uniform sample of at most ``k`` items from a stream (seeded: the same run, the same sample)."""

    def __init__(self, k: int, seed: int = 0):
        self.k, self.seen, self.items = k, 0, []
        self.rng = np.random.default_rng(seed)

    def add(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = int(self.rng.integers(0, self.seen))
            if j < self.k:
                self.items[j] = item


# -- the report ----------------------------------------------------------------------------------


def build_run_report(run_dir: str | Path, *, examples: int = 6, map_groups: int = 150, bins: int = BINS,
                     max_features: int = 24, seed: int = 0) -> dict[str, Any]:
    run = RunDir(run_dir)
    manifest = run.manifest()
    stages = run.stage_dirs()
    if not stages:
        raise FileNotFoundError(str(Path(run_dir) / "stages"))
    rep: dict[str, Any] = {"run": _run_info(run, manifest, stages), "missing": []}
    events = _scan_events(stages, examples, map_groups, seed)
    rep["funnel"] = _funnel(stages, manifest, events)
    purge = _purge(stages, events, bins, max_features, seed)
    if purge:
        rep["purge"] = purge
    clusters, ex = _mix(run, stages, manifest, events, rep["missing"], examples, map_groups)
    if clusters:
        rep["clusters"] = clusters
    if ex:
        rep["examples"] = ex
    rep["ledger"] = check_ledger(run)
    ratings = _ratings(stages, manifest, bins)
    if ratings:
        rep["ratings"] = ratings
    rep["costs"] = _costs(stages, manifest)
    rep["sections"] = [k for k in SECTIONS if rep.get(k)]
    return rep


def _run_info(run: RunDir, manifest: dict[str, Any], stages: list[StageDir]) -> dict[str, Any]:
    cfg = manifest.get("config") or {}
    inputs = []
    fps = manifest.get("inputs") or []
    for i, spec in enumerate(cfg.get("inputs") or []):
        fp = fps[i] if i < len(fps) and isinstance(fps[i], dict) else {}
        inputs.append({"path": spec.get("path"), "format": spec.get("format"), "bytes": fp.get("bytes")})
    return {
        "path": str(run.path),
        "command": cfg.get("command"),
        "config_hash": manifest.get("config_hash"),
        "purgemix": manifest.get("purgemix"),
        "inputs": inputs,
        "output": (cfg.get("output") or {}).get("path") if isinstance(cfg.get("output"), dict) else None,
        "stages": [sd.path.name for sd in stages],
        "incomplete": [sd.path.name for sd in stages if not sd.complete],
        "elapsed_seconds": manifest.get("elapsed_seconds"),
        "executor": manifest.get("executor"),
    }


# -- one pass over every stage's events ----------------------------------------------------------


def _scan_events(stages: list[StageDir], examples: int, map_groups: int, seed: int) -> dict[str, Any]:
    """Outcomes by reason per stage, rule hits of purge stages, created records (ids as 64-bit hashes;
    a sample of them for examples and the map) and failed new records (from their drop events)."""
    out: dict[str, Any] = {"reasons": {}, "rules_fired": Counter(), "rules_first": Counter(),
                           "rule_overlap": Counter(), "created": {}, "failed": {}, "purge_dropped": 0}
    for pos, sd in enumerate(stages):
        if pos == 0:
            continue
        name = stage_name(sd)
        reasons: Counter = Counter()
        created_h: set[int] = set()
        group_sizes: Counter = Counter()
        sample = Reservoir(max(examples * 3, map_groups), seed + pos)
        failed = Reservoir(max(2, examples // 2), seed + pos)
        failed_reasons: Counter = Counter()
        for i in _shards(sd):
            for e in sd.read_events(i):
                outcome = e.get("outcome")
                reasons[(outcome, str(e.get("reason", "")) if outcome != "created" else "")] += 1
                if outcome == "created":
                    created_h.add(id_hash(e["id"]))
                    group_sizes[len(e.get("parents") or [])] += 1
                    sample.add({"id": e["id"], "parents": e.get("parents") or []})
                elif outcome == "dropped":
                    rec = e.get("record") or {}
                    lin = rec.get("lineage") or {}
                    if lin.get("derived_from"):
                        failed_reasons[str(e.get("reason"))] += 1
                        failed.add({"record": rec, "reason": e.get("reason"),
                                    **{k: e[k] for k in ("errors", "rewards", "detail") if k in e}})
                    if name.startswith("purge-"):
                        out["purge_dropped"] += 1
                        names = e.get("rules") or [e.get("reason", "?")]
                        out["rules_first"][str(e.get("reason", names[0]))] += 1
                        for a in names:
                            out["rules_fired"][a] += 1
                        for a in names:
                            for b in names:
                                if a < b:
                                    out["rule_overlap"][(a, b)] += 1
        out["reasons"][sd.path.name] = reasons
        if created_h:
            out["created"][sd.path.name] = {"hashes": created_h, "sample": sample.items, "count": len(created_h),
                                            "group_sizes": group_sizes}
        if failed.items:
            out["failed"][sd.path.name] = {"sample": failed.items, "count": failed.seen,
                                           "reasons": dict(failed_reasons.most_common())}
    return out


# -- funnel --------------------------------------------------------------------------------------


def _funnel(stages: list[StageDir], manifest: dict[str, Any], events: dict[str, Any]) -> dict[str, Any]:
    rows = []
    ingest = _info(stages[0], manifest)
    read = int(ingest.get("in", 0))
    quarantined = int(ingest.get("quarantined", 0))
    first = {"stage": stages[0].path.name, "in": read, "out": int(ingest.get("out", read - quarantined)),
             "quarantined": quarantined, "seconds": ingest.get("seconds"), "dropped": {}, "merged": {},
             "rewritten": {}, "created": 0}
    rows.append(first)
    for sd in stages[1:]:
        c = _info(sd, manifest)
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


# -- purge: feature histograms and rule hits -----------------------------------------------------


def _numeric(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _purge(stages: list[StageDir], events: dict[str, Any], bins: int, max_features: int,
           seed: int) -> dict[str, Any] | None:
    scores_sd = next((sd for sd in stages if sd.complete and _section(sd) == "purge.scores"), None)
    purge_sds = [sd for sd in stages if sd.complete and _section(sd).startswith("purge.")]
    rules_sd = next((sd for sd in reversed(purge_sds) if _section(sd) == "purge.rules"), None)
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
        for recs in _iter_records(scores_sd):
            for r in recs:
                s = r.get("scores") or {}
                for f in need:
                    v = s.get(PURGE_PREFIX + f)
                    if _numeric(v):
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


def _iter_records(sd: StageDir) -> Iterable[list[dict[str, Any]]]:
    for i in _shards(sd):
        yield sd.read_records(i)


def _choose_features(sd: StageDir, state: dict[str, Any], limit: int) -> tuple[list[str], dict[str, list]]:
    numeric: dict[str, bool] = {}  # feature -> no text value seen (in the first non-empty shard)
    seen_number: set[str] = set()
    for recs in _iter_records(sd):
        for r in recs:
            for k, v in (r.get("scores") or {}).items():
                if k.startswith(PURGE_PREFIX):
                    f = k[len(PURGE_PREFIX):]
                    numeric[f] = numeric.get(f, True) and (v is None or _numeric(v) or isinstance(v, bool))
                    if _numeric(v):
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
            if _numeric(t) and not c.get("pool"):
                thresholds[f].append([f"{rule['name']}: {f} {c.get('op')} {t:.4g}", float(t)])
    chosen = [f for f in KEY_FEATURES if f in available]
    chosen += [f for f in ruled if f not in chosen]
    chosen += [f for f in available if f not in chosen]
    return chosen[:limit], dict(thresholds)


def _unit_bins(lo: float, hi: float, bins: int) -> np.ndarray | None:
    if float(lo).is_integer() and float(hi).is_integer() and hi - lo <= bins:
        return np.arange(lo - 0.5, hi + 1.0, 1.0)
    return None


def _edges_from_prior(p: dict[str, Any], bins: int) -> np.ndarray:
    q = np.asarray(p.get("quantiles") or [p.get("min", 0.0), p.get("max", 1.0)], dtype=np.float64)
    lo, hi = float(p.get("min", q[0])), float(p.get("max", q[-1]))
    unit = _unit_bins(lo, hi, bins)
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
    unit = _unit_bins(lo, hi, bins)
    if unit is not None:
        return unit
    lo, hi = (float(x) for x in np.quantile(v, [0.001, 0.999]))
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, bins + 1)


def _fill(sd: StageDir, features: list[str], edges: dict[str, np.ndarray], hist: dict[str, np.ndarray]) -> int:
    n = 0
    for recs in _iter_records(sd):
        n += len(recs)
        scores = [r.get("scores") or {} for r in recs]
        for f in features:
            key = PURGE_PREFIX + f
            try:  # numbers and None (-> nan) in one C-level conversion
                vals = np.array([s.get(key) for s in scores], dtype=np.float64)
                vals = vals[~np.isnan(vals)]
            except (TypeError, ValueError):
                vals = np.array([v for s in scores if _numeric(v := s.get(key))], dtype=np.float64)
            if vals.size == 0:
                continue
            e = edges[f]
            idx = np.clip(np.searchsorted(e, vals, side="right") - 1, 0, len(e) - 2)
            hist[f] += np.bincount(idx, minlength=len(e) - 1)
    return n


# -- mix: clusters, new pairs and their parents --------------------------------------------------


def _mix(run: RunDir, stages: list[StageDir], manifest: dict[str, Any], events: dict[str, Any],
         missing: list[str], n_examples: int, n_map: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    # what the mix stages learnt (clustering figures, mix counts), without their model usage (under costs)
    info = {stage_name(sd): {k: v for k, v in _stage_report(sd, manifest).items() if k not in ("model", "usage")}
            for sd in stages if _section(sd, manifest).startswith("mix")}
    info = {k: v for k, v in info.items() if v}
    pos_of = {sd.path.name: i for i, sd in enumerate(stages)}
    created_stats: dict[str, Any] = {}
    examples: list[dict[str, Any]] = []
    map_groups: list[dict[str, Any]] = []
    final = _final_output(stages) if events["created"] else np.empty(0, np.int64)
    for sdname, c in events["created"].items():
        sd = stages[pos_of[sdname]]
        want = {s["id"] for s in c["sample"]}
        stats = {"count": c["count"], "in_output": 0, "operators": Counter(), "cycles": Counter(),
                 "cluster_sizes": Counter(), "pairs_per_cluster": Counter(), "rewards": {},
                 "models": Counter()}
        found: dict[str, dict] = {}
        for i in _shards(sd):
            ids = sd.read_ids(i)
            if not any(id_hash(x) in c["hashes"] for x in ids):
                continue
            for r in sd.read_records(i):
                if id_hash(r["id"]) not in c["hashes"]:
                    continue
                lin = r.get("lineage") or {}
                stats["in_output"] += 1
                stats["operators"][str(lin.get("operator"))] += 1
                stats["cycles"][int(lin.get("cycles") or 0)] += 1
                stats["models"][str(lin.get("model"))] += 1
                if lin.get("cluster_size"):
                    stats["cluster_sizes"][int(lin["cluster_size"])] += 1
                pairing = lin.get("pairing") or {}
                if "cluster" in pairing:
                    stats["pairs_per_cluster"][int(pairing["cluster"])] += 1
                for k, v in (lin.get("rewards") or {}).items():
                    if _numeric(v):  # running mean, min, max
                        acc = stats["rewards"].setdefault(k, [0.0, 0, math.inf, -math.inf])
                        acc[0] += float(v)
                        acc[1] += 1
                        acc[2], acc[3] = min(acc[2], float(v)), max(acc[3], float(v))
                if r["id"] in want:
                    found[r["id"]] = r
        failed = events["failed"].get(sdname, {})
        samples = c["sample"]
        picked_ok = [found[s["id"]] for s in samples if s["id"] in found][:n_examples]
        picked_failed = failed.get("sample", [])[:max(1, n_examples // 3) if n_examples else 0]
        groups = samples[:n_map]
        parents_wanted = {p for r in picked_ok for p in (r.get("lineage") or {}).get("derived_from", [])}
        parents_wanted |= {p for f in picked_failed for p in (f["record"].get("lineage") or {}).get("derived_from", [])}
        parents_wanted |= {p for g in groups for p in g["parents"]}
        prev = stages[pos_of[sdname] - 1]
        parents = _lookup(prev, parents_wanted)
        if len(parents) < len(parents_wanted):
            parents.update(_lookup(stages[0], parents_wanted - set(parents)))
        for r in picked_ok:
            examples.append(_example(sdname, r, parents, None))
        for f in picked_failed:
            examples.append(_example(sdname, f["record"], parents, f))
        for g in groups:
            rec = found.get(g["id"])
            cluster = ((rec or {}).get("lineage") or {}).get("pairing", {}).get("cluster")
            map_groups.append({"stage": sdname, "id": g["id"], "cluster": cluster, "ok": rec is not None,
                               "parents": [parents[p] for p in g["parents"] if p in parents]})
        created_stats[sdname] = {
            "created": stats["count"], "in_output": stats["in_output"], "failed": failed.get("count", 0),
            "in_final_output": int(np.isin(np.fromiter(c["hashes"], np.int64, len(c["hashes"])), final).sum()),
            "failed_reasons": failed.get("reasons", {}),
            "operators": dict(stats["operators"].most_common()), "models": dict(stats["models"]),
            "cycles": {str(k): v for k, v in sorted(stats["cycles"].items())},
            "cluster_sizes": {str(k): v for k, v in sorted(stats["cluster_sizes"].items())},
            "group_sizes": {str(k): v for k, v in sorted(c["group_sizes"].items())},
            "pairs_per_cluster": _size_hist(stats["pairs_per_cluster"]),
            "rewards": {k: {"mean": round(a[0] / a[1], 4), "min": round(a[2], 4), "max": round(a[3], 4), "n": a[1]}
                        for k, a in stats["rewards"].items() if a[1]},
        }
    _fates(stages, pos_of, [e for e in examples if e["ok"]], final)
    persisted = _persisted_clusters(stages)
    clusters: dict[str, Any] = {}
    if created_stats or info or persisted:
        clusters = {"stages": created_stats, "info": info, "persisted": persisted}
        maps = [{"stage": ps["stage"], **ps["map"], "source": f"{ps['file']} (assignments stored by the stage)"}
                for ps in persisted if ps["map"]["points"]]
        done = {m["stage"] for m in maps}
        for sdname in dict.fromkeys(g["stage"] for g in map_groups):
            if sdname in done:
                continue
            m = _proxy_map([g for g in map_groups if g["stage"] == sdname])
            if m["points"]:
                # a fusion names the cluster its pair came from; a distillation's group is one whole cluster
                paired = any(g["cluster"] is not None for g in map_groups if g["stage"] == sdname)
                kind = "fusion cluster" if paired else "group (one cluster)"
                maps.append({"stage": sdname, **m, "source": (
                    f"parents of {m['groups']} new records (a sample), placed by PCA of hashed word counts (the run's "
                    f"own embeddings are not stored; points slightly jittered); lines join the parents of one new "
                    f"record; colour = {kind}")})
        clusters["maps"] = maps
        if not persisted and any(_section(sd, manifest) == "mix.clusters" for sd in stages):
            missing.append("cluster assignments and embeddings of the clustering stages are not stored in the run "
                           "directory: cluster sizes come from the new records' lineage (distil: cluster_size; "
                           "fuse: pairs per cluster), and the 2-D map is a proxy. Storing "
                           "stages/NN-<stage>/clusters.npz (ids, labels, a 2-D projection) would give the real map "
                           "and the sizes of every cluster, including those that produced nothing.")
    ex = {"items": examples} if examples else None
    return (clusters or None), ex


def _final_output(stages: list[StageDir]) -> np.ndarray:
    """64-bit id hashes of what the run wrote (the export's ids, else the last stage's records), sorted."""
    last = stages[-1]
    if (last.path / "output_ids.npy").exists():
        return np.sort(np.load(last.path / "output_ids.npy"))
    from ..core.ids import hash_ids

    return np.sort(np.concatenate([hash_ids(last.read_ids(i)) for i in _shards(last)] or [np.empty(0, np.int64)]))


def _fates(stages: list[StageDir], pos_of: dict[str, int], examples: list[dict[str, Any]], final: np.ndarray) -> None:
    """What became of each example's new record after its stage: in the output, or dropped/merged (why)."""
    wanted = {e["id"]: e for e in examples}
    if not wanted:
        return
    start = min(pos_of[e["stage"]] for e in examples) + 1
    for sd in stages[start:]:
        for i in _shards(sd):
            for ev in sd.read_events(i):
                e = wanted.get(ev.get("id"))
                if e is not None and ev.get("outcome") in ("dropped", "merged", "rewritten") and pos_of[e["stage"]] < pos_of[sd.path.name]:
                    e["fate"] = {"stage": sd.path.name, "outcome": ev["outcome"], "reason": ev.get("reason"),
                                 "into": ev.get("into")}
    for e in examples:
        if "fate" not in e:
            in_out = bool(np.isin(np.array([id_hash(e["id"])], np.int64), final)[0])
            e["fate"] = {"outcome": "written" if in_out else "not written"}


def _size_hist(counter: Counter) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(counter.values()).items())}


def _lookup(sd: StageDir, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Records of ``sd`` with the wanted ids, reduced to what the report shows (one pass, shard by shard)."""
    out: dict[str, dict[str, Any]] = {}
    if not wanted or not (sd.complete or sd.shard_indices()):
        return out
    for i in _shards(sd):
        ids = sd.read_ids(i)
        if not any(x in wanted for x in ids):
            continue
        for r in sd.read_records(i):
            if r["id"] in wanted and r["id"] not in out:
                out[r["id"]] = _brief(r)
        if len(out) == len(wanted):
            break
    return out


def _brief(r: dict[str, Any], n: int = 700) -> dict[str, Any]:
    return {"id": r["id"], "source": r.get("source", ""), "instruction": _clip(instruction_of(r), n),
            "response": _clip(response_of(r), n),
            "scores": {k: v for k, v in (r.get("scores") or {}).items()
                       if not k.startswith(PURGE_PREFIX) and _numeric(v)}}


def _example(stage: str, rec: dict[str, Any], parents: dict[str, dict], failed: dict | None) -> dict[str, Any]:
    lin = rec.get("lineage") or {}
    new = _brief(rec, 1500)
    keep = ("operator", "operators", "template", "model", "checker", "embedder", "quality", "cycles", "pairing",
            "shape", "cluster_size", "feedback")
    ex = {"stage": stage, "id": rec["id"], "new": new, "ok": failed is None,
          "parents": [parents.get(p) or {"id": p, "missing": True} for p in lin.get("derived_from", [])],
          "lineage": {k: lin[k] for k in keep if k in lin},
          "rewards": lin.get("rewards") or (failed or {}).get("rewards") or {},
          "checks": lin.get("checks") or {},
          "candidates": len(lin.get("candidates") or [])}
    if failed is not None:
        ex["failure"] = {"reason": failed.get("reason"), "errors": failed.get("errors") or lin.get("errors"),
                         "detail": failed.get("detail")}
    return ex


def _persisted_clusters(stages: list[StageDir]) -> list[dict[str, Any]]:
    """Assignments a clustering stage stored (``clusters.npz``: ids, labels, optional xy/embeddings)."""
    out = []
    for sd in stages:
        path = sd.path / "clusters.npz"
        if not path.exists():
            continue
        try:
            z = np.load(path, allow_pickle=False)
            labels = np.asarray(z["labels"]).astype(np.int64)
            if "xy" in z.files:
                xy = np.asarray(z["xy"], dtype=np.float64)
            elif "embeddings" in z.files:
                xy = _pca2(np.asarray(z["embeddings"], dtype=np.float64))
            else:
                xy = None
        except (OSError, KeyError, ValueError):
            continue
        sizes = Counter(np.bincount(labels[labels >= 0]).tolist()) if (labels >= 0).any() else Counter()
        sizes.pop(0, None)
        points = []
        if xy is not None and len(xy) == len(labels):
            pick = np.random.default_rng(0).permutation(len(labels))[:2000]
            points = [[round(float(xy[i, 0]), 4), round(float(xy[i, 1]), 4), int(labels[i]), ""] for i in sorted(pick)]
        out.append({"stage": sd.path.name, "file": f"{sd.path.name}/clusters.npz", "records": int(len(labels)),
                    "clusters": int(len(np.unique(labels[labels >= 0]))), "unassigned": int((labels < 0).sum()),
                    "sizes": {str(k): v for k, v in sorted(sizes.items())},
                    "map": {"points": points, "lines": []}})
    return out


_WORD = re.compile(r"\w+")


def _hashed(texts: list[str], dim: int = 256) -> np.ndarray:
    x = np.zeros((len(texts), dim), dtype=np.float64)
    for i, t in enumerate(texts):
        for w in _WORD.findall(t.lower()):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            x[i, h % dim] += 1.0
    x = np.log1p(x)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def _pca2(x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, 2))
    xc = x - x.mean(axis=0)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    proj = xc @ vt[:2].T
    if proj.shape[1] < 2:
        proj = np.hstack([proj, np.zeros((len(x), 2 - proj.shape[1]))])
    for j in range(2):  # deterministic orientation
        if proj[:, j].sum() < 0:
            proj[:, j] = -proj[:, j]
    return proj


def _proxy_map(groups: list[dict[str, Any]]) -> dict[str, Any]:
    texts, owner = [], []
    for gi, g in enumerate(groups):
        for p in g["parents"]:
            texts.append(p["instruction"] + "\n" + p["response"])
            owner.append((gi, p["id"]))
    if len(texts) < 2:
        return {"points": [], "lines": []}
    xy = _pca2(_hashed(texts))
    span = np.ptp(xy, axis=0) if len(xy) else np.ones(2)
    xy = xy + np.random.default_rng(0).uniform(-0.015, 0.015, xy.shape) * np.where(span > 0, span, 1.0)
    points, lines = [], []
    by_group: dict[int, list[int]] = defaultdict(list)
    for k, ((gi, pid), (x, y)) in enumerate(zip(owner, xy.tolist())):
        g = groups[gi]
        colour = g["cluster"] if isinstance(g["cluster"], int) else gi
        tip = f"{g['stage']} → {g['id']}{'' if g['ok'] else ' (failed)'}: parent {pid}"
        points.append([round(x, 4), round(y, 4), int(colour), tip])
        by_group[gi].append(k)
    lines = [v for v in by_group.values() if len(v) > 1]
    return {"points": points, "lines": lines, "groups": len(groups)}


# -- ratings and other scores -------------------------------------------------------------------


def _ratings(stages: list[StageDir], manifest: dict[str, Any], bins: int) -> dict[str, Any] | None:
    """Rating counts and the curation's correction (manifest), and histograms of the scores other than
    the purge features carried by the records at the end of the run (two streaming passes: range, bins)."""
    out: dict[str, Any] = {}
    rate = _by_section(stages, manifest, "rating.ds2")
    if rate.get("rated"):
        out["rate"] = {"model": rate.get("model"), **{k: rate.get(k, 0) for k in ("rated", "parsed", "failed", "attempts")}}
    cur = _by_section(stages, manifest, "rating.curation")
    if cur.get("raw_histogram") or cur.get("transition_matrix"):
        out["curate"] = {k: cur.get(k) for k in ("rated", "unrated", "changed", "raw_histogram", "curated_histogram",
                                                  "transition_matrix", "prior", "note")}
    # scores other than the purge's come only from the stages of the rating and mix sections
    if not any(_section(sd, manifest).startswith(("rating.", "mix")) for sd in stages):
        return out or None
    last = next((sd for sd in reversed(stages[1:]) if not sd.path.name.endswith("-export") and sd.complete), None)
    if last is None:
        return out or None
    rng: dict[str, list] = {}  # key -> [min, max, all integers, count]
    for recs in _iter_records(last):
        for r in recs:
            for k, v in (r.get("scores") or {}).items():
                if k.startswith(PURGE_PREFIX) or not _numeric(v):
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
            unit = _unit_bins(lo, hi, bins) if integer else None
            edges[k] = unit if unit is not None else np.linspace(lo, hi if hi > lo else lo + 1.0, 21)
        hist = {k: np.zeros(len(edges[k]) - 1, dtype=np.int64) for k in keys}
        for recs in _iter_records(last):
            scores = [r.get("scores") or {} for r in recs]
            for k in keys:
                vals = np.array([v for sc in scores if _numeric(v := sc.get(k))], dtype=np.float64)
                if vals.size:
                    idx = np.clip(np.searchsorted(edges[k], vals, side="right") - 1, 0, len(edges[k]) - 2)
                    hist[k] += np.bincount(idx, minlength=len(edges[k]) - 1)
        out["stage"] = last.path.name
        out["scores"] = [{"key": k, "edges": [round(float(x), 6) for x in edges[k]], "counts": hist[k].tolist(),
                          "records": rng[k][3], "min": rng[k][0], "max": rng[k][1]} for k in keys]
    return out or None


# -- costs ---------------------------------------------------------------------------------------


def _find_usage(obj: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(obj, dict):
        if any(k in obj for k in ("cache_hits", "tokens_in", "tokens_out", "requests")):
            out.append({"where": path, **{k: v for k, v in obj.items() if _numeric(v)}})
            return
        for k, v in obj.items():
            _find_usage(v, f"{path}.{k}" if path else str(k), out)


def _costs(stages: list[StageDir], manifest: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for sd in stages:
        c = _info(sd, manifest)
        rows.append({"stage": sd.path.name, "seconds": c.get("seconds"), "shards": c.get("shards"),
                     "records_in": c.get("in"), "records_out": c.get("out")})
    usage: list[dict[str, Any]] = []
    for key, value in manifest.items():  # wherever the model layer recorded usage (models.rate.usage, ...)
        if key not in ("config", "inputs", "versions", "argv", "executor", "ledger", "stages"):
            _find_usage(value, key, usage)
    for sd in stages:  # usage a stage put in its own counters
        c = _info(sd, manifest)
        for k, v in c.items():
            if isinstance(v, dict) and k not in ("dropped",):  # a stage's report is the stage's own
                _find_usage(v, sd.path.name if k == "report" else f"{sd.path.name}.{k}", usage)
    models = {stage_name(sd): m for sd in stages if (m := _stage_report(sd, manifest).get("model"))}
    return {"stages": rows, "elapsed_seconds": manifest.get("elapsed_seconds"), "usage": usage, "models": models}
