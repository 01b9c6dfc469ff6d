"""Item-by-item recovery of a JSON list that does not parse as a whole.

A JSON list with one truncated, too-deep or malformed item is one ``JSONDecodeError`` for a whole-file
parser, which would lose the good items with it. ``split_items`` finds the byte span of each top-level item
with a scanner that knows only strings, escapes and bracket depth, so each item is parsed on its own: a bad
one is quarantined with its item number and the others are kept. Used only after the fast whole-file parse
has failed.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

import orjson

_SPECIAL = re.compile(rb'["\\\[\]{},]')


def split_items(raw: bytes) -> Iterator[tuple[bytes, bool]]:
    """The top-level items of ``raw`` (a JSON list) as ``(bytes, complete)``; ``complete`` is False for a last
    item that the file cuts off."""
    start = raw.find(b"[")
    if start < 0:
        return
    depth, in_string, escaped = 0, False, False
    item_start = start + 1
    for m in _SPECIAL.finditer(raw, start + 1):
        c, pos = m.group(), m.start()
        if in_string:
            if escaped:
                escaped = False
            elif c == b"\\":
                escaped = True
            elif c == b'"':
                in_string = False
            continue
        if escaped:  # a backslash outside a string escapes nothing; reset
            escaped = False
        if c == b'"':
            in_string = True
        elif c in (b"[", b"{"):
            depth += 1
        elif c in (b"]", b"}"):
            if depth == 0 and c == b"]":  # the end of the list
                if raw[item_start:pos].strip():
                    yield raw[item_start:pos], True
                return
            depth -= 1
        elif c == b"," and depth == 0:
            yield raw[item_start:pos], True
            item_start = pos + 1
    if raw[item_start:].strip():
        yield raw[item_start:], False


def recover_items(raw: bytes) -> Iterator[tuple[int, Any, str | None]]:
    """``(item number, object, None)`` for each item that parses, ``(item number, None, reason)`` for the others."""
    for i, (chunk, complete) in enumerate(split_items(raw), 1):
        try:
            yield i, orjson.loads(chunk), None
        except orjson.JSONDecodeError as e:
            if not complete:
                yield i, None, "the file ends inside this item (truncated)"
            elif "depth limit" in str(e).lower() or "recursion" in str(e).lower():
                yield i, None, "item nested too deep (over 1,024 levels)"
            else:
                yield i, None, f"malformed JSON item: {e}"
