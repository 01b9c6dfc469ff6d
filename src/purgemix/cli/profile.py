"""purgemix profile DATA...: what is in a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    ReadOptions,
    RunOptions,
    emit,
    fail,
    friendly_errors,
    start_workers,
    with_options,
)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    @with_options
    def profile(
        paths: list[str] = typer.Argument(..., help="Input file(s); builtin:alpaca-eval for the bundled example.",
                                          metavar="DATA..."),
        out_dir: Path = typer.Option(None, "--out-dir", "-o",
                                     help="Where profile.json and profile.html go (default: the run directory)."),
        tokenizer: str = typer.Option("regex", "--tokenizer",
                                      help="Token counter: regex (no dependency) or hf:PATH/TO/tokenizer.json."),
        by: str = typer.Option(None, "--by", help="Also count the values of this source field, e.g. category."),
        top: int = typer.Option(20, "--top", min=1, help="Leading words (and --by values) to list."),
        bins: int = typer.Option(30, "--bins", min=2, max=200, help="Histogram bins in the HTML page and JSON."),
        read: ReadOptions = None,
        run: RunOptions = None,
    ) -> None:
        """Profile SFT data: counts, sources, lengths, languages, duplicates, leading words (table, JSON, HTML)."""
        start_workers(run.executor, run.workers)
        from ..core.progress import console
        from ..io.builtin import resolve
        from ..report.profile_page import print_tables
        from ..report.profile_run import profile_pipeline
        from ..text.tokens import tokenizer as make_tokenizer

        try:
            make_tokenizer(tokenizer)
        except (ValueError, OSError, ImportError) as e:
            fail(str(e), 2)
        from ..recipe.load import settings_recipe
        from ..recipe.verbs import ingest_pipeline

        recipe = settings_recipe(run.settings(read), name="profile")
        pipe = ingest_pipeline(recipe, read.specs([resolve(p) for p in paths]), None, command="profile",
                               run_dir=run.run_dir, force=run.force)
        summary = profile_pipeline(pipe, out_dir=out_dir, tokenizer=tokenizer, by=by, top=max(top, 30), bins=bins)
        print_tables(summary["profile"], console, top=top)
        console.print(f"[green]done[/] in {summary['elapsed_seconds']:.1f}s: read {summary['read']:,}, "
                      f"profiled {summary['records']:,}"
                      + (f", quarantined {summary['quarantined']:,}" if summary["quarantined"] else ""))
        for k, v in summary["outputs"].items():
            console.print(f"  {k}: {v}")
        emit(summary, run.as_json)
