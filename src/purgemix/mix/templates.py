"""The mix operators' prompt templates (``models.prompts.Template``: Jinja2 files, hashed with their partials).

Built-in templates live in ``purgemix/mix/templates/NAME.j2``; files whose name starts with ``_``
are partials (``{% include %}``d by others). A template can be overridden by a path (from a
recipe): ``TemplateSet({"direct_answer": "my/direct.j2"})``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..models.prompts import Template, load_template as load_prompt

BUILTIN_DIR = Path(__file__).parent / "templates"

# operator name -> template file stem
OPERATORS = {
    "direct_answer": "fuse_direct_answer",
    "merged_corpus": "fuse_merged_corpus",
    "consistency_repair": "fuse_consistency_repair",
    "fact_completion": "fuse_fact_completion",
    "compose": "fuse_compose",  # two steps: the instruction, then a fresh answer (compose_answer)
    "compose_answer": "fuse_compose_answer",
    "rewrite": "rewrite",
    "check_errors": "check_errors",
    "distil": "distil",
    "judge_new_vs_sources": "judge_new_vs_sources",
}


class TemplateSet:
    """Loads templates by operator name, with per-name overrides (paths to files)."""

    def __init__(self, overrides: Mapping[str, str] | None = None):
        self.overrides = dict(overrides or {})
        self._cache: dict[str, Template] = {}

    def get(self, name: str) -> Template:
        if name not in self._cache:
            if name in self.overrides:
                path = Path(self.overrides[name])
            elif name in OPERATORS:
                path = BUILTIN_DIR / f"{OPERATORS[name]}.j2"
            else:
                raise KeyError(f"unknown template '{name}' (known: {', '.join(sorted(OPERATORS))})")
            self._cache[name] = load_template(path, name=name)
        return self._cache[name]

    def hashes(self) -> dict[str, str]:
        return {name: self.get(name).hash for name in sorted(set(OPERATORS) | set(self.overrides))}


def load_template(path: str | Path, name: str | None = None) -> Template:
    """A mix template file; its partials are found next to it and among the built-in ones."""
    return load_prompt(path, name, search=[BUILTIN_DIR])
