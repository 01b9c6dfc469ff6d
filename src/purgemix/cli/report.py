"""purgemix report RUN_DIR [-o FILE]"""

from __future__ import annotations

from pathlib import Path

import typer

from .common import JsonOpt, emit, fail, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def report(
        run_dir: Path = typer.Argument(..., help="A run directory written by any purgemix command."),
        output: Path = typer.Option(None, "--output", "-o", help="HTML file to write (default: RUN_DIR/report.html)."),
        examples: int = typer.Option(6, "--examples", min=0, help="New pairs shown per creating stage."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Write one self-contained HTML page about a run (any purgemix command's run directory).

        Sections, each shown when the run has the data: records per stage and reason, feature
        histograms before/after the purge and rule hits, ratings, clusters, new pairs next to their
        sources, the ledger balance, time, tokens and cache hits per stage."""
        from ..core.progress import console
        from ..report import write_run_report

        if not run_dir.is_dir() or not (run_dir / "stages").is_dir():
            fail(f"{run_dir}: not a purgemix run directory (no stages/)")
        path, rep = write_run_report(run_dir, output, examples=examples)
        f, led = rep["funnel"], rep["ledger"]
        summary = {"report": str(path), "bytes": path.stat().st_size, "sections": rep["sections"],
                   "read": f["read"], "quarantined": f["quarantined"], "written": f["written"],
                   "ledger_balanced": led["balanced"], "missing": rep["missing"]}
        emit(summary, as_json)
        console.print(f"[green]report[/] {path} ({', '.join(rep['sections'])}); ledger "
                      + ("[green]balanced[/]" if led["balanced"] else "[bold red]NOT balanced[/]"))
