"""Files in every format, bad input quarantined with line numbers, clear errors, the ledger."""

import gzip
import json
import random
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.io import Source, write_rows

runner = CliRunner()


def good_record(i):
    return {"instruction": f"Explain item {i}.", "input": "" if i % 3 else f"ctx {i}",
            "output": f"Item {i} is explained here.", "category": "qa"}


def run_cli(*args):
    return runner.invoke(app, [str(a) for a in args])


def make_broken_jsonl(path: Path, n_good=1000, seed=0):
    """1,000 good records and 37 broken lines of varied kinds; returns the bad line numbers."""
    rng = random.Random(seed)
    bad_kinds = [
        b'{"instruction": "x", "output": ',  # truncated JSON
        b"not json at all",
        b'["a", "list"]',  # not an object
        b'{"instruction": 5, "output": "y"}',  # wrong type
        b'{"conversations": []}',  # no turns
        b'{"conversations": [{"from": "gpt", "value": "answer only"}]}',  # missing user turn
        b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant"}]}',  # empty turn
        b'{"instruction": "caf\xe9", "output": "y"}',  # invalid UTF-8 (latin-1 byte)
        b'{"unknown": "shape"}',
        b'{"instruction": "big", "output": "' + b"x" * 5000 + b'"}',  # over --max-record-bytes
    ]
    lines = [orjson.dumps(good_record(i)) for i in range(n_good)]
    bad_positions = sorted(rng.sample(range(n_good + 37), 37))
    out, bad_lines = [], []
    gi = 0
    for pos in range(n_good + 37):
        if pos in bad_positions:
            out.append(bad_kinds[len(bad_lines) % len(bad_kinds)])
            bad_lines.append(pos + 1)
        else:
            out.append(lines[gi])
            gi += 1
    path.write_bytes(b"\n".join(out) + b"\n")
    return bad_lines


def test_broken_lines_are_quarantined_with_line_numbers(tmp_path):
    src = tmp_path / "in.jsonl"
    bad = make_broken_jsonl(src)
    out = tmp_path / "out.jsonl"
    res = run_cli("convert", src, out, "--to", "alpaca", "--json", "--run-dir", tmp_path / "run",
                  "--max-record-bytes", 4096, "--shard-size", 100)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["read"] == 1037 and summary["written"] == 1000 and summary["quarantined"] == 37
    assert summary["ledger_balanced"] is True
    assert [json.loads(l) for l in out.read_text().splitlines()] == [good_record(i) for i in range(1000)]
    q = [json.loads(l) for l in (tmp_path / "run" / "quarantine.jsonl").read_text().splitlines()]
    assert [e["line"] for e in q] == bad
    assert all(e["source"] == "in.jsonl" and e["reason"] for e in q)
    reasons = " ".join(e["reason"] for e in q)
    for fragment in ("malformed JSON", "must be a JSON object", "must be a string", "no turns", "no user turn",
                     "has no content", "invalid UTF-8", "unknown record shape", "exceeds --max-record-bytes"):
        assert fragment in reasons
    assert any("raw_base64" in e for e in q)  # the invalid-UTF-8 line is kept byte for byte
    led = run_cli("ledger", tmp_path / "run", "--json")
    assert led.exit_code == 0 and json.loads(led.stdout)["balanced"] is True


