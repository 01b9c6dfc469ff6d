"""The verbs' pipelines (``purgemix rate``, ``curate``, ``mix``, ``convert``, ``profile``), built from a recipe.

A verb turns the options its user set into a recipe (``recipe.load.settings_recipe``: over ``DEFAULTS``, so
the generator, shard size and generation settings are the ones ``purgemix run`` uses) and asks here for its
pipeline; the stages come from the same factories as the whole run's (``recipe/build.py``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..core.pipeline import InputSpec, OutputSpec, Pipeline
from ..core.stage import Stage
from .build import (
    RunConfigError,
    assemble,
    check_inputs,
    check_mix,
    generation_stage,
    load_generator,
    mix_budget,
    mix_stage,
    purge_stages,
    quality_reward,
    stage,
)


def ingest_pipeline(recipe: dict[str, Any], inputs: list[InputSpec], output: OutputSpec | None, *, command: str,
                    run_dir: str | os.PathLike | None = None, force: bool = False) -> Pipeline:
    """No stages: ingest (validation, quarantine, ledger) and, with an output, export (``convert``); without
    one the run directory's ingest shards are what a caller reads (``profile``)."""
    return assemble(recipe, inputs, [], command=command, output=output, run_dir=run_dir, force=force)


def rate_pipeline(recipe: dict[str, Any], inputs: list[InputSpec], output: OutputSpec, *, llm: Any = None,
                  run_dir: str | os.PathLike | None = None, force: bool = False) -> Pipeline:
    """DS2 rating of every record by ``models.rater`` (default: the generator)."""
    models, rate = recipe["models"], recipe["rate"]
    rater = models.get("rater") or models["generator"]
    st = stage("rate", rater, template=rate["template"], attempts=int(rate["attempts"]),
               batch_size=int(rate["batch_size"]), llm=llm)
    return assemble(recipe, inputs, [st], command="rate", output=output, run_dir=run_dir, force=force)


def curate_pipeline(recipe: dict[str, Any], inputs: list[InputSpec], output: OutputSpec, *, score_key: str,
                    longtail_k: int, emb: Any = None, run_dir: str | os.PathLike | None = None,
                    force: bool = False) -> Pipeline:
    """The statistical correction of rated scores (and long-tail scores)."""
    cur = recipe["quality"]["curate"]
    prefix = score_key.rsplit(".", 1)[0] if "." in score_key else score_key
    st = stage("curate", recipe["models"]["embedder"], score_key=score_key, prefix=prefix, k=int(cur["k"]),
               threshold=float(cur["threshold"]), longtail_k=longtail_k, emb=emb)
    return assemble(recipe, inputs, [st], command="curate", output=output, run_dir=run_dir, force=force)


def mix_pipeline(recipe: dict[str, Any], lq: list[str], hq: list[str], output: OutputSpec, *,
                 run_dir: str | os.PathLike | None = None, force: bool = False) -> Pipeline:
    """The mix of two pools named by file (``purgemix mix LQ... --hq HQ...``): the files tag each record's
    split, then [semantic dedup] → fuse | distil → [rank and mix] → export."""
    from ..mix.rank import SplitSpec
    from ..models import load_embedder

    names = [Path(p).name for p in lq + hq]
    if len(set(names)) != len(names):
        raise RunConfigError("input files must have distinct file names (the name tells the LQ and HQ pools apart)")
    check_inputs(lq + hq)
    check_mix(recipe)
    models, mix = recipe["models"], recipe["mix"]
    gen = load_generator(models["generator"], mix_budget(recipe))
    needs_emb = (mix["method"] == "distil" or mix["pairing"] == "cluster" or recipe["semdedup"]["enabled"]
                 or (mix.get("target") and mix.get("rank_and_mix", True)))
    emb = load_embedder(models["embedder"]) if needs_emb else None
    q = quality_reward(recipe, gen, emb)
    split = SplitSpec()  # reads the tag the first stage writes
    stages: list[Stage] = [stage("tag-split", {**{Path(p).name: "lq" for p in lq}, **{Path(p).name: "hq" for p in hq}})]
    if recipe["semdedup"]["enabled"]:
        stages.append(stage("semdedup", emb, threshold=float(recipe["semdedup"]["threshold"]),
                            score_key="ds2.curated", seed=int(recipe["run"].get("seed") or 0)))
    stages.append(generation_stage(recipe, gen, emb, q, split))
    if mix.get("rank_and_mix", True):
        stages.append(mix_stage(recipe, q, emb, split))
    return assemble(recipe, [InputSpec(p) for p in lq + hq], stages, command="mix", output=output, run_dir=run_dir,
                    force=force)


