"""Dataset shapes: detection, conversion to the canonical record, and back.

Every shape is a small registered pair of functions (``to_record``, ``from_record``).
Conversion is lossless: fields a shape does not know are kept in ``meta`` and written back,
and the structural details needed to rebuild the source shape live in ``meta["_..."]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import orjson

from .record import INPUT_SEPARATOR, Record, content_hash, split_user_turn, unknown_fields


class RecordError(ValueError):
    """A source record that cannot become a canonical record; the message is the reason."""


@dataclass(frozen=True)
class Shape:
    name: str
    keys: frozenset[str]  # keys whose presence identifies the shape
    to_record: Callable[[dict[str, Any], str], Record]
    from_record: Callable[[Record], dict[str, Any]]


SHAPES: dict[str, Shape] = {}
CANONICAL_KEYS = ("id", "messages", "source", "meta", "scores", "lineage")
SHAREGPT_ROLE_IN = {
    "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
    "chatgpt": "assistant", "bard": "assistant", "bing": "assistant", "model": "assistant",
    "system": "system", "tool": "tool", "function": "tool", "observation": "tool",
    "function_call": "assistant",
}
SHAREGPT_ROLE_OUT = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}


def register_shape(shape: Shape) -> Shape:
    SHAPES[shape.name] = shape
    return shape


# --- helpers ---------------------------------------------------------------------------------


def _text(obj: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise RecordError(f"missing field '{key}'")
        return ""
    if not isinstance(value, str):
        raise RecordError(f"field '{key}' must be a string, got {type(value).__name__}")
    return value


def _finish(
    obj: dict[str, Any], messages: list[dict[str, Any]], meta: dict[str, Any], source: str, known: set[str]
) -> Record:
    _check_turns(messages)
    for k, v in obj.items():
        if k not in known:
            meta[k] = v
    rid = obj.get("id")
    if rid is not None and not isinstance(rid, (str, int)):
        raise RecordError(f"field 'id' must be a string or integer, got {type(rid).__name__}")
    scores = obj.get("scores") if isinstance(obj.get("scores"), dict) and "scores" in known else {}
    lineage = obj.get("lineage") if isinstance(obj.get("lineage"), dict) and "lineage" in known else {}
    return {
        "id": str(rid) if rid not in (None, "") else content_hash(messages),
        "messages": messages,
        "source": obj.get("source") if isinstance(obj.get("source"), str) and "source" in known else source,
        "meta": meta,
        "scores": scores,
        "lineage": lineage,
    }


def _check_turns(messages: list[dict[str, Any]]) -> None:
    if not messages:
        raise RecordError("no turns")
    has_user = has_assistant = any_text = False
    for i, m in enumerate(messages):
        role, content = m["role"], m["content"]
        if not isinstance(content, str):
            raise RecordError(f"turn {i}: content must be a string, got {type(content).__name__}")
        if role == "user":
            has_user = True
        elif role == "assistant":
            has_assistant = True
        elif role not in ("system", "tool"):
            raise RecordError(f"turn {i}: unknown role '{role}'")
        if not any_text and role in ("user", "assistant") and content.strip():
            any_text = True
    if not has_user:
        raise RecordError("no user turn")
    if not has_assistant:
        raise RecordError("no assistant turn")
    # An empty *string* is data, not a format error: the purge stage drops it with a reason
    # (so `convert` round-trips a file exactly). A turn with no content at all is quarantined.
    if not any_text:
        raise RecordError("every user and assistant turn is empty")


def _user_turn(instruction: str, input_text: str) -> str:
    if not input_text:
        return instruction
    return f"{instruction}{INPUT_SEPARATOR}{input_text}" if instruction else input_text


def _prompt_parts(record: Record) -> tuple[str, str, str, str]:
    """(system, instruction, input, response) of a single-turn record."""
    msgs = record["messages"]
    system = msgs[0]["content"] if msgs and msgs[0]["role"] == "system" else ""
    users = [m for m in msgs if m["role"] == "user"]
    assistants = [m for m in msgs if m["role"] == "assistant"]
    if len(users) != 1 or len(assistants) != 1:
        raise RecordError(
            f"record {record['id']} has {len(users)} user and {len(assistants)} assistant turns;"
            " this shape holds one of each (use --to messages or sharegpt)"
        )
    instruction, input_text = split_user_turn(users[0]["content"], record["meta"].get("_input", ""))
    return system, instruction, input_text, assistants[0]["content"]


def _written_id(record: Record) -> dict[str, Any]:
    # Write the id back only when the source had one; content-hash ids are re-derivable.
    return {"id": record["id"]} if record["meta"].get("_has_id") else {}


def _meta_for(obj: dict[str, Any], shape: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"_shape": shape}
    if obj.get("id") not in (None, ""):
        meta["_has_id"] = True
    return meta


# --- Alpaca: instruction / input / output (+ optional system) ------------------------------


def alpaca_to_record(obj: dict[str, Any], source: str) -> Record:
    instruction = _text(obj, "instruction")
    input_text = _text(obj, "input", required=False)
    output = _text(obj, "output")
    system = _text(obj, "system", required=False)
    meta = _meta_for(obj, "alpaca")
    if input_text:
        meta["_input"] = input_text
    if "input" in obj and obj["input"] is None:
        meta["_input_null"] = True
    elif "input" not in obj:
        meta["_no_input_key"] = True
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": _user_turn(instruction, input_text)},
        {"role": "assistant", "content": output},
    ]
    return _finish(obj, messages, meta, source, {"instruction", "input", "output", "system", "id"})


def record_to_alpaca(record: Record) -> dict[str, Any]:
    system, instruction, input_text, response = _prompt_parts(record)
    meta = record["meta"]
    out: dict[str, Any] = _written_id(record)
    out["instruction"] = instruction
    if not meta.get("_no_input_key") or input_text:
        out["input"] = None if meta.get("_input_null") and not input_text else input_text
    out["output"] = response
    if system:
        out["system"] = system
    out.update(unknown_fields(meta))
    return out


# --- Dolly: instruction / context / response / category --------------------------------------


def dolly_to_record(obj: dict[str, Any], source: str) -> Record:
    instruction = _text(obj, "instruction")
    context = _text(obj, "context", required=False)
    response = _text(obj, "response")
    meta = _meta_for(obj, "dolly")
    if context:
        meta["_input"] = context
    messages = [
        {"role": "user", "content": _user_turn(instruction, context)},
        {"role": "assistant", "content": response},
    ]
    return _finish(obj, messages, meta, source, {"instruction", "context", "response", "id"})


def record_to_dolly(record: Record) -> dict[str, Any]:
    _system, instruction, input_text, response = _prompt_parts(record)
    out: dict[str, Any] = _written_id(record)
    out.update({"instruction": instruction, "context": input_text, "response": response})
    out.update(unknown_fields(record["meta"]))
    return out


# --- ShareGPT: conversations [{from, value}] (+ optional top-level system) --------------------


def sharegpt_to_record(obj: dict[str, Any], source: str) -> Record:
    conv = obj.get("conversations")
    if not isinstance(conv, list):
        raise RecordError(f"field 'conversations' must be a list, got {type(conv).__name__}")
    meta = _meta_for(obj, "sharegpt")
    messages: list[dict[str, Any]] = []
    role_names: list[str] = []
    system = obj.get("system")
    if system is not None:
        if not isinstance(system, str):
            raise RecordError(f"field 'system' must be a string, got {type(system).__name__}")
        meta["_sharegpt_system_field"] = True
        if system:
            messages.append({"role": "system", "content": system})
    for i, turn in enumerate(conv):
        if not isinstance(turn, dict):
            raise RecordError(f"conversations[{i}] must be an object, got {type(turn).__name__}")
        who = turn.get("from", turn.get("role"))
        value = turn.get("value", turn.get("content"))
        if not isinstance(who, str):
            raise RecordError(f"conversations[{i}] has no 'from'")
        role = SHAREGPT_ROLE_IN.get(who.lower())
        if role is None:
            raise RecordError(f"conversations[{i}]: unknown speaker '{who}'")
        if value is None:
            raise RecordError(f"conversations[{i}] has no value")
        if not isinstance(value, str):
            raise RecordError(f"conversations[{i}].value must be a string, got {type(value).__name__}")
        extra = {k: v for k, v in turn.items() if k not in ("from", "value")}
        messages.append({"role": role, "content": value})
        role_names.append(who)
        if extra:
            meta.setdefault("_turn_extra", {})[str(i)] = extra
    if role_names != [SHAREGPT_ROLE_OUT[m["role"]] for m in messages if not (
        m["role"] == "system" and meta.get("_sharegpt_system_field") and m is messages[0]
    )]:
        meta["_sharegpt_roles"] = role_names
    return _finish(obj, messages, meta, source, {"conversations", "system", "id"})


def record_to_sharegpt(record: Record) -> dict[str, Any]:
    meta = record["meta"]
    msgs = list(record["messages"])
    out: dict[str, Any] = _written_id(record)
    if meta.get("_sharegpt_system_field"):
        if msgs and msgs[0]["role"] == "system":
            out["system"] = msgs.pop(0)["content"]
        else:
            out["system"] = ""
    names = meta.get("_sharegpt_roles")
    if not names or len(names) != len(msgs):
        names = [SHAREGPT_ROLE_OUT[m["role"]] for m in msgs]
    extras = meta.get("_turn_extra", {})
    conv = []
    for i, (name, m) in enumerate(zip(names, msgs)):
        turn = {"from": name, "value": m["content"]}
        turn.update(extras.get(str(i), {}))
        conv.append(turn)
    out["conversations"] = conv
    out.update(unknown_fields(meta))
    return out


# --- OpenAI messages (also purgemix's own canonical JSONL) ------------------------------------


def messages_to_record(obj: dict[str, Any], source: str) -> Record:
    raw = obj.get("messages")
    if not isinstance(raw, list):
        raise RecordError(f"field 'messages' must be a list, got {type(raw).__name__}")
    messages = []
    for i, m in enumerate(raw):
        if not isinstance(m, dict):
            raise RecordError(f"messages[{i}] must be an object, got {type(m).__name__}")
        role, content = m.get("role"), m.get("content")
        if not isinstance(role, str):
            raise RecordError(f"messages[{i}] has no 'role'")
        if content is None:
            raise RecordError(f"messages[{i}] has no content")
        if not isinstance(content, str):
            raise RecordError(f"messages[{i}].content must be a string, got {type(content).__name__}")
        messages.append({"role": role, "content": content})
    own_meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else None
    meta = dict(own_meta) if own_meta is not None else {}
    meta.setdefault("_shape", "messages")
    if obj.get("id") not in (None, "") and own_meta is None:
        meta["_has_id"] = True
    known = {"messages", "id"} | ({"meta", "scores", "lineage", "source"} if own_meta is not None else set())
    return _finish(obj, messages, meta, source, known)


def record_to_messages(record: Record) -> dict[str, Any]:
    """Canonical form: OpenAI ``messages`` plus purgemix's fields, so nothing is lost."""
    out: dict[str, Any] = {"id": record["id"], "messages": record["messages"]}
    if record.get("source"):
        out["source"] = record["source"]
    out["meta"] = record["meta"]
    if record.get("scores"):
        out["scores"] = record["scores"]
    if record.get("lineage"):
        out["lineage"] = record["lineage"]
    return out


