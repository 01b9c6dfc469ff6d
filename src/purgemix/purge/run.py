"""``purge()``: the whole symbolic purge as one call (used by ``purgemix purge`` and the benchmarks).

Outputs (``OUT`` is the kept data; ``STEM`` is ``OUT`` without its suffixes):

``OUT``                    kept records
``STEM.dropped.jsonl``     every dropped record with ``purge.rules`` (all rules that fired), the first
                           reason, the feature values behind the rules, and ``duplicate_of`` for duplicates
                           (which are dropped before scoring, so they carry no ``scores``)
``STEM.priors.json``       the fitted priors (robust statistics and quantile grid per feature)
``STEM.report.json/.html`` hits per rule, overlaps, examples, histograms with thresholds

With ``dry_run`` nothing but the report, priors and dropped list is written (to ``report_dir``,
default: the run directory's ``report/``). The run directory's default name depends on the inputs,
scorers and dedup settings but not on the rules, so re-running with other rules reuses the stored
scores and duplicate decisions and only re-applies the rules.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import orjson
import zstandard

from ..core.pipeline import InputSpec, OutputSpec, Pipeline, config_hash
from ..core.rundir import atomic_write_bytes, atomic_write_json, read_json
from ..io.writers import Writer
from .report import EXAMPLES, ReportCounts, render_html
from .rules import RuleSet, load_rules
from .stages import COUNTS_SUFFIX, DROPPED_SUFFIX, DedupStage, RuleStage, ScoreStage, dropped_row


def stem_of(path: str | os.PathLike) -> Path:
    p = Path(path)
    name = p.name
    for suf in (".gz", ".zst"):
        name = name.removesuffix(suf)
    for suf in (".jsonl", ".json", ".parquet", ".csv"):
        name = name.removesuffix(suf)
    return p.with_name(name)


def purge(
    inputs: list[InputSpec],
    output: str | None,
    *,
    rules: RuleSet | str | None = None,
    to: str = "messages",
    out_format: str | None = None,
    dry_run: bool = False,
    reference_priors: str | None = None,
    dedup: bool = True,
    near: bool = True,
    threshold: float = 0.7,
    num_perm: int = 128,
    ngram: int = 3,
    keep_by: str = "response.words:max",
    tokenizer: str = "regex",
    run_dir: str | os.PathLike | None = None,
    report_dir: str | os.PathLike | None = None,
    workers: int = 1,
    executor: str = "local",
    shard_size: int = 10_000,
    strict: bool = False,
    force: bool = False,
    max_record_bytes: int = 1 << 20,
    on_stage: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    ruleset = rules if isinstance(rules, RuleSet) else load_rules(rules)
    ref = None
    if reference_priors:
        ref = read_json(Path(reference_priors))
        if "features" not in ref:
            raise ValueError(f"{reference_priors}: not a purgemix priors file (no 'features')")
    # dedup first: the features and the priors are computed on one copy of each record
    dd = DedupStage(threshold, num_perm, ngram, near, keep_by, tokenizer=tokenizer) if dedup else None
    stages: list = [dd] if dd else []
    stages += [ScoreStage(tokenizer=tokenizer), RuleStage(ruleset, ref)]
    out_spec = None if dry_run or not output else OutputSpec(str(output), to, out_format)
    pipe = Pipeline(inputs, stages, out_spec, run_dir or ".", executor=executor, workers=workers,
                    shard_size=shard_size, strict=strict, force=force, max_record_bytes=max_record_bytes,
                    command="purge", on_stage=on_stage)
    if run_dir is None:
        cfg = pipe.config()
        key = {"inputs": cfg["inputs"], "stages": cfg["stages"][:-1], "shard_size": shard_size}
        pipe.run.path = Path("purgemix-runs") / f"purge-{config_hash(key)}"
    summary = pipe.execute()
    run = pipe.run
    n = len(stages)
    rules_dir = run.stage(n, RuleStage.name)
    rules_state = read_json(rules_dir.path / "state.json")
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
    atomic_write_bytes(paths["report_html"], render_html(rep).encode("utf-8"))
    summary["outputs"].update({k: str(v) for k, v in paths.items()})
    summary["dropped_by_rule"] = {r["name"]: r["fired"] for r in rep["rules"] if r["fired"]}
    summary["dedup"] = (dedup_state or {}).get("stats")
    summary["warnings"] = rules_state.get("warnings", [])
    summary["dry_run"] = dry_run
    return summary
