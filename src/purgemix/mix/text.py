"""Text helpers shared by fusion and distillation: record views, embedding, new records, tolerant
parsing of generated pairs and key terms."""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ..core.record import Record, content_hash, first_turn, make_record, response_of
from ..models.base import Embedder
from ..models.parsing import first_json_object

NEW_SPLIT = "new"


def prompt_of(record: Record) -> str:
    """The full first user turn (instruction plus any input)."""
    return first_turn(record, "user")


def pair_text(record: Record) -> str:
    """What is embedded for clustering: ``instruction + "\\n" + response``."""
    return prompt_of(record) + "\n" + response_of(record)


def embed_texts(embedder: Embedder, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
    parts = [np.asarray(embedder.embed(list(texts[i:i + batch_size])), dtype=np.float32)
             for i in range(0, len(texts), batch_size)]
    if not parts:
        return np.zeros((0, int(getattr(embedder, "dim", 0))), dtype=np.float32)
    return np.concatenate(parts)


def embed_records(embedder: Embedder, records: Sequence[Record], batch_size: int = 256) -> np.ndarray:
    return embed_texts(embedder, [pair_text(r) for r in records], batch_size)


def new_record(instruction: str, response: str, parents: Sequence[str], *, stage: str,
               lineage: dict[str, Any], source: str | None = None) -> Record:
    """A created record: single-turn pair, id from its content and its parents (unique per stage)."""
    messages = [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]
    rid = content_hash(messages, extra=f"{stage}|" + "|".join(parents))
    return make_record(messages, id=rid, source=source or f"purgemix:{stage}",
                       meta={"_split": NEW_SPLIT},
                       lineage={"derived_from": list(parents), "stage": stage, **lineage})


# --- the output shape, as a grammar ------------------------------------------------------------

# GBNF (llama.cpp) for what ``_fuse_output.j2`` asks for: ``<instruction>...</instruction>`` then
# ``<response>...</response>``, each starting with a non-blank character. The instruction holds no
# ``<``; the response may hold ``<`` (code, markup) but no ``<i``, ``<r``, ``</i`` or ``</r`` (so it
# cannot close early or carry a tag of the pair: measured, qwen2.5-0.5b wrote ``</instruction>`` into
# responses when only ``</r`` was excluded). With it, a backend that supports grammars cannot return
# a malformed shape.
PAIR_GRAMMAR = r"""root ::= "<instruction>" [ \n]* itext "</instruction>" [ \n]* "<response>" [ \n]* rtext "</response>"
itext ::= [^<\x20\n\t] [^<]*
rtext ::= rstart rchar*
rstart ::= [^<\x20\n\t] | "<" [^/ir]
rchar ::= [^<] | "<" [^/ir] | "</" [^ir]
"""

# step 1 of the two-step ``compose`` operator: the instruction alone
INSTRUCTION_GRAMMAR = r"""root ::= "<instruction>" [ \n]* itext "</instruction>"
itext ::= [^<\x20\n\t] [^<]*
"""

# LM-Mixup's distillation output: ``<think>…</think><answer>Q: …\nA: …</answer>``
DISTIL_GRAMMAR = r"""root ::= "<think>" [^<]+ "</think>" [ \n]* "<answer>Q: " qtext "\nA: " atext "</answer>"
qtext ::= [^<\x20\n\t] [^<]*
atext ::= astart achar*
astart ::= [^<\x20\n\t] | "<" [^/a]
achar ::= [^<] | "<" [^/a] | "</" [^a]
"""

# JSON schema of the LLM checklist's answer (``check_errors.j2``)
CHECKLIST_SCHEMA = (
    '{"type": "object", "properties": {"errors": {"type": "array", "items": {"type": "object", "properties": '
    '{"type": {"type": "string"}, "detail": {"type": "string"}}, "required": ["type", "detail"]}}}, '
    '"required": ["errors"]}'
)


# --- tolerant parsing ---------------------------------------------------------------------------

_TAG = r"<{0}>\s*(.*?)\s*(?:</{0}>|$)"
_HEADINGS = re.compile(
    r"^\s*(?:#+\s*|\*\*)?(?:the\s+|new\s+|the\s+new\s+)?(instruction|question|q)\s*(?:\*\*)?\s*[:：]\s*(?:\*\*)?"
    r"\s*(?P<ins>.*?)\s*"
    r"^\s*(?:#+\s*|\*\*)?(?:the\s+|new\s+|the\s+new\s+)?(response|answer|output|a)\s*(?:\*\*)?\s*[:：]\s*"
    r"(?:\*\*)?\s*(?P<res>.*)\Z",
    re.S | re.I | re.M,
)


def tagged(text: str, tag: str) -> str | None:
    """The stripped text inside ``<tag>…</tag>`` (an unclosed tag runs to the end), or None when absent or blank."""
    m = re.search(_TAG.format(tag), text or "", re.S | re.I)
    return m.group(1).strip() or None if m else None


def parse_pair(text: str) -> tuple[str, str] | None:
    """Instruction and response from a generation: ``<instruction>…</instruction><response>…
    </response>`` tags, or ``Instruction:``/``Response:`` (also ``Q:``/``A:``) headings, or a JSON
    object with those keys. ``None`` when none of these shapes is found."""
    if not text:
        return None
    ins, res = tagged(text, "instruction"), tagged(text, "response")
    if ins and res:
        return ins, _strip_closing(res)
    obj = first_json_object(text)
    if isinstance(obj, dict):
        lower = {str(k).lower(): v for k, v in obj.items()}
        i = lower.get("instruction") or lower.get("question")
        r = lower.get("response") or lower.get("answer") or lower.get("output")
        if isinstance(i, str) and isinstance(r, str) and i.strip() and r.strip():
            return i.strip(), r.strip()
    m = _HEADINGS.search(text)
    if m and m.group("ins").strip() and m.group("res").strip():
        return m.group("ins").strip(), m.group("res").strip()
    return None


def _strip_closing(text: str) -> str:
    return re.sub(r"\s*</?(response|instruction)>\s*$", "", text, flags=re.I).strip()


# --- key terms ----------------------------------------------------------------------------------

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just let me
    more most my myself no nor not now of off on once only or other our ours ourselves out over own
    same she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why will
    with would you your yours yourself yourselves please write give explain describe provide list make
    tell following using use used given answer question response instruction example one two
    something thing things way many much well like get also may might must shall within without
    """.split()
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_'\-]*[A-Za-z0-9]|\d+(?:[.,]\d+)?")


def key_terms(text: str, limit: int = 8) -> list[str]:
    """Salient terms of a text: numbers, capitalised words and long content words (lower-cased),
    ranked by a simple salience (number > capitalised mid-sentence > length) then first position."""
    seen: dict[str, tuple[float, int]] = {}
    for pos, m in enumerate(_WORD.finditer(text)):
        w = m.group(0)
        lw = w.lower()
        if lw in STOPWORDS or (len(lw) < 4 and not w[0].isdigit()):
            continue
        start = m.start()
        mid_sentence = start > 0 and not re.search(r"[.!?:\n]\s*$", text[max(0, start - 3):start])
        sal = 3.0 if w[0].isdigit() else (2.0 if w[0].isupper() and mid_sentence else 0.0) + min(len(lw), 12) / 12
        if lw not in seen or seen[lw][0] < sal:
            seen[lw] = (sal, seen.get(lw, (0, pos))[1])
    ranked = sorted(seen.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    return [w for w, _ in ranked[:limit]]
