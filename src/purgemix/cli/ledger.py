"""purgemix ledger RUN_DIR"""

from __future__ import annotations

from pathlib import Path

import typer

from .common import EXIT_LEDGER, JsonOpt, emit, fail, friendly_errors


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def ledger(
        run_dir: Path = typer.Argument(..., help="A run directory written by any purgemix command."),
        as_json: bool = JsonOpt,
    ) -> None:
        """Check that a run accounts for every input record (kept, rewritten, merged, dropped, quarantined)."""
        from ..core.ledger import check_ledger
        from ..core.progress import console
        from ..core.rundir import RunDir

        if not run_dir.is_dir():
            fail(f"{run_dir}: no such run directory")
        result = check_ledger(RunDir(run_dir))
        emit(result, as_json)
        status = "[green]balanced[/]" if result["balanced"] else "[bold red]NOT balanced[/]"
        console.print(
            f"ledger {status}: {result['inputs']:,} rows read = {result.get('quarantined', 0):,} quarantined + "
            f"{result.get('kept', 0):,} kept + {result.get('rewritten', 0):,} rewritten + "
            f"{result.get('merged', 0):,} merged + {result.get('dropped', 0):,} dropped; "
            f"{result.get('created', 0):,} created; {result['outputs']:,} in the output"
        )
        for reason, n in sorted((result.get("dropped_by_reason") or {}).items(), key=lambda kv: -kv[1]):
            console.print(f"  dropped {n:,}: {reason}")
        for p in result["problems"][:20]:
            console.print(f"  [red]problem:[/] {p}")
        if not result["balanced"]:
            raise typer.Exit(EXIT_LEDGER)