def select_pipeline(recipe: dict[str, Any], inputs: list[InputSpec], output: OutputSpec | None, *,
                    run_dir: str | os.PathLike | None = None, force: bool = False) -> Pipeline:
    """The stages a selector's signals come from (IFD under ``models.scorer``, default ``DEFAULT_SCORER``;
    Superfiltering's IFD under the smallest local model), then ``select`` keeping ``select.n`` records."""
    from ..select.base import DEFAULT_SCORER
    from ..select.stage import make_selector

    check_inputs(inputs)
    sel, models = recipe["select"], recipe["models"]
    options = dict(sel.get("options") or {})
    selector = make_selector(sel["strategy"], **options)
    scorer = models.get("scorer") or DEFAULT_SCORER
    if selector.uses_scorer and "model" not in options:
        options["model"] = scorer
    stages: list[Stage] = []
    if "ifd" in selector.needs:
        stages.append(stage("ifd", scorer))
    if "superfilter" in selector.needs:  # always the smallest model, whatever the scorer
        stages.append(stage("ifd", "smollm2-135m", prefix="superfilter"))
    if "ds2" in selector.needs:
        rate = recipe["rate"]
        stages.append(stage("rate", models.get("rater") or models["generator"], template=rate["template"],
                            attempts=int(rate["attempts"]), batch_size=int(rate["batch_size"])))
    if "curate" in selector.needs:
        cur = recipe["quality"]["curate"]
        stages.append(stage("curate", models["embedder"], score_key="ds2.score", prefix="ds2", k=int(cur["k"]),
                            threshold=float(cur["threshold"])))
    embedder = None
    if selector.uses_embeddings:
        from ..models import load_embedder

        embedder = load_embedder(recipe["models"]["embedder"])
    llm = None
    if selector.uses_llm:
        from .build import load_generator

        llm = load_generator(models.get("rater") or models["generator"])
    stages.append(stage("select", sel["strategy"], int(sel["n"]), embedder=embedder, llm=llm,
                        seed=int(recipe["run"].get("seed") or 0), options=options,
                        shard_size=int(recipe["run"]["shard_size"])))
    return assemble(recipe, inputs, stages, command="select", output=output, run_dir=run_dir, force=force,
                    label=sel["strategy"])


def purge_pipeline(recipe: dict[str, Any], inputs: list[InputSpec], output: OutputSpec | None, *, rules: Any = None,
                   run_dir: str | os.PathLike | None = None, force: bool = False, on_stage: Any = None) -> Pipeline:
    """Dedup → scores → rules → [export]. The default run directory is named without the rules stage
    (it declares ``names_run_dir = False``), so a run with other rules reuses the stored scores and
    duplicate decisions and only applies the rules again."""
    return assemble(recipe, inputs, purge_stages(recipe, rules), command="purge", output=output, run_dir=run_dir,
                    force=force, on_stage=on_stage)


def run_purge(inputs: list[InputSpec], output: str | None, *, rules: Any = None, to: str = "messages",
              out_format: str | None = None, dry_run: bool = False, report_dir: str | os.PathLike | None = None,
              run_dir: str | os.PathLike | None = None, force: bool = False, on_stage: Any = None,
              **settings: Any) -> dict[str, Any]:
    """The whole symbolic purge as one call (``purgemix purge``, the benchmarks): the pipeline, then its
    outputs (``purge.run.write_outputs``: dropped list, priors, report JSON) and the report's page. ``settings`` are recipe keys by
    their last name: ``threshold``, ``near``, ``num_perm``, ``ngram``, ``keep_by``, ``dedup`` (False: no
    dedup), ``tokenizer``, ``priors`` (a reference priors file), ``workers``, ``executor``, ``shard_size``,
    ``strict``, ``max_record_bytes``."""
    from ..purge.run import write_outputs
    from .load import settings_recipe

    where = {"threshold": "purge.dedup.threshold", "near": "purge.dedup.near", "num_perm": "purge.dedup.num_perm",
             "ngram": "purge.dedup.ngram", "keep_by": "purge.dedup.keep_by", "dedup": "purge.dedup.enabled",
             "tokenizer": "purge.tokenizer", "priors": "purge.priors", "workers": "run.workers",
             "executor": "run.executor", "shard_size": "run.shard_size", "strict": "run.strict",
             "max_record_bytes": "run.max_record_bytes"}
    unknown = set(settings) - set(where)
    if unknown:
        raise TypeError(f"run_purge: unknown settings {sorted(unknown)}; known: {sorted(where)}")
    recipe = settings_recipe({where[k]: v for k, v in settings.items()}, name="purge")
    out_spec = None if dry_run or not output else OutputSpec(str(output), to, out_format)
    pipe = purge_pipeline(recipe, inputs, out_spec, rules=rules, run_dir=run_dir, force=force, on_stage=on_stage)
    summary = write_outputs(pipe, pipe.execute(), output=output, report_dir=report_dir, dry_run=dry_run)
    _write_purge_page(Path(summary["outputs"]["report_json"]), Path(summary["outputs"]["report_html"]))
    return summary


def _write_purge_page(report_json: Path, page: Path) -> None:
    import orjson

    from ..core.rundir import atomic_write_bytes
    from ..report.purge_page import render_html

    atomic_write_bytes(page, render_html(orjson.loads(report_json.read_bytes())).encode("utf-8"))
