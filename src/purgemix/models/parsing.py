"""Finding JSON objects in model output: the first balanced ``{...}``, string-aware."""

from __future__ import annotations


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
