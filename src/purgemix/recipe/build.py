"""recipe -> registered stages -> ``Pipeline``: the only place a pipeline is assembled.

    ingest → normalise → purge (dedup, scores, rules) → quality (IFD + signals | DS2 rate + curate)
           → [semantic dedup] → fuse | distil → mix with HQ → export

``build_pipeline`` makes the whole run of a recipe (``purgemix run``); the verbs (``purge``, ``rate``,
``curate``, ``mix``, ``convert``, ``profile``) build their shorter pipelines in ``recipe/verbs.py`` from a
recipe too (``recipe.load.settings_recipe``: the options a user set, over ``DEFAULTS``), through the
same stage factories here, so one job gets the same settings whichever door it comes in by. Stages are
made by their registered names (``core.stage.STAGES``).

Models are built lazily by the stages that need them; every LLM call goes through the request cache, so
a run killed in the middle of fusion and started again replays what it already paid for.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from ..core.pipeline import InputSpec, OutputSpec, Pipeline
from ..core.stage import STAGES, Stage


class RunConfigError(ValueError):
    """The recipe asks for something that cannot be built."""


def registered_stages() -> dict[str, type[Stage]]:
    """Every stage by name. A family's stages register when their module is imported, so the builder
    imports the stage modules of every family before it looks a name up."""
    from ..mix import stages as _mix_stages  # noqa: F401
    from ..purge import normalise as _normalise, stages as _purge_stages  # noqa: F401
    from ..rating import ifd as _ifd, stages as _rating_stages  # noqa: F401
    from ..select import stage as _select  # noqa: F401

    return STAGES


def stage(name: str, *args: Any, **kwargs: Any) -> Stage:
    """A registered stage by name, made with the given settings."""
    stages = registered_stages()
    if name not in stages:
        raise RunConfigError(f"no stage named '{name}'; registered: {', '.join(sorted(stages))}")
    return stages[name](*args, **kwargs)


def load_generator(spec: str, budget: Any = None):
    """The LLM of a spec; ``fake:mix`` is the offline generator that speaks the mix prompts (tests, dry
    runs), cached like any other model. ``budget`` (a ``models.budget.Budget``) caps what it sends."""
    if spec == "fake:mix":
        from ..models import FakeLLM
        from ..models.budget import BudgetedLLM
        from ..models.cache import CachedLLM
        from ..testing.mix_responder import MixResponder

        fake: Any = FakeLLM(MixResponder(), name="fake:mix")
        return CachedLLM(BudgetedLLM(fake, budget) if budget is not None else fake)
    from ..models import load_llm

    return load_llm(spec, budget=budget)


def mix_budget(recipe: dict[str, Any]):
    """The spending cap of the mix's models (``mix.max_tokens_total`` / ``mix.max_cost``), or None."""
    from ..models.budget import Budget

    mix, models = recipe["mix"], recipe["models"]
    if mix.get("max_tokens_total") is None and mix.get("max_cost") is None:
        return None
    try:
        return Budget(max_tokens_total=None if mix.get("max_tokens_total") is None else int(mix["max_tokens_total"]),
                      max_cost=None if mix.get("max_cost") is None else float(mix["max_cost"]),
                      price_in=float(models.get("price_in") or 0), price_out=float(models.get("price_out") or 0))
    except ValueError as e:
        raise RunConfigError(str(e)) from None


def quality_reward(recipe: dict[str, Any], gen: Any, emb: Any):
    """The reward that scores new pairs (``mix.quality``): a rater LLM, a saved kNN-Bayes library, the
    heuristic placeholder, or None."""
    from ..mix.rewards import RaterQuality, heuristic_quality

    spec, models = str(recipe["mix"]["quality"]), recipe["models"]
    if spec == "none":
        return None
    if spec == "heuristic":
        return heuristic_quality
    if spec == "rater":
        rater = models.get("rater")
        return RaterQuality(gen if not rater or rater == models["generator"]
                            else load_generator(rater, getattr(gen, "budget", None)))
    if spec.startswith("knn:"):
        from ..mix.rewards import KNNBayesQuality
        from ..rating.knn_bayes import KNNBayes

        if emb is None:
            raise RunConfigError("mix.quality knn:PATH needs an embedder")
        return KNNBayesQuality(KNNBayes.load(spec[4:]), emb)
    raise RunConfigError(f"mix.quality must be rater | knn:PATH | heuristic | none, got '{spec}'")


def purge_stages(recipe: dict[str, Any], rules: Any = None) -> list[Stage]:
    """Dedup (first: the features and priors are computed on one copy of each record), scores, rules."""
    from ..core.rundir import read_json
    from ..purge.rules import load_rules

    cfg = recipe["purge"]
    dd, tokenizer = cfg["dedup"], cfg.get("tokenizer") or "regex"
    out: list[Stage] = []
    if dd.get("enabled", True):
        out.append(stage("purge-dedup", float(dd["threshold"]), int(dd["num_perm"]), int(dd["ngram"]),
                         bool(dd["near"]), dd["keep_by"], tokenizer=tokenizer))
    priors = None
    if cfg.get("priors"):
        priors = read_json(Path(cfg["priors"]))
        if "features" not in priors:
            raise RunConfigError(f"{cfg['priors']}: not a purgemix priors file (no 'features')")
    out += [stage("purge-scores", tokenizer=tokenizer),
            stage("purge-rules", rules if rules is not None else load_rules(cfg["rules"]), priors)]
    return out