def test_strict_stops_at_first_bad_line(tmp_path):
    src = tmp_path / "in.jsonl"
    bad = make_broken_jsonl(src)
    res = run_cli("convert", src, tmp_path / "o.jsonl", "--strict", "--run-dir", tmp_path / "run")
    assert res.exit_code != 0
    assert f"in.jsonl:{bad[0]}:" in res.output
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "missing.jsonl", "o.jsonl"], "missing.jsonl: no such file or directory"),
        (["convert", ".", "o.jsonl"], "is a directory but not a Hugging Face datasets folder"),
        (["convert", "data.xml", "o.jsonl"], "unknown format '.xml'"),
        (["convert", "data.jsonl", "o.jsonl", "--map", "nonsense=col"], "unknown mapping key 'nonsense'"),
        (["convert", "data.jsonl", "o.jsonl", "--to", "yaml"], "unknown output shape 'yaml'"),
        (["convert", "data.jsonl", "o.jsonl", "--in-format", "xls"], "unknown format 'xls'"),
        (["ledger", "nowhere"], "nowhere: no such run directory"),
    ],
)
def test_clear_one_line_errors(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.xml").write_text("<x/>")
    (tmp_path / "data.jsonl").write_text(json.dumps(good_record(1)) + "\n")
    res = run_cli(*args)
    assert res.exit_code != 0
    assert message in " ".join(res.output.split())
    assert "Traceback" not in res.output


def test_error_exit_from_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "purgemix", "convert", str(tmp_path / "nope.json"), "o.jsonl"],
                          capture_output=True, text=True)
    assert proc.returncode == 3
    assert "no such file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("name", ["d.jsonl", "d.jsonl.gz", "d.jsonl.zst", "d.json", "d.json.gz", "d.parquet",
                                  "d.csv", "d.csv.zst", "hfdir"])
def test_every_format_roundtrips(tmp_path, name):
    rows = [good_record(i) for i in range(50)]
    path = tmp_path / name
    write_rows(path, rows, "hf" if name == "hfdir" else None)
    src = Source.open(path)
    got = [orjson.loads(p) if isinstance(p, bytes) else p for _, p, err in src.rows() if err is None]
    assert got == rows
    out = tmp_path / ("back_" + name)
    res = run_cli("convert", path, out, "--to", "alpaca", "--run-dir", tmp_path / "run",
                  *(["--format", "hf"] if name == "hfdir" else []))
    assert res.exit_code == 0, res.output
    back = Source.open(out)
    assert [orjson.loads(p) if isinstance(p, bytes) else p for _, p, _ in back.rows()] == rows