# --- prompt / completion ----------------------------------------------------------------------


def prompt_completion_to_record(obj: dict[str, Any], source: str) -> Record:
    prompt = _text(obj, "prompt")
    completion = _text(obj, "completion")
    meta = _meta_for(obj, "prompt-completion")
    messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
    return _finish(obj, messages, meta, source, {"prompt", "completion", "id"})


def record_to_prompt_completion(record: Record) -> dict[str, Any]:
    system, instruction, input_text, response = _prompt_parts(record)
    prompt = _user_turn(instruction, input_text)
    if system:
        prompt = f"{system}\n\n{prompt}"
    out: dict[str, Any] = _written_id(record)
    out.update({"prompt": prompt, "completion": response})
    out.update(unknown_fields(record["meta"]))
    return out


register_shape(Shape("messages", frozenset({"messages"}), messages_to_record, record_to_messages))
register_shape(Shape("sharegpt", frozenset({"conversations"}), sharegpt_to_record, record_to_sharegpt))
register_shape(Shape("dolly", frozenset({"instruction", "response"}), dolly_to_record, record_to_dolly))
register_shape(Shape("alpaca", frozenset({"instruction", "output"}), alpaca_to_record, record_to_alpaca))
register_shape(
    Shape("prompt-completion", frozenset({"prompt", "completion"}), prompt_completion_to_record,
          record_to_prompt_completion)
)
OUTPUT_SHAPES = ("alpaca", "sharegpt", "messages", "prompt-completion", "dolly")


