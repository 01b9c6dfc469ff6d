"""File-level damage loses nothing readable: truncated or corrupt compressed streams, a JSON list with one bad
item, byte-order marks, invalid UTF-8 in a CSV. Every good record is kept, and the damage is quarantined with
its file, line or item, and reason (never a silent end of file, never the whole file as one row)."""

import bz2
import csv
import gzip
import io
import json

import orjson
import pytest
import zstandard
from typer.testing import CliRunner

from purgemix.cli import app

BOM = b"\xef\xbb\xbf"


def good(i):
    return {"instruction": f"Explain item {i}.", "input": "", "output": f"Item {i} is explained here, at length."}


def jsonl(n):
    return b"".join(orjson.dumps(good(i)) + b"\n" for i in range(n))


def zst(data):
    buf = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(buf, closefd=False) as w:
        w.write(data)
    return buf.getvalue()


def convert(tmp_path, src):
    res = CliRunner().invoke(app, ["convert", str(src), str(tmp_path / "out.jsonl"), "--to", "alpaca", "--json",
                                   "--run-dir", str(tmp_path / "run"), "--shard-size", "100"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["ledger_balanced"] is True
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    qpath = tmp_path / "run" / "quarantine.jsonl"
    q = [json.loads(line) for line in qpath.read_text().splitlines()] if qpath.exists() else []
    assert summary["quarantined"] == len(q) and summary["written"] == len(out)
    return out, q


def where(e):
    return e.get("line", e.get("item"))


def assert_prefix_kept(out, n_at_least):
    assert len(out) >= n_at_least
    assert out == [good(i) for i in range(len(out))]  # the records before the damage, in order, intact


@pytest.mark.parametrize("kind", ["gz", "bz2", "zst"])
def test_a_truncated_compressed_jsonl_keeps_what_it_can_read_and_quarantines_the_tail(tmp_path, kind):
    data = jsonl(20_000)
    packed = {"gz": gzip.compress, "bz2": bz2.compress, "zst": zst}[kind](data)
    src = tmp_path / f"in.jsonl.{kind}"
    src.write_bytes(packed[: int(len(packed) * 0.6)])
    out, q = convert(tmp_path, src)
    assert_prefix_kept(out, 1000)
    assert len(q) == 1 and q[0]["source"] == src.name and "truncated or corrupt" in q[0]["reason"]
    assert where(q[0]) == len(out) + 1  # where the readable part ends


def test_a_small_truncated_zst_file_is_not_read_as_empty(tmp_path):
    packed = zst(jsonl(30))
    src = tmp_path / "in.jsonl.zst"
    src.write_bytes(packed[: len(packed) - 5])
    out, q = convert(tmp_path, src)
    assert len(q) == 1 and "truncated or corrupt" in q[0]["reason"]
    assert_prefix_kept(out, 0)


def test_a_corrupt_gzip_member_is_quarantined_with_its_cause(tmp_path):
    packed = bytearray(gzip.compress(jsonl(5000)))
    mid = len(packed) // 2
    packed[mid:mid + 64] = bytes(64)
    src = tmp_path / "in.jsonl.gz"
    src.write_bytes(bytes(packed))
    out, q = convert(tmp_path, src)
    # gzip checks its CRC only at the end of a member, so lines decoded past the damage may differ; those
    # before it are intact, and the damage is named
    assert out[:1000] == [good(i) for i in range(1000)]
    damage = [e for e in q if "truncated or corrupt" in e["reason"]]
    assert len(damage) == 1 and damage[0] == q[-1] and all(e["reason"] and where(e) for e in q)


def test_a_truncated_compressed_json_list_keeps_its_complete_items(tmp_path):
    raw = orjson.dumps([good(i) for i in range(3000)])
    packed = gzip.compress(raw)
    src = tmp_path / "in.json.gz"
    src.write_bytes(packed[: int(len(packed) * 0.5)])
    out, q = convert(tmp_path, src)
    assert_prefix_kept(out, 100)
    assert len(q) == 1 and where(q[0]) == len(out) + 1


def test_a_json_list_cut_inside_its_last_item_keeps_the_others(tmp_path):
    raw = orjson.dumps([good(i) for i in range(80)])
    src = tmp_path / "in.json"
    src.write_bytes(raw[:-30])
    out, q = convert(tmp_path, src)
    assert out == [good(i) for i in range(79)]
    assert [(where(e), e["reason"]) for e in q] == [(80, "the file ends inside this item (truncated)")]


def test_a_json_list_with_one_too_deep_and_one_malformed_item_loses_only_those(tmp_path):
    items = [orjson.dumps(good(i)) for i in range(60)]
    items[10] = b'{"instruction": "deep", "output": ' + b"[" * 1100 + b"]" * 1100 + b"}"
    items[40] = b'{"instruction": "x", "output": tru}'
    src = tmp_path / "in.json"
    src.write_bytes(b"[" + b",\n".join(items) + b"]")
    out, q = convert(tmp_path, src)
    assert out == [good(i) for i in range(60) if i not in (10, 40)]
    assert [where(e) for e in q] == [11, 41]
    assert "too deep" in q[0]["reason"] and "malformed JSON item" in q[1]["reason"]


@pytest.mark.parametrize("name", ["in.json", "in.jsonl", "in.csv", "in.json.gz", "in.jsonl.zst"])
def test_a_byte_order_mark_changes_nothing(tmp_path, name):
    rows = [good(i) for i in range(50)]
    if name.startswith("in.jsonl"):
        raw = jsonl(50)
    elif ".json" in name:
        raw = orjson.dumps(rows)
    else:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        raw = buf.getvalue().encode()
    raw = BOM + raw
    src = tmp_path / name
    src.write_bytes(gzip.compress(raw) if name.endswith(".gz") else zst(raw) if name.endswith(".zst") else raw)
    out, q = convert(tmp_path, src)
    assert q == [] and out == rows


@pytest.mark.parametrize("suffix", ["csv", "tsv"])
def test_an_invalid_utf8_byte_in_a_csv_loses_only_its_row(tmp_path, suffix):
    sep = "\t" if suffix == "tsv" else ","
    lines = [sep.join(["instruction", "input", "output"]).encode()]
    lines += [sep.join([good(i)["instruction"], "", good(i)["output"].replace(",", "")]).encode() for i in range(100)]
    lines[51] = lines[51].replace(b"Item", b"It\xe9m")  # latin-1 byte in data row 51 (file line 52)
    src = tmp_path / f"in.{suffix}"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out, q = convert(tmp_path, src)
    expected = [{**good(i), "output": good(i)["output"].replace(",", "")} for i in range(100) if i != 50]
    assert out == expected
    assert [(e["line"], e["reason"]) for e in q] == [(52, "invalid UTF-8 byte(s) in this row")]


@pytest.mark.parametrize("name", ["in.jsonl", "in.json"])
def test_an_oversized_record_is_quarantined_with_its_start_size_and_hash(tmp_path, name):
    import hashlib

    rows = [good(0), {"instruction": "big", "output": "x" * 20_000}, good(2)]
    src = tmp_path / name
    src.write_bytes(jsonl(0) + b"".join(orjson.dumps(r) + b"\n" for r in rows) if name.endswith("l")
                    else orjson.dumps(rows))
    res = CliRunner().invoke(app, ["convert", str(src), str(tmp_path / "out.jsonl"), "--to", "alpaca", "--json",
                                   "--run-dir", str(tmp_path / "run"), "--max-record-bytes", "4096"])
    assert res.exit_code == 0, res.output
    q = [json.loads(line) for line in (tmp_path / "run" / "quarantine.jsonl").read_text().splitlines()]
    assert len(q) == 1 and where(q[0]) == 2 and "exceeds --max-record-bytes" in q[0]["reason"]
    raw = orjson.dumps(rows[1]) + (b"\n" if name.endswith("l") else b"")
    assert q[0]["raw_bytes"] == len(raw) and q[0]["raw_blake2b"] == hashlib.blake2b(raw, digest_size=16).hexdigest()
    assert raw.decode().startswith(q[0]["raw_prefix"]) and len(q[0]["raw_prefix"]) == 4096


LINE_KINDS = {  # bad JSONL lines beyond those of test_io_cli.make_broken_jsonl: each is quarantined alone
    "null": (b"null", "must be a JSON object"),
    "number": (b"42", "must be a JSON object"),
    "string": (b'"just a string"', "must be a JSON object"),
    "boolean": (b"true", "must be a JSON object"),
    "array": (b"[]", "must be a JSON object"),
    "empty object": (b"{}", "unknown record shape"),
    "instruction only": (b'{"instruction": "x"}', "unknown record shape"),
    "null field": (b'{"instruction": null, "output": "y"}', "missing field 'instruction'"),
    "list field": (b'{"instruction": ["a"], "output": "y"}', "must be a string"),
    "messages not a list": (b'{"messages": "hi"}', "must be a list"),
    "conversations not a list": (b'{"conversations": "x"}', "must be a list"),
    "turn without content": (b'{"messages": [{"role": "user"}]}', "has no content"),
    "unknown role": (b'{"messages": [{"role": "wizard", "content": "x"}, {"role": "assistant", "content": "y"}]}',
                     "unknown role"),
    "assistant only": (b'{"messages": [{"role": "assistant", "content": "y"}]}', "no user turn"),
    "user only": (b'{"messages": [{"role": "user", "content": "q"}]}', "no assistant turn"),
    "number turn": (b'{"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": 5}]}',
                    "must be a string"),
    "trailing text": (b'{"instruction": "x", "output": "y"} trailing', "malformed JSON"),
    "trailing comma": (b'{"instruction": "x", "output": "y",}', "malformed JSON"),
    "single quotes": (b"{'instruction': 'x', 'output': 'y'}", "malformed JSON"),
    "lone surrogate": (b'{"instruction": "x\\ud800", "output": "y"}', "malformed JSON"),
    "NUL bytes": (b"\x00\x00\x00", "malformed JSON"),
    "unterminated": (b'{"instruction": "a", "output": "b"', "malformed JSON"),
    "record separator": (b'{"instruction": "x", "output": "y"}\x1e', "malformed JSON"),
}


def test_every_kind_of_bad_line_is_quarantined_alone_with_its_line_and_reason(tmp_path):
    lines, expected = [], {}
    for i, (kind, (raw, reason)) in enumerate(LINE_KINDS.items()):
        lines += [orjson.dumps(good(2 * i)), raw, orjson.dumps(good(2 * i + 1))]
        expected[len(lines) - 1] = (kind, reason)  # the bad line's 1-based number is len(lines) - 1
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    out, q = convert(tmp_path, src)
    assert out == [good(i) for i in range(2 * len(LINE_KINDS))]
    assert [where(e) for e in q] == list(expected)
    for e in q:
        kind, reason = expected[where(e)]
        assert e["source"] == "in.jsonl" and reason in e["reason"], (kind, e["reason"])
