"""purgemix convert IN... OUT --to SHAPE"""

from __future__ import annotations

import typer

from ..core.shapes import OUTPUT_SHAPES
from .common import (
    OutFormatOpt,
    ReadOptions,
    RunOptions,
    ToOpt,
    emit,
    fail,
    friendly_errors,
    report_summary,
    with_options,
)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    @with_options
    def convert(
        paths: list[str] = typer.Argument(..., help="Input file(s) followed by the output path.", metavar="IN... OUT"),
        to: str = ToOpt,
        out_format: str = OutFormatOpt,
        read: ReadOptions = None,
        run: RunOptions = None,
    ) -> None:
        """Validate and convert SFT data between shapes and formats, quarantining bad rows."""
        from ..core.pipeline import OutputSpec
        from ..recipe.load import settings_recipe
        from ..recipe.verbs import ingest_pipeline

        if len(paths) < 2:
            fail("convert needs at least one input and an output path: purgemix convert IN OUT --to messages", 2)
        if to not in OUTPUT_SHAPES:
            fail(f"unknown output shape '{to}'; use one of: {', '.join(OUTPUT_SHAPES)}", 2)
        *inputs, out = paths
        recipe = settings_recipe(run.settings(read), name="convert")
        pipe = ingest_pipeline(recipe, read.specs(inputs), OutputSpec(out, to, out_format), command="convert",
                               run_dir=run.run_dir, force=run.force)
        summary = pipe.execute()
        report_summary(summary)
        emit(summary, run.as_json)
