"""Text normalisation: Unicode NFC, ``\\r\\n`` -> ``\\n``, no trailing spaces, no surrounding blank lines.

Kept records are modified in place (their id, a hash of the *input* content, stays stable), so
every later stage and the dedup see one spelling of the same text.
"""

from __future__ import annotations

import re
import unicodedata

from ..core.record import Record
from ..core.stage import MapStage, Result, register_stage

_TRAILING = re.compile(r"[ \t]+\n")


def normalise_text(text: str) -> str:
    if text.isascii() and "\r" not in text and " \n" not in text and "\t\n" not in text:
        return text.strip("\n ")  # fast path: nothing but the ends to trim
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return _TRAILING.sub("\n", text).strip("\n ")


@register_stage
class NormaliseStage(MapStage):
    name = "normalise"
    version = "1"
    reads = ("messages",)
    writes = ("messages",)

    def process(self, records: list[Record]) -> Result:
        for r in records:
            for m in r["messages"]:
                m["content"] = normalise_text(m["content"])
            if r["meta"].get("_input"):
                r["meta"]["_input"] = normalise_text(r["meta"]["_input"])
        return Result(records=records)
