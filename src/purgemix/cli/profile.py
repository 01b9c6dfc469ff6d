"""purgemix profile DATA (placeholder replaced by the profile module)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
