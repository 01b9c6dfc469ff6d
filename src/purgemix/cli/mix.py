"""purgemix mix LQ... --hq HQ -o OUT: fuse (ENTP) or distil (LM-Mixup) the LQ pool, then mix."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ForceOpt, JsonOpt, RunDirOpt, ShardOpt, default_run_dir, emit, fail, friendly_errors, report_summary


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def mix(
        inputs: list[str] = typer.Argument(..., help="Low-quality pool file(s).", metavar="LQ..."),
        hq: list[str] = typer.Option(None, "--hq", help="High-quality pool file(s) to mix with (repeatable)."),
        output: str = typer.Option(..., "--output", "-o", help="Output file."),
        method: str = typer.Option("fuse", "--method", help="fuse (ENTP two-to-one) | distil (LM-Mixup cluster-to-one)."),
        model: str = typer.Option("qwen2.5-1.5b", "--model", "-m",
                                  help="Generator: a shipped model name | gguf:PATH | hf:PATH | openai:URL#MODEL."),
        checker: str = typer.Option(None, "--checker", help="Model of the fusion error checklist (default: --model)."),
        embedder: str = typer.Option("minilm", "--embedder", "-e", help="minilm | static | st:PATH | openai:URL#MODEL."),
        quality: str = typer.Option("rater", "--quality",
                                    help="Quality reward of new pairs: rater (DS2 rating by --rater) | knn:PATH "
                                         "(saved kNN-Bayes library) | heuristic (placeholder) | none."),
        rater: str = typer.Option(None, "--rater", help="Rater model for --quality rater (default: --model)."),
        operator: str = typer.Option("merged_corpus", "--operator",
                                     help="First fusion operator: merged_corpus | direct_answer | consistency_repair | "
                                          "fact_completion."),
        pairing: str = typer.Option("cluster", "--pairing", help="cluster | random (control) | none (1-to-1 rewrite control)."),
        feedback: bool = typer.Option(True, "--feedback/--no-feedback", help="Symbolic feedback loop (off: control)."),
        max_cycles: int = typer.Option(2, "--max-cycles", min=0, help="Repair cycles after the first attempt."),
        k: str = typer.Option("auto", "--k", help="Fusion clusters: auto (silhouette) or a number."),
        min_pair_similarity: float = typer.Option(0.0, "--min-pair-similarity",
                                                  help="Cluster pairing: fuse only pairs at or above this cosine."),
        budget: int = typer.Option(None, "--budget", min=1, help="At most this many fusions / rewrites / clusters."),
        samples: int = typer.Option(4, "--samples", min=1, help="Distillation: best-of-N samples per cluster."),
        min_reward: float = typer.Option(0.5, "--min-reward", help="Distillation: keep the best sample at or above this."),
        capacity: str = typer.Option("3,1,2,5", "--capacity", help="Distillation clusters: MEAN,STD,MIN,MAX sizes."),
        semdedup: float = typer.Option(None, "--semdedup", min=0.0, max=1.0,
                                       help="Semantic dedup of the inputs first at this cosine (off by default)."),
        target: int = typer.Option(None, "--target", min=1, help="Size of the mixed output (default: all that pass)."),
        ratio: str = typer.Option("5:5", "--ratio", help="new:HQ ratio of the mix."),
        quality_cut: float = typer.Option(0.5, "--quality-cut", help="New pairs need mix.quality at or above this."),
        no_mix: bool = typer.Option(False, "--no-mix", help="Write the new pairs and the untouched records, unmixed."),
        seed: int = typer.Option(0, "--seed"),
        to: str = typer.Option("messages", "--to", help="Output shape."),
        run_dir: Path = RunDirOpt,
        force: bool = ForceOpt,
        shard_size: int = ShardOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Turn the low-quality pool into new pairs and mix them with the high-quality pool.

        Every new pair names its parents, operator, template hash, model, cycles and rewards in its
        lineage; consumed parents are recorded as merged into it, so the run's ledger balances."""
        from ..core.pipeline import InputSpec, OutputSpec, Pipeline, config_hash
        from ..mix.cluster import CapacitySpec
        from ..mix.distil import DistilConfig, heuristic_quality
        from ..mix.fuse import FUSION_OPERATORS, FusionConfig
        from ..mix.rank import SplitSpec
        from ..mix.stages import DistilStage, FuseStage, MixStage, SemDedupStage, TagSplitStage
        from ..models.registry import ModelNotAvailable

        if method not in ("fuse", "distil"):
            fail(f"--method must be fuse or distil, got '{method}'", 2)
        if operator not in FUSION_OPERATORS or operator == "rewrite":
            fail("--operator must be one of merged_corpus, direct_answer, consistency_repair, fact_completion", 2)
        if pairing not in ("cluster", "random", "none"):
            fail(f"--pairing must be cluster, random or none, got '{pairing}'", 2)
        try:
            cap = CapacitySpec(*[float(v) for v in capacity.split(",")][:2],
                               *[int(v) for v in capacity.split(",")[2:4]])
        except (TypeError, ValueError) as e:
            fail(f"--capacity must be MEAN,STD,MIN,MAX (e.g. 3,1,2,5): {e}", 2)
        if k != "auto" and not k.isdigit():
            fail(f"--k must be auto or a number, got '{k}'", 2)
        hq = list(hq or [])
        names = [Path(p).name for p in inputs + hq]
        if len(set(names)) != len(names):
            fail("input files must have distinct file names (the name tells the LQ and HQ pools apart)", 2)
        try:
            llm = _load_llm(model)
            check_llm = _load_llm(checker) if checker else None
            emb = _load_embedder(embedder) if (method == "distil" or pairing == "cluster" or semdedup
                                               or (target and not no_mix)) else None
            q = _quality(quality, rater or model, llm if not rater else None, emb, heuristic_quality)
        except ModelNotAvailable as e:
            fail(str(e), 2)
        split = SplitSpec()
        stages: list = [TagSplitStage({**{Path(p).name: "lq" for p in inputs}, **{Path(p).name: "hq" for p in hq}})]
        if semdedup is not None:
            stages.append(SemDedupStage(emb, threshold=semdedup, score_key="ds2.curated", seed=seed))
        if method == "fuse":
            cfg = FusionConfig(operator="rewrite" if pairing == "none" else operator, feedback=feedback,
                               max_cycles=max_cycles)
            stages.append(FuseStage(llm, emb, config=cfg, pairing=pairing, k=k if k == "auto" else int(k),
                                    budget=budget, quality=q, split=split, checker=check_llm, seed=seed,
                                    min_pair_similarity=min_pair_similarity,
                                    shard_size=shard_size))
        else:
            if q is None:
                fail("distillation needs a quality reward: --quality rater | knn:PATH | heuristic", 2)
            stages.append(DistilStage(llm, emb, q, config=DistilConfig(samples=samples, min_reward=min_reward),
                                      capacity=cap, split=split, max_clusters=budget, seed=seed,
                                      shard_size=shard_size))
        if not no_mix:
            stages.append(MixStage(target=target, ratio=ratio, quality_cut=quality_cut if q is not None else None,
                                   embedder=emb, split=split, shard_size=shard_size))
        pipe = Pipeline([InputSpec(p) for p in inputs + hq], stages, OutputSpec(output, to, None), run_dir or ".",
                        force=force, shard_size=shard_size, command="mix")
        if run_dir is None:
            pipe.run.path = default_run_dir("mix", config_hash(pipe.config()))
        summary = pipe.execute()
        report_summary(summary)
        emit(summary, as_json)


def _load_llm(spec: str):
    if spec == "fake:mix":  # offline demo/test generator that speaks the mix prompts
        from ..models import FakeLLM
        from ..testing.mix_responder import MixResponder

        return FakeLLM(MixResponder(), name="fake:mix")
    from ..models import load_llm

    return load_llm(spec)


def _load_embedder(spec: str):
    from ..models import load_embedder

    return load_embedder(spec)


def _quality(spec: str, rater_spec: str, same_llm, emb, heuristic):
    from ..mix.quality import KNNBayesQuality, RaterQuality

    if spec == "none":
        return None
    if spec == "heuristic":
        return heuristic
    if spec == "rater":
        return RaterQuality(same_llm if same_llm is not None else _load_llm(rater_spec))
    if spec.startswith("knn:"):
        from ..rating.knn_bayes import KNNBayes

        if emb is None:
            raise ValueError("knn quality needs an embedder")
        return KNNBayesQuality(KNNBayes.load(spec[4:]), emb)
    raise typer.BadParameter(f"--quality must be rater | knn:PATH | heuristic | none, got '{spec}'")