def test_reads_a_real_datasets_save_to_disk_folder(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = [good_record(i) for i in range(20)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    res = run_cli("convert", tmp_path / "ds", tmp_path / "o.jsonl", "--to", "alpaca", "--run-dir", tmp_path / "r")
    assert res.exit_code == 0, res.output
    assert [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()] == rows


def test_json_list_streaming_reports_malformed_tail(tmp_path):
    path = tmp_path / "big.json.gz"  # compressed lists are streamed with ijson
    with gzip.open(path, "wb") as f:
        f.write(b'[{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}, {"instr')
    rows = list(Source.open(path).rows())
    assert rows[0][2] is None and rows[1][2] is None
    assert rows[2][0] == 3 and "malformed JSON after item 2" in rows[2][2]


def test_csv_with_mapping_and_json_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text('question,answer,conv\n"What is 2+2?",4,x\n"Name a colour","blue",y\n')
    res = run_cli("convert", path, tmp_path / "o.jsonl", "--map", "instruction=question", "--map",
                  "output=answer", "--to", "alpaca", "--run-dir", tmp_path / "r")
    assert res.exit_code == 0, res.output
    rows = [json.loads(l) for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert rows[0] == {"instruction": "What is 2+2?", "output": "4", "conv": "x"}


def test_duplicate_ids_are_made_unique_and_stable(tmp_path):
    path = tmp_path / "d.jsonl"
    rows = [good_record(1), good_record(2), good_record(1), good_record(1)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for run in ("r1", "r2"):
        res = run_cli("convert", path, tmp_path / f"{run}.jsonl", "--run-dir", tmp_path / run, "--shard-size", 2)
        assert res.exit_code == 0, res.output
    ids = [json.loads(l)["id"] for l in (tmp_path / "r1.jsonl").read_text().splitlines()]
    assert ids[2] == ids[0] + ".1" and ids[3] == ids[0] + ".2" and len(set(ids)) == 4
    assert (tmp_path / "r1.jsonl").read_text() == (tmp_path / "r2.jsonl").read_text()
    # the ingest lists its ids beside the records: the same as scanning the records, renames applied on top
    from purgemix.core.rundir import RunDir

    ingest = RunDir(tmp_path / "r1").stage_dirs()[0]
    assert (ingest.path / "000001.ids.json").exists()
    for i in range(2):
        assert ingest.read_ids(i, renamed=False) == ingest._scan_ids(i, renamed=False)
    assert ingest.read_ids(0) + ingest.read_ids(1) == ids


def test_shared_alpaca_roundtrip(tmp_path, shared_data):
    src = shared_data / "alpaca_random_9k.json"
    mid, back = tmp_path / "mid.jsonl", tmp_path / "back.json"
    assert run_cli("convert", src, mid, "--to", "messages", "--run-dir", tmp_path / "r1").exit_code == 0
    assert run_cli("convert", mid, back, "--to", "alpaca", "--run-dir", tmp_path / "r2").exit_code == 0
    original = json.loads(src.read_text())
    assert len(original) == 9229
    assert json.loads(back.read_text()) == original


@pytest.mark.parametrize("platform", ["linux", "darwin"])
@pytest.mark.parametrize("name", ["o.jsonl", "o.jsonl.gz", "o.json", "o.parquet", "o.csv"])
def test_appending_part_files_writes_what_appending_bytes_writes(tmp_path, monkeypatch, name, platform):
    """``Writer.append_jsonl_file`` (the export's part files, copied by the kernel where the bytes go in as
    they are, on Linux; read and written elsewhere) gives the same output as ``write_jsonl_bytes``, mixed
    with ``write`` calls, in every format."""
    import sys

    from purgemix.io.writers import Writer

    monkeypatch.setattr(sys, "platform", platform)

    rows = [good_record(i) for i in range(30)]
    parts = []
    for k, chunk in enumerate((rows[:10], [], rows[10:25])):
        p = tmp_path / f"part{k}.jsonl"
        p.write_bytes(b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in chunk))
        parts.append((p, len(chunk)))
    outputs = []
    for how in ("file", "bytes"):
        (tmp_path / how).mkdir()
        with Writer(tmp_path / how / name) as w:
            for p, n in parts:
                w.append_jsonl_file(p, n) if how == "file" else w.write_jsonl_bytes(p.read_bytes(), n)
            w.write(rows[25:])
            assert w.count == 30
        outputs.append([orjson.loads(x) if isinstance(x, bytes) else x
                        for _, x, _ in Source.open(tmp_path / how / name).rows()])
    assert outputs[0] == outputs[1] == rows


@pytest.mark.parametrize("shard_size", [1, 2, 10])
def test_duplicate_ids_never_collide_with_an_id_the_file_already_has(tmp_path, shard_size):
    """Ids x, x, x.1: the file's own x.1 comes after the new name x.1, so it is renamed in its turn; every id
    stays unique, whatever the shard size."""
    path = tmp_path / "d.jsonl"
    rows = [{**good_record(i), "id": rid} for i, rid in enumerate(["x", "x", "x.1", "y.1", "y", "y", "x"])]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = run_cli("convert", path, tmp_path / "o.jsonl", "--run-dir", tmp_path / "run", "--shard-size", shard_size)
    assert res.exit_code == 0, res.output
    ids = [json.loads(l)["id"] for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert ids == ["x", "x.1", "x.1.1", "y.1", "y", "y.2", "x.2"]


def test_two_inputs_with_one_file_name_are_told_apart_in_refs_and_quarantine(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "train.jsonl").write_text(json.dumps(good_record(1 if folder == "a" else 2)) + "\nnot json\n")
    res = run_cli("convert", tmp_path / "a" / "train.jsonl", tmp_path / "b" / "train.jsonl", tmp_path / "o.jsonl",
                  "--run-dir", tmp_path / "run")
    assert res.exit_code == 0, res.output
    refs = [json.loads(l)["lineage"]["ref"] for l in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert refs == ["a/train.jsonl:1", "b/train.jsonl:1"]
    q = [json.loads(l) for l in (tmp_path / "run" / "quarantine.jsonl").read_text().splitlines()]
    assert [(e["source"], e["line"]) for e in q] == [("a/train.jsonl", 2), ("b/train.jsonl", 2)]


def test_source_labels_keep_bare_names_when_they_differ():
    from purgemix.io.readers import source_labels

    assert source_labels([Path("/x/a.jsonl"), Path("/y/b.jsonl")]) == ["a.jsonl", "b.jsonl"]
    assert source_labels([Path("/x/p/t.json"), Path("/y/p/t.json")]) == ["x/p/t.json", "y/p/t.json"]
