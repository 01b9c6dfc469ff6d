"""Output problems are one clear line before the work (read-only folder) or when they happen (full disk); a
corrupt Parquet input is quarantined without aborting the other inputs; a killed export leaves nothing behind
for long, and outputs get the usual file mode."""

import errno
import json
import os
import subprocess
import sys

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from purgemix.cli import app


def rows(n):
    return [{"instruction": f"Explain item {i}.", "input": "", "output": f"Item {i} is explained."} for i in range(n)]


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_corrupt_parquet_input_is_quarantined_and_the_other_inputs_are_read(tmp_path):
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows(30)))
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(rows(40)), bad)
    bad.write_bytes(bad.read_bytes()[:-40])  # the footer is gone
    res = cli("convert", good, bad, tmp_path / "out.jsonl", "--to", "alpaca", "--json", "--run-dir", tmp_path / "run")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["written"] == 30 and summary["quarantined"] == 1
    q = [json.loads(line) for line in (tmp_path / "run" / "quarantine.jsonl").read_text().splitlines()]
    assert q[0]["source"] == "bad.parquet" and "corrupt Parquet file" in q[0]["reason"]


def test_a_read_only_output_folder_fails_before_any_work(tmp_path, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows(5)))
    out_dir = tmp_path / "ro"
    out_dir.mkdir()
    real = os.access
    monkeypatch.setattr("purgemix.io.writers.os.access", lambda p, mode: False if str(p) == str(out_dir) else real(p, mode))
    res = cli("convert", src, out_dir / "out.jsonl", "--run-dir", tmp_path / "run")
    assert res.exit_code == 3 and "permission denied" in res.output and str(out_dir) in res.output
    assert "Traceback" not in res.output
    assert not (tmp_path / "run" / "stages").exists()  # nothing was read or written


def test_a_full_disk_is_one_clear_line(tmp_path, monkeypatch):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows(5)))

    def full(self, path, count):
        raise OSError(errno.ENOSPC, "No space left on device", str(self.path))

    monkeypatch.setattr("purgemix.io.writers.Writer.append_jsonl_file", full)
    res = cli("convert", src, tmp_path / "out.jsonl", "--run-dir", tmp_path / "run")
    assert res.exit_code == 3 and "no space left on the device" in res.output and "run the same command again" in res.output
    assert not list(tmp_path.glob(".out.jsonl.*"))  # the aborted writer removed its temporary


def test_temporaries_of_a_killed_export_are_removed_and_outputs_get_the_umask_mode(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows(5)))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.jsonl.{dead.pid}.k3j2h1.tmp"
    stale.write_bytes(b"half an export")
    old = os.umask(0o027)
    try:
        res = cli("convert", src, tmp_path / "out.jsonl", "--run-dir", tmp_path / "run")
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    assert not stale.exists()
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == 0o640