_SHAPE_BY_KEYS: dict[tuple[str, ...], Shape] = {}


def detect_shape(obj: dict[str, Any]) -> Shape:
    keys = tuple(obj)
    cached = _SHAPE_BY_KEYS.get(keys)  # files repeat the same key layout: detect once per layout
    if cached is not None:
        return cached
    for shape in SHAPES.values():  # registration order is the priority order
        if shape.keys <= obj.keys():
            if len(_SHAPE_BY_KEYS) < 1024:
                _SHAPE_BY_KEYS[keys] = shape
            return shape
    raise RecordError(f"unknown record shape with keys {sorted(obj)[:12]}; pass --map to name the columns")


# --- explicit column mapping -------------------------------------------------------------------

MAPPING_TARGETS = ("instruction", "input", "output", "system", "id", "messages", "conversations",
                   "prompt", "completion")


class MappingError(ValueError):
    pass


def parse_mapping(pairs: list[str] | dict[str, str] | None) -> dict[str, str]:
    """``["instruction=question", "output=answer"]`` -> ``{"question": "instruction", ...}``
    (source column -> canonical field)."""
    if not pairs:
        return {}
    items = pairs.items() if isinstance(pairs, dict) else [_split_pair(p) for p in pairs]
    mapping = {}
    for target, column in items:
        if target not in MAPPING_TARGETS:
            raise MappingError(f"unknown mapping key '{target}'; use one of: {', '.join(MAPPING_TARGETS)}")
        mapping[column] = target
    return mapping


