"""Prompt templates as files (Jinja2), versioned by the hash of their text: one ``Template`` for every
family (the mix's operators, the DS2 rubric, the selectors' raters and taggers).

Two file layouts:

- a plain Jinja2 file (``*.j2``): the user message. ``{% include %}`` finds partials next to the file
  and in the ``search`` folders. The rendered text is tidied (runs of blank lines collapsed, one final
  newline).
- a sectioned file: ``=== SYSTEM ===`` (a fixed system message) then ``=== USER ===`` (the user message's
  template); ``{# ... #}`` comments are removed with the whitespace after them, and the user message is
  rendered as written.

The hash covers the file's own text and every partial it includes, so any change of the words sent to a
model changes the hash recorded in the lineage.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import jinja2

_INCLUDE = re.compile(r"""{%-?\s*include\s+["']([^"']+)["']""")
_SECTIONS = re.compile(r"=== SYSTEM ===\n(.*?)=== USER ===\n(.*)", re.S)


@dataclass(frozen=True)
class Template:
    name: str
    path: str
    hash: str
    system: str  # a fixed system message ("" for none)
    user: str  # the source of the user message's template
    _template: Any
    tidy: bool = True  # collapse runs of blank lines, strip, end with one newline

    def render(self, **variables: Any) -> str:
        """The user message."""
        text = self._template.render(**variables)
        return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n" if self.tidy else text

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": self.render(**variables)}]

    def ref(self) -> dict[str, str]:
        return {"name": self.name, "hash": self.hash}


def load_template(path: str | Path, name: str | None = None, search: Sequence[Path] = ()) -> Template:
    """The template in ``path`` (either layout), named ``name`` (default: the file's stem)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"template file not found: {path}")
    text = path.read_text(encoding="utf-8")
    digest = _hash_with_includes(path, search)
    if "=== SYSTEM ===" in text:
        text = re.sub(r"\{#.*?#\}\s*", "", text, flags=re.S)
        m = _SECTIONS.search(text)
        if not m:
            raise ValueError(f"template {path}: needs '=== SYSTEM ===' and then '=== USER ===' sections")
        system, user = m.group(1).strip(), m.group(2).strip()
        return Template(name or path.stem, str(path), digest, system, user,
                        jinja2.Template(user, keep_trailing_newline=False), tidy=False)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(path.parent), *map(str, search)]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Template(name or path.stem, str(path), digest, "", text, env.get_template(path.name))


def _hash_with_includes(path: Path, search: Sequence[Path]) -> str:
    h = hashlib.blake2b(digest_size=6)
    seen: set[Path] = set()

    def feed(p: Path) -> None:
        if p in seen:
            return
        seen.add(p)
        text = p.read_text(encoding="utf-8")
        h.update(p.name.encode() + b"\0" + text.encode("utf-8") + b"\0")
        for inc in _INCLUDE.findall(text):
            for base in (p.parent, *search):
                if (Path(base) / inc).is_file():
                    feed(Path(base) / inc)
                    break

    feed(path)
    return h.hexdigest()
