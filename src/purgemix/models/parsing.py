"""Finding JSON objects in model output, string-aware, for every family that asks a model for JSON.

``object_end``         the matching ``}`` of a ``{`` (or the open depth of a truncated object).
``first_object_text``  the first object's text, a truncated one closed (the DS2 rating's tolerant parse).
``first_json_object``  the first balanced object that parses as JSON after light repairs (the mix's checks).
"""

from __future__ import annotations

import json
import re
from typing import Any


def object_end(text: str, start: int) -> tuple[int | None, int]:
    """For the ``{`` at ``start``: (index of its matching ``}``, 0), or (None, open depth) when the
    text ends first (a truncated answer). Braces inside JSON strings do not count."""
    depth, in_str, esc = 0, False, False
    for i in range(start, len(text)):
        ch = text[i]
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i, 0
    return None, depth


def first_object_text(text: str) -> str | None:
    """The text of the first ``{...}`` (string-aware); a truncated object is closed with ``}`` (a rating cut
    off by ``max_tokens`` keeps the scores it wrote). None when there is no ``{``."""
    start = text.find("{")
    if start < 0:
        return None
    end, depth = object_end(text, start)
    if end is not None:
        return text[start:end + 1]
    return text[start:].rstrip().rstrip(",") + "}" * max(depth, 1)  # stop at "}" removes the brace


def first_json_object(text: str) -> Any:
    """The first balanced ``{...}`` in ``text`` that parses as JSON (after light repairs: code
    fences, trailing commas, single quotes, Python literals). ``None`` when there is none."""
    if not text:
        return None
    start = text.find("{")
    while start != -1:
        end, _ = object_end(text, start)
        if end is not None:
            obj = _loads_lenient(text[start:end + 1])
            if obj is not None:
                return obj
        start = text.find("{", start + 1)
    return None


def _loads_lenient(s: str) -> Any:
    for candidate in (s, re.sub(r",\s*([}\]])", r"\1", s)):
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    fixed = re.sub(r",\s*([}\]])", r"\1", s)
    fixed = re.sub(r"\bTrue\b", "true", re.sub(r"\bFalse\b", "false", re.sub(r"\bNone\b", "null", fixed)))
    if "'" in fixed and '"' not in fixed:
        fixed = fixed.replace("'", '"')
    try:
        return json.loads(fixed)
    except ValueError:
        return None