def generation_stage(recipe: dict[str, Any], gen: Any, emb: Any, quality: Any, split: Any) -> Stage:
    """The fusion (ENTP) or distillation (LM-Mixup) stage of ``mix.method``, with the recipe's generation
    settings (temperature, max tokens, seed) on every path."""
    from ..mix.distil import DistilConfig
    from ..mix.fuse import FusionConfig
    from ..models import GenerationParams
    from ..vectors.cluster import CapacitySpec

    check_mix(recipe)
    mix, models = recipe["mix"], recipe["models"]
    seed, shard = int(recipe["run"].get("seed") or 0), int(recipe["run"]["shard_size"])
    max_tokens, budget = int(mix.get("max_tokens") or 1024), mix.get("budget")
    if mix["method"] == "fuse":
        k = mix["k"]
        single_op = "compose" if mix["operator"] == "compose" else "rewrite"
        cfg = FusionConfig(operator=single_op if mix["pairing"] == "none" else mix["operator"],
                           feedback=bool(mix["feedback"]), max_cycles=int(mix["max_cycles"]),
                           llm_check=bool(mix.get("llm_check", True)),
                           generation=GenerationParams(temperature=0.7, max_tokens=max_tokens, seed=seed))
        checker = load_generator(models["checker"], getattr(gen, "budget", None)) if models.get("checker") else None
        judge = audit_judge(recipe, gen, checker)
        st = stage("fuse", gen, emb, config=cfg, pairing=mix["pairing"], k=k if k == "auto" else int(k),
                   budget=budget, quality=quality, split=split, checker=checker, seed=seed,
                   min_pair_similarity=float(mix["min_pair_similarity"]), shard_size=shard, judge=judge)
        st.prices = (float(models.get("price_in") or 0), float(models.get("price_out") or 0))
        return st
    if mix["method"] == "distil":
        if quality is None:
            raise RunConfigError("distillation needs a quality reward: set mix.quality to rater, knn:PATH or heuristic")
        mean, std, lo, hi = mix["capacity"]
        capacity = CapacitySpec(float(mean), float(std), int(lo), int(hi))
        dcfg = DistilConfig(samples=int(mix["samples"]), min_reward=float(mix["min_reward"]),
                            generation=GenerationParams(temperature=1.0, max_tokens=max_tokens, seed=seed))
    st = stage("distil", gen, emb, quality, config=dcfg, capacity=capacity, split=split,
               max_clusters=budget, seed=seed, shard_size=shard, judge=audit_judge(recipe, gen, None))
    st.prices = (float(models.get("price_in") or 0), float(models.get("price_out") or 0))
    return st


def audit_judge(recipe: dict[str, Any], gen: Any, checker: Any):
    """The judge of the audit (``mix.judge``): ``models.judge``, else the checker, else the generator."""
    models = recipe["models"]
    if not recipe["mix"].get("judge", True):
        return None
    if models.get("judge"):
        return load_generator(models["judge"], getattr(gen, "budget", None))
    return checker or gen


def check_mix(recipe: dict[str, Any]) -> None:
    """The mix settings' own checks, before any model is loaded (a typo costs no model load)."""
    from ..mix.fuse import FUSION_OPERATORS

    mix = recipe["mix"]
    if mix["method"] not in ("fuse", "distil"):
        raise RunConfigError(f"mix.method must be fuse or distil, got '{mix['method']}'")
    if mix["pairing"] not in ("cluster", "random", "none"):
        raise RunConfigError(f"mix.pairing must be cluster, random or none, got '{mix['pairing']}'")
    if mix["operator"] not in FUSION_OPERATORS or mix["operator"] == "rewrite":
        raise RunConfigError("mix.operator must be one of merged_corpus, direct_answer, consistency_repair, "
                             "fact_completion, compose")
    from ..mix.rank import parse_ratio

    try:
        parse_ratio(mix["ratio"])
    except ValueError as e:
        raise RunConfigError(f"mix.ratio: {e}") from None
    if mix["k"] != "auto" and not str(mix["k"]).isdigit():
        raise RunConfigError(f"mix.k must be auto or a number, got '{mix['k']}'")
    try:
        mean, std, lo, hi = mix["capacity"]
        float(mean), float(std), int(lo), int(hi)
    except (TypeError, ValueError) as e:
        raise RunConfigError(f"mix.capacity must be MEAN,STD,MIN,MAX (e.g. 3,1,2,5): {e}") from None
    q = str(mix["quality"])
    if q not in ("rater", "heuristic", "none") and not q.startswith("knn:"):
        raise RunConfigError(f"mix.quality must be rater | knn:PATH | heuristic | none, got '{q}'")
    if mix["method"] == "distil" and q == "none":
        raise RunConfigError("distillation needs a quality reward: set mix.quality to rater, knn:PATH or heuristic")


