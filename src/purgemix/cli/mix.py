"""purgemix mix LQ... --hq HQ -o OUT: fuse (ENTP) or distil (LM-Mixup) the LQ pool, then mix."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ForceOpt, JsonOpt, RunDirOpt, ShardOpt, emit, fail, friendly_errors, report_summary, run_settings


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def mix(
        inputs: list[str] = typer.Argument(..., help="Low-quality pool file(s).", metavar="LQ..."),
        hq: list[str] = typer.Option(None, "--hq", help="High-quality pool file(s) to mix with (repeatable)."),
        output: str = typer.Option(..., "--output", "-o", help="Output file."),
        method: str = typer.Option(None, "--method",
                                   help="fuse (ENTP two-to-one) | distil (LM-Mixup cluster-to-one). [default: fuse]"),
        model: str = typer.Option(None, "--model", "-m",
                                  help="Generator: a shipped model name | gguf:PATH | hf:PATH | openai:URL#MODEL. "
                                       "[default: the recipe default, qwen2.5-0.5b]"),
        checker: str = typer.Option(None, "--checker", help="Model of the fusion error checklist (default: --model)."),
        embedder: str = typer.Option(None, "--embedder", "-e",
                                     help="minilm | static | st:PATH | openai:URL#MODEL. [default: minilm]"),
        quality: str = typer.Option(None, "--quality",
                                    help="Quality reward of new pairs: rater (DS2 rating by --rater) | knn:PATH "
                                         "(saved kNN-Bayes library) | heuristic (placeholder) | none. [default: rater]"),
        rater: str = typer.Option(None, "--rater", help="Rater model for --quality rater (default: --model)."),
        operator: str = typer.Option(None, "--operator",
                                     help="First fusion operator: merged_corpus | direct_answer | consistency_repair | "
                                          "fact_completion. [default: merged_corpus]"),
        pairing: str = typer.Option(None, "--pairing",
                                    help="cluster | random (control) | none (1-to-1 rewrite control). [default: cluster]"),
        feedback: bool = typer.Option(None, "--feedback/--no-feedback",
                                      help="Symbolic feedback loop (off: control). [default: on]"),
        max_cycles: int = typer.Option(None, "--max-cycles", min=0, help="Repair cycles after the first attempt. [default: 2]"),
        k: str = typer.Option(None, "--k", help="Fusion clusters: auto (silhouette) or a number. [default: auto]"),
        min_pair_similarity: float = typer.Option(None, "--min-pair-similarity",
                                                  help="Cluster pairing: fuse only pairs at or above this cosine. "
                                                       "[default: 0]"),
        budget: int = typer.Option(None, "--budget", min=1, help="At most this many fusions / rewrites / clusters."),
        samples: int = typer.Option(None, "--samples", min=1, help="Distillation: best-of-N samples per cluster. [default: 4]"),
        min_reward: float = typer.Option(None, "--min-reward",
                                         help="Distillation: keep the best sample at or above this. [default: 0.5]"),
        capacity: str = typer.Option(None, "--capacity", help="Distillation clusters: MEAN,STD,MIN,MAX sizes. [default: 3,1,2,5]"),
        max_tokens: int = typer.Option(None, "--max-tokens", min=16, help="Tokens per generated answer. [default: 384]"),
        semdedup: float = typer.Option(None, "--semdedup", min=0.0, max=1.0,
                                       help="Semantic dedup of the inputs first at this cosine (off by default)."),
        target: int = typer.Option(None, "--target", min=1, help="Size of the mixed output (default: all that pass)."),
        ratio: str = typer.Option(None, "--ratio", help="new:HQ ratio of the mix. [default: 5:5]"),
        quality_cut: float = typer.Option(None, "--quality-cut", help="New pairs need mix.quality at or above this. [default: 0.5]"),
        no_mix: bool = typer.Option(False, "--no-mix", help="Write the new pairs and the untouched records, unmixed."),
        seed: int = typer.Option(None, "--seed", help="[default: 0]"),
        to: str = typer.Option("messages", "--to", help="Output shape."),
        run_dir: Path = RunDirOpt,
        force: bool = ForceOpt,
        shard_size: int = ShardOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Turn the low-quality pool into new pairs and mix them with the high-quality pool.

        Every new pair names its parents, operator, template hash, model, cycles and rewards in its
        lineage; consumed parents are recorded as merged into it, so the run's ledger balances. Options
        not given take the recipe defaults (`purgemix run quick --show` prints them)."""
        import re

        from ..core.pipeline import OutputSpec
        from ..recipe.build import RunConfigError
        from ..recipe.load import settings_recipe
        from ..recipe.verbs import mix_pipeline

        caps = None
        if capacity is not None:
            try:
                caps = [float(v) for v in capacity.split(",")]
                assert len(caps) == 4
            except (ValueError, AssertionError):
                fail(f"--capacity must be MEAN,STD,MIN,MAX (e.g. 3,1,2,5), got '{capacity}'", 2)
        recipe = settings_recipe({
            "models.generator": model, "models.checker": checker, "models.embedder": embedder, "models.rater": rater,
            "mix.method": method, "mix.quality": quality, "mix.operator": operator, "mix.pairing": pairing,
            "mix.feedback": feedback, "mix.max_cycles": max_cycles, "mix.k": k,
            "mix.min_pair_similarity": min_pair_similarity, "mix.budget": budget, "mix.samples": samples,
            "mix.min_reward": min_reward, "mix.capacity": caps, "mix.max_tokens": max_tokens, "mix.target": target,
            "mix.ratio": ratio, "mix.quality_cut": quality_cut, "mix.rank_and_mix": False if no_mix else None,
            "semdedup.enabled": True if semdedup is not None else None, "semdedup.threshold": semdedup,
            **run_settings(shard_size=shard_size, seed=seed),
        }, name="mix")
        try:
            pipe = mix_pipeline(recipe, list(inputs), list(hq or []), OutputSpec(output, to, None), run_dir=run_dir,
                                force=force)
        except RunConfigError as e:  # name the option, not the recipe key: mix.max_cycles -> --max-cycles
            fail(re.sub(r"\bmix\.([a-z_]+)", lambda m: "--" + m.group(1).replace("_", "-"), str(e)), 2)
        summary = pipe.execute()
        report_summary(summary)
        emit(summary, as_json)
