"""Prompt templates as files (Jinja2), versioned by the hash of their text.

Built-in templates live in ``purgemix/mix/templates/NAME.j2``; files whose name starts with ``_``
are partials (``{% include %}``d by others). A template can be overridden by a path (from a
recipe): ``TemplateSet({"direct_answer": "my/direct.j2"})``. The hash of a template covers its own
text and the partials it includes, so any change of the words sent to the model changes the hash
recorded in the lineage.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import jinja2

BUILTIN_DIR = Path(__file__).parent / "templates"
_INCLUDE = re.compile(r"""{%-?\s*include\s+["']([^"']+)["']""")

# operator name -> template file stem
OPERATORS = {
    "direct_answer": "fuse_direct_answer",
    "merged_corpus": "fuse_merged_corpus",
    "consistency_repair": "fuse_consistency_repair",
    "fact_completion": "fuse_fact_completion",
    "rewrite": "rewrite",
    "check_errors": "check_errors",
    "distil": "distil",
}


@dataclass(frozen=True)
class Template:
    name: str
    path: str
    hash: str
    _template: Any

    def render(self, **variables: Any) -> str:
        text = self._template.render(**variables)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        return [{"role": "user", "content": self.render(**variables)}]

    def ref(self) -> dict[str, str]:
        return {"name": self.name, "hash": self.hash}


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
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"template file not found: {path}")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(path.parent), str(BUILTIN_DIR)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template(path.name)
    return Template(name or path.stem, str(path), _hash_with_includes(path), template)


def _hash_with_includes(path: Path) -> str:
    h = hashlib.blake2b(digest_size=6)
    seen: set[Path] = set()

    def feed(p: Path) -> None:
        if p in seen:
            return
        seen.add(p)
        text = p.read_text(encoding="utf-8")
        h.update(p.name.encode() + b"\0" + text.encode("utf-8") + b"\0")
        for inc in _INCLUDE.findall(text):
            for base in (p.parent, BUILTIN_DIR):
                if (base / inc).is_file():
                    feed(base / inc)
                    break

    feed(path)
    return h.hexdigest()
