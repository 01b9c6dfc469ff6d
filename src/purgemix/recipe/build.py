"""``purgemix run``: a recipe becomes one resumable pipeline.

    ingest → normalise → purge (dedup, scores, rules) → quality (IFD + signals | DS2 rate + curate)
           → [semantic dedup] → fuse | distil → mix with HQ → export

Models are built lazily by the stages that need them; every LLM call goes through the request
cache, so a run killed in the middle of fusion and started again replays what it already paid for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..core.pipeline import InputSpec, OutputSpec, Pipeline, config_hash


class RunConfigError(ValueError):
    """The recipe asks for something that cannot be built."""


def _llm(spec: str):
    if spec == "fake:mix":  # offline generator that speaks the mix prompts (tests, dry runs), cached like any
        from ..models import FakeLLM
        from ..models.cache import CachedLLM
        from ..testing.mix_responder import MixResponder

        return CachedLLM(FakeLLM(MixResponder(), name="fake:mix"))
    from ..models import load_llm

    return load_llm(spec)


def build_pipeline(recipe: dict[str, Any], *, run_dir: str | None = None, force: bool = False,
                   llm: Any = None, embedder: Any = None, on_stage: Callable[[str], None] | None = None) -> Pipeline:
    from ..mix.cluster import CapacitySpec
    from ..mix.distil import DistilConfig, heuristic_quality
    from ..mix.fuse import FusionConfig
    from ..mix.quality import RaterQuality
    from ..mix.rank import SplitSpec
    from ..mix.stages import DistilStage, FuseStage, MixStage, SemDedupStage
    from ..models import GenerationParams, load_embedder
    from ..purge.normalise import NormaliseStage
    from ..purge.rules import load_rules
    from ..purge.stages import DedupStage, RuleStage, ScoreStage
    from ..rating.stages import CurateStage, QualityStage, RateStage

    inputs = recipe["inputs"]
    if not inputs:
        raise RunConfigError("the recipe names no inputs: add `inputs:` or pass data files after the recipe")
    out = recipe["output"]
    if not out.get("path"):
        raise RunConfigError("the recipe names no output: set output.path (or -o OUT)")
    run, models, mix = recipe["run"], recipe["models"], recipe["mix"]
    shard = int(run["shard_size"])
    seed = int(run.get("seed") or 0)

    gen = llm if llm is not None else _llm(models["generator"])
    emb = embedder if embedder is not None else load_embedder(models["embedder"])

    stages: list = [NormaliseStage()]
    if recipe["purge"]["enabled"]:
        dd_cfg = recipe["purge"]["dedup"]
        use_dedup = dd_cfg.get("enabled", True)
        if use_dedup:  # first: the features and priors are computed on one copy of each record
            stages.append(DedupStage(float(dd_cfg.get("threshold", 0.7)), 128, 3, bool(dd_cfg.get("near", True))))
        stages += [ScoreStage(), RuleStage(load_rules(recipe["purge"]["rules"]))]

    quality = recipe["quality"]
    split_cfg = recipe["split"]
    if quality["method"] == "rate":
        rater = models.get("rater") or models["generator"]
        stages.append(RateStage(rater, llm=gen if rater == models["generator"] and llm is not None else None))
        cur = quality.get("curate") or {}
        stages.append(CurateStage(models["embedder"], k=int(cur.get("k", 10)),
                                  threshold=float(cur.get("threshold", 0.5)), emb=emb))
        split = SplitSpec(score_keys=("ds2.curated", "ds2.score"), hq_min=split_cfg["hq"], lq_max=split_cfg["lq"])
    elif quality["method"] == "signals":
        stages.append(QualityStage(models.get("scorer"), max_length=int(quality.get("max_length") or 1024),
                                   sample=quality.get("sample"), seed=seed, embedder=models["embedder"], emb=emb))
        split = SplitSpec(score_keys=("quality.class",), hq_min=split_cfg["hq"], lq_max=split_cfg["lq"])
    else:
        raise RunConfigError(f"quality.method must be signals or rate, got '{quality['method']}'")

    if recipe["semdedup"]["enabled"]:
        stages.append(SemDedupStage(emb, threshold=float(recipe["semdedup"]["threshold"]),
                                    score_key=split.score_keys[0], seed=seed))

    q_spec = mix["quality"]
    if q_spec == "none":
        q = None
    elif q_spec == "heuristic":
        q = heuristic_quality
    elif q_spec == "rater":
        rater = models.get("rater")
        q = RaterQuality(gen if not rater or rater == models["generator"] else _llm(rater))
    elif str(q_spec).startswith("knn:"):
        from ..mix.quality import KNNBayesQuality
        from ..rating.knn_bayes import KNNBayes

        q = KNNBayesQuality(KNNBayes.load(q_spec[4:]), emb)
    else:
        raise RunConfigError(f"mix.quality must be rater | knn:PATH | heuristic | none, got '{q_spec}'")

    k = mix["k"]
    max_tokens = int(mix.get("max_tokens") or 1024)
    budget = mix.get("budget")
    if mix["method"] == "fuse":
        cfg = FusionConfig(operator="rewrite" if mix["pairing"] == "none" else mix["operator"],
                           feedback=bool(mix["feedback"]), max_cycles=int(mix["max_cycles"]),
                           llm_check=bool(mix.get("llm_check", True)),
                           generation=GenerationParams(temperature=0.7, max_tokens=max_tokens, seed=seed))
        checker = _llm(models["checker"]) if models.get("checker") else None
        stages.append(FuseStage(gen, emb, config=cfg, pairing=mix["pairing"], k=k if k == "auto" else int(k),
                                budget=budget, quality=q, split=split, checker=checker, seed=seed,
                                min_pair_similarity=float(mix["min_pair_similarity"]), shard_size=shard))
    elif mix["method"] == "distil":
        if q is None:
            raise RunConfigError("distillation needs a quality reward: set mix.quality to rater, knn:PATH or heuristic")
        mean, std, lo, hi = mix["capacity"]
        dcfg = DistilConfig(samples=int(mix["samples"]), min_reward=float(mix["min_reward"]),
                            generation=GenerationParams(temperature=1.0, max_tokens=max_tokens, seed=seed))
        stages.append(DistilStage(gen, emb, q, config=dcfg,
                                  capacity=CapacitySpec(float(mean), float(std), int(lo), int(hi)), split=split,
                                  max_clusters=budget, seed=seed, shard_size=shard))
    else:
        raise RunConfigError(f"mix.method must be fuse or distil, got '{mix['method']}'")
    stages.append(MixStage(target=mix.get("target"), ratio=mix["ratio"],
                           quality_cut=float(mix["quality_cut"]) if q is not None else None,
                           embedder=emb, split=split, shard_size=shard))

    pipe = Pipeline([InputSpec(str(p)) for p in inputs], stages,
                    OutputSpec(str(out["path"]), out.get("shape") or "messages", out.get("format")),
                    run_dir or ".", executor=run["executor"], workers=int(run["workers"]), shard_size=shard,
                    force=force, limit=recipe.get("limit"), command="run",
                    extra_config={"recipe": {k: v for k, v in recipe.items() if not k.startswith("_")}},
                    on_stage=on_stage)
    if run_dir is None:
        pipe.run.path = Path("purgemix-runs") / f"run-{recipe['name']}-{config_hash(pipe.config())}"
    return pipe