def mix_stage(recipe: dict[str, Any], quality: Any, emb: Any, split: Any) -> Stage:
    mix = recipe["mix"]
    return stage("mix", target=mix.get("target"), ratio=mix["ratio"],
                 quality_cut=float(mix["quality_cut"]) if quality is not None else None,
                 embedder=emb, split=split, shard_size=int(recipe["run"]["shard_size"]))


def assemble(recipe: dict[str, Any], inputs: list[InputSpec], stages: list[Stage], *, command: str,
             output: OutputSpec | None | bool = True, run_dir: str | os.PathLike | None = None, force: bool = False,
             label: str | None = None, on_stage: Callable[[str], None] | None = None,
             extra_config: dict[str, Any] | None = None) -> Pipeline:
    """The pipeline of ``stages`` over ``inputs`` with the recipe's run settings (shards, workers, executor,
    strictness, limit). ``output=True``: the recipe's ``output``; an ``OutputSpec`` or None (no export)
    otherwise. Without ``run_dir`` the pipeline names its own (``Pipeline.default_run_dir``)."""
    run = recipe["run"]
    if output is True:
        out = recipe["output"]
        if not out.get("path"):
            raise RunConfigError("the recipe names no output: set output.path (or -o OUT)")
        output = OutputSpec(str(out["path"]), out.get("shape") or "messages", out.get("format"))
    return Pipeline(inputs, stages, output or None, run_dir, executor=run["executor"], workers=int(run["workers"]),
                    shard_size=int(run["shard_size"]), strict=bool(run.get("strict")), force=force,
                    max_record_bytes=int(run.get("max_record_bytes") or 1 << 20), limit=recipe.get("limit"),
                    command=command, label=label, extra_config=extra_config, on_stage=on_stage)


def check_inputs(paths: list[Any]) -> None:
    """Every input exists and has a readable format, checked before any model is loaded: a mistyped file
    name is the first error a user sees, not the last after a missing model package."""
    from ..io.readers import Source

    for p in paths:
        Source.open(p.path if hasattr(p, "path") else p)  # raises SourceError, one clear line


def build_pipeline(recipe: dict[str, Any], *, run_dir: str | None = None, force: bool = False,
                   llm: Any = None, embedder: Any = None, on_stage: Callable[[str], None] | None = None) -> Pipeline:
    """The whole run of a recipe (``purgemix run``)."""
    from ..mix.rank import SplitSpec
    from ..models import load_embedder

    inputs = recipe["inputs"]
    if not inputs:
        raise RunConfigError("the recipe names no inputs: add `inputs:` or pass data files after the recipe")
    if not recipe["output"].get("path"):
        raise RunConfigError("the recipe names no output: set output.path (or -o OUT)")
    check_inputs(inputs)
    check_mix(recipe)
    models = recipe["models"]
    seed = int(recipe["run"].get("seed") or 0)
    gen = llm if llm is not None else load_generator(models["generator"], mix_budget(recipe))
    emb = embedder if embedder is not None else load_embedder(models["embedder"])

    stages: list[Stage] = [stage("normalise")]
    if recipe["purge"]["enabled"]:
        stages += purge_stages(recipe)

    quality = recipe["quality"]
    split_cfg = recipe["split"]
    if quality["method"] == "rate":
        rater = models.get("rater") or models["generator"]
        rate = recipe["rate"]
        stages.append(stage("rate", rater, template=rate["template"], attempts=int(rate["attempts"]),
                            batch_size=int(rate["batch_size"]),
                            llm=gen if rater == models["generator"] and llm is not None else None))
        cur = quality.get("curate") or {}
        stages.append(stage("curate", models["embedder"], k=int(cur.get("k", 10)),
                            threshold=float(cur.get("threshold", 0.5)), emb=emb))
        split = SplitSpec(score_keys=("ds2.curated", "ds2.score"), hq_min=split_cfg["hq"], lq_max=split_cfg["lq"])
    elif quality["method"] == "signals":
        stages.append(stage("quality", models.get("scorer"), max_length=int(quality.get("max_length") or 1024),
                            sample=quality.get("sample"), seed=seed, embedder=models["embedder"], emb=emb))
        split = SplitSpec(score_keys=("quality.class",), hq_min=split_cfg["hq"], lq_max=split_cfg["lq"])
    else:
        raise RunConfigError(f"quality.method must be signals or rate, got '{quality['method']}'")

    if recipe["semdedup"]["enabled"]:
        stages.append(stage("semdedup", emb, threshold=float(recipe["semdedup"]["threshold"]),
                            score_key=split.score_keys[0], seed=seed))
    q = quality_reward(recipe, gen, emb)
    stages.append(generation_stage(recipe, gen, emb, q, split))
    if recipe["mix"].get("rank_and_mix", True):
        stages.append(mix_stage(recipe, q, emb, split))
    return assemble(recipe, [InputSpec(str(p)) for p in inputs], stages, command="run", run_dir=run_dir,
                    force=force, label=recipe["name"], on_stage=on_stage,
                    extra_config={"recipe": {k: v for k, v in recipe.items() if not k.startswith("_")}})
