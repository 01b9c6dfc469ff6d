"""Progress bars on stderr (stdout is reserved for --json summaries)."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True)
_live: list[Progress] = []  # the bar on screen; nested bars become extra rows of it (rich allows one live display)


def _enabled() -> bool:
    return console.is_terminal and not os.environ.get("PURGEMIX_NO_PROGRESS")


class _Bar:
    def __init__(self, progress: Progress | None, task) -> None:
        self._p, self._t = progress, task

    def advance(self, n: float = 1) -> None:
        if self._p is not None:
            self._p.advance(self._t, n)


@contextmanager
def progress_bar(description: str, total: float | None, unit: str = "") -> Iterator[_Bar]:
    """A rich progress bar with ETA; a no-op when stderr is not a terminal (CI, pipes)."""
    if not _enabled():
        yield _Bar(None, None)
        return
    if _live:  # inside another bar (a model call inside a stage): a row of the same display, removed after
        p = _live[-1]
        task = p.add_task(description, total=total, unit=unit)
        try:
            yield _Bar(p, task)
        finally:
            p.remove_task(task)
        return
    columns = [SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as p:
        _live.append(p)
        try:
            yield _Bar(p, p.add_task(description, total=total, unit=unit))
        finally:
            _live.pop()


def info(message: str) -> None:
    console.print(message)


def is_interactive() -> bool:
    return sys.stderr.isatty()
