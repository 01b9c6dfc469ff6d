"""A finished purge's outputs (``write_outputs``; the pipeline is built by ``recipe.verbs.purge_pipeline`` and run
by ``recipe.verbs.run_purge``, which ``purgemix purge`` and the benchmarks call).

Outputs (``OUT`` is the kept data; ``STEM`` is ``OUT`` without its suffixes):

``OUT``                    kept records
``STEM.dropped.jsonl``     every dropped record with ``purge.rules`` (all rules that fired), the first
                           reason, the feature values behind the rules, and ``duplicate_of`` for duplicates
                           (which are dropped before scoring, so they carry no ``scores``)
``STEM.priors.json``       the fitted priors (robust statistics and quantile grid per feature)
``STEM.report.json``       hits per rule, overlaps, examples, histograms with thresholds (its page,
                           ``STEM.report.html``, is rendered by ``report/purge_page.py``)

With ``dry_run`` nothing but the report, priors and dropped list is written (to ``report_dir``,
default: the run directory's ``report/``). The run directory's default name leaves out the rules, so
re-running with other rules reuses the stored scores and duplicate decisions and only re-applies the rules.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
import zstandard

from ..core.rundir import atomic_write_bytes, atomic_write_json, read_json
from ..io.writers import Writer
from .report import EXAMPLES, ReportCounts
from .stages.dedup import DedupStage
from .stages.dropped import COUNTS_SUFFIX, DROPPED_SUFFIX, dropped_row
from .stages.rules import RuleStage


def stem_of(path: str | os.PathLike) -> Path:
    p = Path(path)
    name = p.name
    for suf in (".gz", ".zst"):
        name = name.removesuffix(suf)
    for suf in (".jsonl", ".json", ".parquet", ".csv"):
        name = name.removesuffix(suf)
    return p.with_name(name)


def write_outputs(pipe: Any, summary: dict[str, Any], *, output: str | None = None,
                  report_dir: str | os.PathLike | None = None, dry_run: bool = False) -> dict[str, Any]:
    """The outputs of a finished purge pipeline (dedup → scores → rules): the dropped list, the priors and
    the report JSON, next to ``output`` (or in ``report_dir``, or the run directory's ``report/``). Returns the
    pipeline's summary with their paths (``report_html`` is where the caller renders the page,
    ``report/purge_page.py``: the purge family renders no HTML) and the purge's figures added."""
    stages = pipe.stages
    run = pipe.run
    n = len(stages)
    rules_dir = run.stage(n, RuleStage.name)
    rules_state = read_json(rules_dir.path / "state.json")
    dd = next((s for s in stages if isinstance(s, DedupStage)), None)
    dedup_dir = run.stage(1, DedupStage.name) if dd else None
    dedup_state = read_json(dedup_dir.path / "state.json") if dd else None
    if report_dir is not None:
        base = Path(report_dir) / "purge"
    elif output:
        base = stem_of(output)
    else:
        base = run.path / "report" / "purge"
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = {
        "dropped": Path(f"{base}.dropped.jsonl"),
        "priors": Path(f"{base}.priors.json"),
        "report_json": Path(f"{base}.report.json"),
        "report_html": Path(f"{base}.report.html"),
    }

    counts = ReportCounts()  # the report's counts and examples, gathered in the same pass as the dropped list
    with Writer(paths["dropped"], "jsonl") as w:
        for d in ([dedup_dir] if dedup_dir else []) + [rules_dir]:
            for i in range(d.info()["shards"]):
                # the workers rendered each shard's dropped lines and counted them (side files); a run
                # directory written before that has only the events, which are rendered and counted here
                side = d.path / f"{d.shard_name(i)}.{DROPPED_SUFFIX}"
                counted = d.path / f"{d.shard_name(i)}.{COUNTS_SUFFIX}"
                if side.exists() and counted.exists():
                    part = orjson.loads(counted.read_bytes())
                    counts.merge(part)
                    w.write_jsonl_bytes(zstandard.ZstdDecompressor().decompress(side.read_bytes()),
                                        sum(part["first"].values()))
                    continue
                rendered = side.exists()
                events = d.read_events(i, scores=not rendered, records=not rendered)
                if rendered and any(len(counts.examples.get(a, ())) < EXAMPLES
                                    for e in events if e.get("outcome") == "dropped"
                                    for a in e.get("rules") or [e.get("reason", "?")]):
                    events = d.read_events(i, scores=False)  # a rule still lacks examples: with the records
                for e in events:
                    counts.add(e)
                if rendered:
                    n = sum(1 for e in events if e.get("outcome") == "dropped")
                    w.write_jsonl_bytes(zstandard.ZstdDecompressor().decompress(side.read_bytes()), n)
                else:
                    w.write(dropped_row(e) for e in events if e.get("outcome") == "dropped")
    atomic_write_json(paths["priors"], rules_state["priors"])
    rep = counts.report(rules_state, dedup_state, summary)
    atomic_write_bytes(paths["report_json"], orjson.dumps(rep, option=orjson.OPT_INDENT_2, default=str))
    summary["outputs"].update({k: str(v) for k, v in paths.items()})
    summary["dropped_by_rule"] = {r["name"]: r["fired"] for r in rep["rules"] if r["fired"]}
    summary["dedup"] = (dedup_state or {}).get("stats")
    summary["warnings"] = rules_state.get("warnings", [])
    summary["dry_run"] = dry_run
    return summary