def _split_pair(pair: str) -> tuple[str, str]:
    if "=" not in pair:
        raise MappingError(f"mapping '{pair}' must look like FIELD=COLUMN, e.g. instruction=question")
    target, column = pair.split("=", 1)
    return target.strip(), column.strip()


class Converter:
    """Turns one source object into a canonical record (auto-detecting its shape)."""

    def __init__(self, source: str, mapping: dict[str, str] | None = None, shape: str | None = None):
        self.source = source
        self.mapping = mapping or {}
        if shape is not None and shape not in SHAPES:
            raise MappingError(f"unknown input shape '{shape}'; use one of: {', '.join(SHAPES)}")
        self.shape = SHAPES[shape] if shape else None

    def __call__(self, obj: Any) -> Record:
        if not isinstance(obj, dict):
            raise RecordError(f"record must be a JSON object, got {type(obj).__name__}")
        if self.mapping:
            obj = {self.mapping.get(k, k): v for k, v in obj.items()}
        for key in ("messages", "conversations", "meta", "scores", "lineage"):
            if isinstance(obj.get(key), str) and obj[key][:1] in ("[", "{"):  # CSV cells hold JSON text
                try:
                    obj = {**obj, key: orjson.loads(obj[key])}
                except orjson.JSONDecodeError as e:
                    raise RecordError(f"field '{key}' is not valid JSON: {e}") from None
        shape = self.shape or detect_shape(obj)
        return shape.to_record(obj, self.source)


def export(record: Record, shape: str) -> dict[str, Any]:
    return SHAPES[shape].from_record(record)
