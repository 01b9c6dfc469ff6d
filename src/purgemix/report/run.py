"""The report of any run directory: what happened to the data, stage by stage, as one HTML page.

``build_run_report(run_dir)`` reads the run (manifest, per-stage ``done.json`` counters, events, fitted ``state.json``
files, records) and returns a JSON-able dict with one entry per section that the run has data for;
``report.render.render_html(report)`` turns it into a self-contained page (inline CSS and SVG only). Everything is
streamed shard by shard: histograms are fixed bins filled as shards are read, examples and map points are
reservoir samples, so memory does not grow with the run.

A stage is found by the report section it declares (``Stage.section``, stored with its counters), never by its
name, and what it learnt while it ran (``Stage.report()``) is read from its counters too. One module per section
in ``report/sections/``: ``funnel``, ``purge``, ``clusters`` (clusters and examples), ``ratings``, ``costs``; the
ledger section is ``core.ledger.check_ledger``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from ..core.ids import id_hash
from ..core.ledger import check_ledger
from ..core.rundir import RunDir, StageDir
from ..core.sampling import Reservoir
from .sections.clusters import mix_sections
from .sections.common import BINS, shards_of, stage_name
from .sections.costs import costs_section
from .sections.funnel import funnel_section
from .sections.purge import purge_section
from .sections.ratings import ratings_section

SECTIONS = ("funnel", "purge", "ratings", "clusters", "examples", "ledger", "costs")


def build_run_report(run_dir: str | Path, *, examples: int = 6, map_groups: int = 150, bins: int = BINS,
                     max_features: int = 24, seed: int = 0) -> dict[str, Any]:
    run = RunDir(run_dir)
    manifest = run.manifest()
    stages = run.stage_dirs()
    if not stages:
        raise FileNotFoundError(str(Path(run_dir) / "stages"))
    rep: dict[str, Any] = {"run": run_info(run, manifest, stages), "missing": []}
    events = scan_events(stages, examples, map_groups, seed)
    rep["funnel"] = funnel_section(stages, manifest, events)
    purge = purge_section(stages, events, bins, max_features, seed)
    if purge:
        rep["purge"] = purge
    clusters, ex = mix_sections(run, stages, manifest, events, rep["missing"], examples, map_groups)
    if clusters:
        rep["clusters"] = clusters
    if ex:
        rep["examples"] = ex
    rep["ledger"] = check_ledger(run)
    ratings = ratings_section(stages, manifest, bins)
    if ratings:
        rep["ratings"] = ratings
    rep["costs"] = costs_section(stages, manifest)
    rep["sections"] = [k for k in SECTIONS if rep.get(k)]
    return rep


def run_info(run: RunDir, manifest: dict[str, Any], stages: list[StageDir]) -> dict[str, Any]:
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


def scan_events(stages: list[StageDir], examples: int, map_groups: int, seed: int) -> dict[str, Any]:
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
        for i in shards_of(sd):
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
