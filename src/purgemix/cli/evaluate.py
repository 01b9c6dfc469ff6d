"""purgemix evaluate ARM... : fine-tune one base on each dataset at the same budget and seed, then score it."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import JsonOpt, emit, fail, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def evaluate(
        arms: list[str] = typer.Argument(..., help="Datasets to compare, each NAME=PATH or PATH (named by its stem).",
                                         metavar="ARM..."),
        base: str = typer.Option("smollm2-135m", "--base", help="The base model every arm fine-tunes: a short "
                                 "name (smollm2-135m, gemma3-270m-base, qwen2.5-0.5b), a GGUF file or an HF folder."),
        budget: int = typer.Option(None, "--budget", min=1, help="Records per arm (a seeded sample; all when fewer). "
                                   "[default: all]"),
        steps: int = typer.Option(None, "--steps", min=1, help="Optimizer steps per arm (default: --epochs)."),
        epochs: float = typer.Option(1.0, "--epochs", min=0.01, help="Epochs over each arm's records."),
        batch_size: int = typer.Option(8, "--batch-size", min=1),
        lr: float = typer.Option(None, "--lr", help="Learning rate. [default: 2e-4 LoRA, 2e-5 full]"),
        full: bool = typer.Option(False, "--full", help="Full fine-tune instead of LoRA (r 64, alpha 16, dropout 0.1)."),
        max_length: int = typer.Option(512, "--max-length", min=16, help="Tokens per training conversation."),
        seed: int = typer.Option(0, "--seed"),
        suites: str = typer.Option("ifeval,nll", "--suites", help="Comma-separated: ifeval, nll, judge."),
        limit: int = typer.Option(None, "--limit", min=1, help="IFEval: the first N prompts (a fixed subset)."),
        references: str = typer.Option("alpaca-eval", "--references",
                                       help="Reference answers for nll and judge: alpaca-eval | mt-bench | FILE."),
        ref_limit: int = typer.Option(None, "--ref-limit", min=1, help="nll and judge: the first N references."),
        judge: str = typer.Option(None, "--judge", help="The judge model of the judge suite (any backend spec)."),
        baseline: str = typer.Option(None, "--baseline", help="The arm differences are taken against "
                                     "[default: base when --with-base, else the first arm]."),
        with_base: bool = typer.Option(True, "--with-base/--no-base", help="Also score the base model untrained."),
        run_dir: Path = typer.Option(None, "--run-dir", help="Where the fine-tunes and scores go (default: "
                                     "purgemix-runs/evaluate-<hash of the arms and settings>); a re-run reuses them."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Fine-tune the same base on each arm (same budget, seed and settings), run the suites, and print one
        table: every metric with its bootstrap 95% CI and the paired difference to the baseline arm."""
        import hashlib

        import orjson

        from ..core.progress import console
        from ..evaluate.base import load_suite
        from ..evaluate.harness import BASE_ARM, Arm, Harness, format_table, parse_arm
        from ..train.sft import SFTSettings

        try:
            parsed = [parse_arm(a) for a in arms]
        except ValueError as e:
            fail(str(e), 2)
        for a in parsed:
            if not Path(a.path).exists():
                fail(f"{a.path}: no such file or directory")
        names = [s.strip() for s in suites.split(",") if s.strip()]
        options = {"ifeval": {"limit": limit}, "nll": {"references": references, "limit": ref_limit},
                   "judge": {"judge": judge, "references": references, "limit": ref_limit}}
        if "judge" in names and not judge:
            fail("the judge suite needs --judge MODEL (e.g. openai:http://127.0.0.1:8000/v1#MODEL)", 2)
        try:
            suite_objs = [load_suite(n, **{k: v for k, v in options.get(n, {}).items() if v is not None})
                          for n in names]
        except KeyError as e:
            fail(str(e.args[0]), 2)
        settings = SFTSettings(base=base, lora=not full, learning_rate=lr, epochs=epochs, max_steps=steps,
                               batch_size=batch_size, max_length=max_length, seed=seed)
        if with_base:
            parsed = [Arm(BASE_ARM, None)] + parsed
        if run_dir is None:
            key = orjson.dumps({"arms": [(a.name, a.path) for a in parsed], "settings": vars(settings),
                                "budget": budget, "suites": [s.fingerprint() for s in suite_objs]}, default=str)
            run_dir = Path("purgemix-runs") / f"evaluate-{hashlib.blake2b(key, digest_size=8).hexdigest()}"
        harness = Harness(run_dir, suite_objs, settings, budget=budget,
                          baseline=baseline or parsed[0].name,
                          log=lambda m: console.print(m, highlight=False, soft_wrap=True))
        table = harness.run(parsed)
        from rich.table import Table

        rows = format_table(table)
        t = Table(*rows[0], title=f"difference to '{table['baseline']}' with its paired 95% CI")
        for r in rows[1:]:
            t.add_row(*r)
        console.print(t)
        console.print(f"  table: {run_dir / 'evaluate.json'}\n  page: {run_dir / 'evaluate.html'}")
        emit({"run_dir": str(run_dir), **table}, as_json)
