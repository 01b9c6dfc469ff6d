"""The report of any run directory as one self-contained HTML page (``purgemix report RUN_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .render import render_html
from .run import build_run_report

__all__ = ["build_run_report", "render_html", "write_run_report"]


def write_run_report(run_dir: str | Path, output: str | Path | None = None, **kw: Any) -> tuple[Path, dict[str, Any]]:
    """Build and write the report (default: ``RUN_DIR/report.html``); returns its path and the data."""
    from ..core.rundir import atomic_write_bytes

    rep = build_run_report(run_dir, **kw)
    path = Path(output) if output else Path(run_dir) / "report.html"
    atomic_write_bytes(path, render_html(rep).encode("utf-8"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)  # a page to share, not a private temporary file
    return path, rep
