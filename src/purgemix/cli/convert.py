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
    default_run_dir,
    emit,
    fail,
    friendly_errors,
    report_summary,
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
        from ..core.pipeline import InputSpec, OutputSpec, Pipeline, config_hash

        if len(paths) < 2:
            fail("convert needs at least one input and an output path: purgemix convert IN OUT --to messages", 2)
        if to not in OUTPUT_SHAPES:
            fail(f"unknown output shape '{to}'; use one of: {', '.join(OUTPUT_SHAPES)}", 2)
        *inputs, out = paths
        maps = parse_mapping(mapping)
        pipe = Pipeline(
            [InputSpec(p, in_format, maps, shape) for p in inputs],
            [],
            OutputSpec(out, to, out_format),
            run_dir or ".",
            executor=executor, workers=workers, shard_size=shard_size, strict=strict, force=force,
            max_record_bytes=max_record_bytes, command="convert",
        )
        if run_dir is None:
            pipe.run.path = default_run_dir("convert", config_hash(pipe.config()))
        summary = pipe.execute()
        report_summary(summary)
        emit(summary, as_json)
