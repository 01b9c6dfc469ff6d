"""purgemix run RECIPE [DATA...] [KEY=VALUE...] [-o OUT]"""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ForceOpt, JsonOpt, RunDirOpt, emit, fail, friendly_errors, report_summary


def register(app: typer.Typer) -> None:
    @app.command(context_settings={"allow_extra_args": False})
    @friendly_errors
    def run(
        recipe: str = typer.Argument(..., help="Recipe file, or a shipped one: quick | entp | lm-mixup."),
        args: list[str] = typer.Argument(None, help="Data files (replace the recipe's inputs) and KEY=VALUE "
                                                    "overrides, e.g. mix.method=distil models.generator=smollm2-135m.",
                                         metavar="[DATA...] [KEY=VALUE...]"),
        output: str = typer.Option(None, "--output", "-o", help="Output file (overrides output.path)."),
        limit: int = typer.Option(None, "--limit", min=1, help="Use only the first N input records."),
        workers: int = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (overrides run.workers)."),
        executor: str = typer.Option(None, "--executor", help="local | ray (overrides run.executor)."),
        run_dir: Path = RunDirOpt,
        force: bool = ForceOpt,
        show: bool = typer.Option(False, "--show", help="Print the merged recipe and exit."),
        estimate: bool = typer.Option(False, "--estimate", help="Run up to the fuse/distil step, probe a few of its "
                                      "groups, print the expected requests, tokens, time and cost, and stop "
                                      "(the probe's answers are cached: the real run reuses them)."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Run a whole recipe: ingest → purge → rate → split → cluster → fuse/distil → verify → mix → write.

        Re-running the same command resumes after a crash; LLM answers come from the request cache."""
        import yaml

        from ..core.progress import console
        from ..mix.estimate import EstimateReady
        from ..models.registry import ModelNotAvailable
        from ..recipe.build import RunConfigError, build_pipeline
        from ..recipe.load import RecipeError, load_recipe

        args = args or []
        overrides = [a for a in args if "=" in a and not Path(a).exists()]
        data = [a for a in args if a not in overrides]
        if output:
            overrides.append(f"output.path={output}")
        if limit:
            overrides.append(f"limit={limit}")
        if workers:
            overrides.append(f"run.workers={workers}")
        if executor:
            overrides.append(f"run.executor={executor}")
        try:
            spec = load_recipe(recipe, overrides)
        except RecipeError as e:
            fail(str(e), 2)
        if data:
            spec["inputs"] = data
        if show:
            console.print(yaml.safe_dump({k: v for k, v in spec.items() if not k.startswith("_")}, sort_keys=False,
                                         width=100), soft_wrap=True, highlight=False)
            raise typer.Exit(0)
        try:
            pipe = build_pipeline(spec, run_dir=str(run_dir) if run_dir else None, force=force,
                                  on_stage=lambda name: console.print(f"[bold cyan]stage[/] {name}"))
            console.print(f"recipe [bold]{spec['name']}[/] ({spec['_source']}), run directory {pipe.run.path}")
            for st in pipe.stages:
                if hasattr(st, "estimate_only"):
                    st.estimate_only = estimate
            summary = pipe.execute()
        except (RunConfigError, ModelNotAvailable) as e:
            fail(str(e), 2)
        except EstimateReady as e:
            emit({"estimate": e.estimate.as_dict(), "run_dir": str(pipe.run.path)}, as_json)
            raise typer.Exit(0) from None
        for name, rep in summary.get("reports", {}).items():  # each model stage's own usage
            if u := rep.get("usage"):
                console.print(f"{name} ({rep.get('model')}): {u.get('requests', 0)} requests, "
                              f"{u.get('cache_hits', 0)} from the cache, {u.get('tokens_in', 0):,} tokens in, "
                              f"{u.get('tokens_out', 0):,} out")
        summary["recipe"] = spec["name"]
        report_summary(summary)
        emit(summary, as_json)
