"""The canonical record every stage reads and writes.

A record is a plain ``dict`` (cheap to build, pickle and serialise with orjson)
with these keys:

``id``        stable identifier: the source's own id when it has one, else a content hash.
``messages``  list of ``{"role": "system"|"user"|"assistant"|"tool", "content": str}``.
``source``    name of the dataset/file the record came from.
``meta``      fields of the source record purgemix does not interpret (written back on
              export) plus purgemix's structural keys, which start with ``_``.
``scores``    numbers written by scorers, namespaced ``"<scorer>.<feature>"``.
``lineage``   where the record came from: ``ref`` (``file:row`` of its input row),
              ``derived_from`` (parent ids), ``stage``, ``operator``, ``model``, ...

Structural meta keys (never written back as unknown fields):

``_input``    the Alpaca ``input`` / Dolly ``context`` that was appended to the first user turn;
              kept so that instruction and input can be separated again losslessly.
``_shape``    the shape the record was read from (``alpaca``, ``sharegpt``, ...).
``_sharegpt`` ShareGPT details needed to write the same file back (role names, system field).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

ROLES = ("system", "user", "assistant", "tool")
INPUT_SEPARATOR = "\n\n"

Record = dict[str, Any]


def content_hash(messages: list[dict[str, Any]], extra: str = "") -> str:
    """16 hex chars of BLAKE2b over the conversation: same content, same id."""
    h = hashlib.blake2b(digest_size=8)
    h.update(orjson.dumps([[m["role"], m["content"]] for m in messages]))
    if extra:
        h.update(extra.encode("utf-8"))
    return h.hexdigest()


def make_record(
    messages: list[dict[str, Any]],
    *,
    id: str | None = None,
    source: str = "",
    meta: dict[str, Any] | None = None,
    scores: dict[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
) -> Record:
    meta = meta or {}
    return {
        "id": str(id) if id not in (None, "") else content_hash(messages),
        "messages": messages,
        "source": source,
        "meta": meta,
        "scores": scores or {},
        "lineage": lineage or {},
    }


# --- role views used by scorers and operators -------------------------------------------------


def first_turn(record: Record, role: str) -> str:
    for m in record["messages"]:
        if m["role"] == role:
            return m["content"]
    return ""


def system_prompt(record: Record) -> str:
    msgs = record["messages"]
    return msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""


def split_user_turn(content: str, input_text: str) -> tuple[str, str]:
    """Undo ``instruction + INPUT_SEPARATOR + input``; if the content no longer ends with the
    recorded input (a later stage rewrote it) the whole content is the instruction."""
    if input_text:
        suffix = INPUT_SEPARATOR + input_text
        if content.endswith(suffix):
            return content[: -len(suffix)], input_text
        if content == input_text:  # instruction was empty
            return "", input_text
    return content, ""


def instruction_of(record: Record) -> str:
    return split_user_turn(first_turn(record, "user"), record["meta"].get("_input", ""))[0]


def input_of(record: Record) -> str:
    return split_user_turn(first_turn(record, "user"), record["meta"].get("_input", ""))[1]


def response_of(record: Record) -> str:
    """The first assistant turn (the response of a single-turn pair)."""
    return first_turn(record, "assistant")


def unknown_fields(meta: dict[str, Any]) -> dict[str, Any]:
    """The source's own fields to write back (purgemix's ``_`` keys removed)."""
    return {k: v for k, v in meta.items() if not k.startswith("_")}
