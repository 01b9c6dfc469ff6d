"""One run per run directory: a second run fails at once with a clear message, and a killed run leaves no lock."""

import os
import signal
import time

import pytest
from test_pipeline import run_script, write_input

from purgemix.core.pipeline import InputSpec, OutputSpec, Pipeline
from purgemix.core.rundir import RunDir
from purgemix.core.runlock import RunDirBusy


def wait_for_lock(run_dir, proc, timeout=60):
    lock = run_dir / ".lock"
    t0 = time.time()
    while time.time() - t0 < timeout:
        if lock.exists() and lock.read_text().startswith("pid"):
            return lock.read_text()
        assert proc.poll() is None, proc.stderr.read().decode()
        time.sleep(0.05)
    raise AssertionError("the first run never took the lock")


def test_a_second_run_on_a_busy_run_dir_fails_at_once_and_the_first_finishes_unharmed(tmp_path):
    src = tmp_path / "in.jsonl"
    write_input(src, 200)
    first = run_script(src, tmp_path / "a.jsonl", tmp_path / "run", workers=1, slow=0.02)
    holder = wait_for_lock(tmp_path / "run", first)
    assert f"pid {first.pid}" in holder
    t0 = time.time()
    with pytest.raises(RunDirBusy, match=rf"in use by another purgemix run \(pid {first.pid}.*another --run-dir"):
        # other options (no stages): before the lock, this run cleared the first one's stage folders
        Pipeline([InputSpec(str(src))], [], OutputSpec(str(tmp_path / "b.jsonl"), "alpaca"),
                 run_dir=tmp_path / "run", shard_size=50).execute()
    assert time.time() - t0 < 5  # at once, not after waiting
    assert first.wait(120) == 0, first.stderr.read().decode()
    ref = run_script(src, tmp_path / "ref.jsonl", tmp_path / "ref-run", workers=1)
    assert ref.wait(120) == 0
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()  # as if alone
    assert not (tmp_path / "b.jsonl").exists()


def test_a_killed_run_leaves_no_stale_lock(tmp_path):
    src = tmp_path / "in.jsonl"
    write_input(src, 200)
    first = run_script(src, tmp_path / "a.jsonl", tmp_path / "run", workers=1, slow=0.05)
    wait_for_lock(tmp_path / "run", first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    s = Pipeline([InputSpec(str(src))], [], OutputSpec(str(tmp_path / "b.jsonl"), "alpaca"),
                 run_dir=tmp_path / "run", shard_size=50).execute()
    assert s["written"] == 200


def test_the_lock_is_released_after_a_run_and_after_a_failed_one(tmp_path, monkeypatch):
    rd = RunDir(tmp_path / "run")
    rd.lock()
    with pytest.raises(RunDirBusy):
        RunDir(tmp_path / "run").lock()
    rd.unlock()
    again = RunDir(tmp_path / "run")
    again.lock()
    again.unlock()
    src = tmp_path / "in.jsonl"
    write_input(src, 10)

    def fails(self, executor, t_start):
        raise OSError("disk full")

    monkeypatch.setattr(Pipeline, "_execute", fails)
    with pytest.raises(OSError, match="disk full"):  # a run that fails still gives the folder back
        Pipeline([InputSpec(str(src))], [], None, run_dir=tmp_path / "run").execute()
    RunDir(tmp_path / "run").lock()


def test_stage_folders_of_another_configuration_are_not_this_runs(tmp_path):
    # a killed run of this folder with other stages left an incomplete stage behind (what a SIGKILL at the
    # right moment leaves): the next run with different stages does not count it as its own
    src = tmp_path / "in.jsonl"
    write_input(src, 20)
    stale = tmp_path / "run" / "stages" / "02-slow-upper"
    stale.mkdir(parents=True)
    (stale / "stage.json").write_text('{"fingerprint": "other"}')
    s = Pipeline([InputSpec(str(src))], [], OutputSpec(str(tmp_path / "b.jsonl"), "alpaca"),
                 run_dir=tmp_path / "run", shard_size=50).execute()
    assert s["written"] == 20 and s["ledger_balanced"] is True and not stale.exists()
