"""Where benchmark tables go: ``benchmarks/results/NAME.md``, with the command that made them (committed as
they are made, so partial tables of long benchmarks survive across sessions)."""

from __future__ import annotations

import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_result(name: str, title: str, text: str) -> Path:
    """Print ``text`` and write it, titled and with the command line, to ``results/NAME.md``."""
    print(text)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{name}.md"
    out.write_text(f"# {title}\n\nCommand: `python {' '.join(sys.argv)}`\n\n{text}\n")
    return out
