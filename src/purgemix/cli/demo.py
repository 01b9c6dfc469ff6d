"""purgemix demo"""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ForceOpt, JsonOpt, emit, fail, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def demo(
        out_dir: Path = typer.Option(Path("purgemix-demo"), "--out-dir", "-o", help="Where the demo writes everything."),
        overrides: list[str] = typer.Argument(None, help="KEY=VALUE overrides of the quick recipe, "
                                                         "e.g. models.generator=smollm2-135m mix.budget=4.",
                                              metavar="[KEY=VALUE...]"),
        rate: float = typer.Option(0.04, "--rate", min=0.001, max=0.09, help="Share of records per noise type."),
        limit: int = typer.Option(300, "--limit", min=20,
                                  help="Clean records to start from (AlpacaEval has 805; fewer keep the demo quick)."),
        seed: int = typer.Option(0, "--seed"),
        force: bool = ForceOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Corrupt real clean data with known noise, run the quick recipe on it with the embedded models,
        and show what was purged (and how much injected noise was caught), fused, and kept."""
        from ..core.progress import console
        from ..evaluate.demo import print_demo, run_demo
        from ..models.registry import ModelNotAvailable
        from ..recipe.build import RunConfigError
        from ..recipe.load import RecipeError

        try:
            result = run_demo(out_dir, overrides=overrides or [], rate=rate, seed=seed, limit=limit, force=force,
                              on_stage=lambda name: console.print(f"[bold cyan]stage[/] {name}"))
        except (RecipeError, RunConfigError, ModelNotAvailable) as e:
            fail(str(e), 2)
        print_demo(result)
        emit(result, as_json)
