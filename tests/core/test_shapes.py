"""Shape conversion is lossless: property-based round trips over every shape."""

import string

import pytest
from hypothesis import given, settings, strategies as st

from purgemix.core.record import input_of, instruction_of, response_of
from purgemix.core.shapes import Converter, MappingError, RecordError, detect_shape, export, parse_mapping

text = st.text(alphabet=string.printable + "éü中文🙂", min_size=0, max_size=40)
nonblank = text.filter(lambda s: s.strip() != "")
extra_fields = st.dictionaries(
    st.sampled_from(["category", "lang", "score_x", "tags"]),
    st.one_of(text, st.integers(), st.lists(st.integers(), max_size=3)),
    max_size=2,
)


def roundtrip(obj, shape):
    """source shape -> record -> canonical messages -> record -> source shape"""
    rec = Converter("t.jsonl")(dict(obj))
    canonical = export(rec, "messages")
    rec2 = Converter("t.jsonl")(canonical)
    return export(rec2, shape)


@settings(max_examples=150, deadline=None)
@given(nonblank, text, nonblank, extra_fields, st.booleans())
def test_alpaca_roundtrip(instruction, inp, output, extra, with_id):
    obj = {"instruction": instruction, "input": inp, "output": output, **extra}
    if with_id:
        obj = {"id": "x1", **obj}
    assert roundtrip(obj, "alpaca") == obj


@settings(max_examples=100, deadline=None)
@given(nonblank, text, nonblank, text)
def test_dolly_roundtrip(instruction, context, response, category):
    obj = {"instruction": instruction, "context": context, "response": response, "category": category}
    assert roundtrip(obj, "dolly") == obj


turn = st.tuples(st.sampled_from(["human", "gpt"]), nonblank)


@settings(max_examples=100, deadline=None)
@given(st.lists(turn, min_size=1, max_size=6), st.one_of(st.none(), text), extra_fields)
def test_sharegpt_roundtrip(turns, system, extra):
    conv = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}] + [
        {"from": w, "value": v} for w, v in turns
    ]
    obj = {"conversations": conv, **extra}
    if system is not None:
        obj["system"] = system
    assert roundtrip(obj, "sharegpt") == obj


@settings(max_examples=60, deadline=None)
@given(nonblank, nonblank)
def test_prompt_completion_roundtrip(prompt, completion):
    obj = {"prompt": prompt, "completion": completion}
    assert roundtrip(obj, "prompt-completion") == obj


def test_messages_roundtrip_keeps_unknown_fields():
    obj = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                        {"role": "assistant", "content": "a"}], "tag": 3}
    rec = Converter("f")(obj)
    assert rec["meta"]["tag"] == 3
    back = export(Converter("f")(export(rec, "messages")), "messages")
    assert back["messages"] == obj["messages"] and back["meta"]["tag"] == 3


def test_sharegpt_nonstandard_roles_and_system_turn():
    obj = {"conversations": [{"from": "system", "value": "be nice"}, {"from": "user", "value": "hi"},
                             {"from": "chatgpt", "value": "hello"}]}
    rec = Converter("f")(obj)
    assert [m["role"] for m in rec["messages"]] == ["system", "user", "assistant"]
    assert export(rec, "sharegpt") == obj


def test_role_views_and_alpaca_to_sharegpt():
    rec = Converter("f")({"instruction": "Translate", "input": "bonjour", "output": "hello"})
    assert (instruction_of(rec), input_of(rec), response_of(rec)) == ("Translate", "bonjour", "hello")
    assert rec["messages"][0]["content"] == "Translate\n\nbonjour"
    sg = export(rec, "sharegpt")
    assert sg["conversations"][0] == {"from": "human", "value": "Translate\n\nbonjour"}


def test_ids_are_kept_or_content_hashes():
    a = Converter("f")({"instruction": "x", "output": "y"})
    b = Converter("g")({"instruction": "x", "output": "y"})
    c = Converter("f")({"id": 17, "instruction": "x", "output": "y"})
    assert a["id"] == b["id"] and len(a["id"]) == 16
    assert c["id"] == "17"


@pytest.mark.parametrize(
    "obj, reason",
    [
        ({"instruction": 3, "output": "y"}, "must be a string"),
        ({"foo": 1}, "unknown record shape"),
        ({"conversations": [{"from": "gpt", "value": "only answer"}]}, "no user turn"),
        ({"conversations": []}, "no turns"),
        ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}, "has no content"),
        ({"messages": "nope"}, "must be a list"),
        ({"conversations": [{"from": "alien", "value": "x"}]}, "unknown speaker"),
    ],
)
def test_bad_records_have_clear_reasons(obj, reason):
    with pytest.raises(RecordError, match=reason):
        Converter("f")(obj)


def test_multi_turn_cannot_be_written_as_alpaca():
    rec = Converter("f")({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"},
                                            {"from": "human", "value": "c"}, {"from": "gpt", "value": "d"}]})
    with pytest.raises(RecordError, match="2 user and 2 assistant"):
        export(rec, "alpaca")


def test_mapping():
    conv = Converter("f", parse_mapping(["instruction=question", "output=answer"]))
    rec = conv({"question": "q?", "answer": "a.", "other": 1})
    assert instruction_of(rec) == "q?" and response_of(rec) == "a." and rec["meta"]["other"] == 1
    with pytest.raises(MappingError, match="unknown mapping key 'bogus'"):
        parse_mapping(["bogus=x"])
    with pytest.raises(MappingError, match="FIELD=COLUMN"):
        parse_mapping(["nope"])


def test_detect_shape_priority():
    assert detect_shape({"instruction": "a", "input": "", "output": "b"}).name == "alpaca"
    assert detect_shape({"instruction": "a", "context": "", "response": "b"}).name == "dolly"
    assert detect_shape({"messages": []}).name == "messages"
