"""purgemix convert IN... OUT --to SHAPE"""

from __future__ import annotations

from pathlib import Path

import typer

from ..core.shapes import OUTPUT_SHAPES, parse_mapping
from .common import (
    ExecutorOpt,
    ForceOpt,
    FromOpt,
    InFormatOpt,
    JsonOpt,
    MapOpt,
    MaxBytesOpt,
    OutFormatOpt,
    RunDirOpt,
    ShardOpt,
    StrictOpt,
    ToOpt,
    WorkersOpt,
    emit,
    fail,
    friendly_errors,
    report_summary,
    run_settings,
)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def convert(
        paths: list[str] = typer.Argument(..., help="Input file(s) followed by the output path.", metavar="IN... OUT"),
        to: str = ToOpt,
        shape: str = FromOpt,
        mapping: list[str] = MapOpt,
        in_format: str = InFormatOpt,
        out_format: str = OutFormatOpt,
        strict: bool = StrictOpt,
        workers: int = WorkersOpt,
        executor: str = ExecutorOpt,
        run_dir: Path = RunDirOpt,
        force: bool = ForceOpt,
        shard_size: int = ShardOpt,
        max_record_bytes: int = MaxBytesOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Validate and convert SFT data between shapes and formats, quarantining bad rows."""
        from ..core.pipeline import InputSpec, OutputSpec
        from ..recipe.load import settings_recipe
        from ..recipe.verbs import ingest_pipeline

        if len(paths) < 2:
            fail("convert needs at least one input and an output path: purgemix convert IN OUT --to messages", 2)
        if to not in OUTPUT_SHAPES:
            fail(f"unknown output shape '{to}'; use one of: {', '.join(OUTPUT_SHAPES)}", 2)
        *inputs, out = paths
        maps = parse_mapping(mapping)
        recipe = settings_recipe(run_settings(shard_size=shard_size, workers=workers, executor=executor, strict=strict,
                                              max_record_bytes=max_record_bytes), name="convert")
        pipe = ingest_pipeline(recipe, [InputSpec(p, in_format, maps, shape) for p in inputs],
                               OutputSpec(out, to, out_format), command="convert", run_dir=run_dir, force=force)
        summary = pipe.execute()
        report_summary(summary)
        emit(summary, as_json)
