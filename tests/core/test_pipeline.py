"""Resume after SIGKILL, identical outputs across executors, and a ledger that balances."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _stages import DropOddStage, MergePairsStage

from purgemix.core.ledger import check_ledger
from purgemix.core.pipeline import InputSpec, OutputSpec, Pipeline
from purgemix.core.rundir import RunDir
from purgemix.purge.normalise import NormaliseStage

TESTS = Path(__file__).parent.parent  # the helper scripts live in tests/


def write_input(path: Path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"instruction": f"Task {i}", "input": "", "output": "answer " + "x" * (i % 7)}) + "\n")


def run_script(src, out, run_dir, workers=2, executor="local", slow=0.0):
    env = {**os.environ, "SLOW_STAGE_SECONDS": str(slow), "PYTHONPATH": str(TESTS)}
    return subprocess.Popen([sys.executable, str(TESTS / "_run_pipeline.py"), str(src), str(out), str(run_dir),
                             str(workers), executor], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_sigkill_then_resume_gives_the_uninterrupted_output(tmp_path):
    src = tmp_path / "in.jsonl"
    write_input(src, 2000)  # 40 shards of 50
    ref = run_script(src, tmp_path / "ref.json", tmp_path / "ref_run", slow=0.0)
    assert ref.wait(timeout=300) == 0, ref.stderr.read().decode()

    run_dir = tmp_path / "run"
    proc = run_script(src, tmp_path / "out.json", run_dir, slow=0.25)
    stage_dir = run_dir / "stages" / "02-slow-upper"
    deadline = time.time() + 120
    while time.time() < deadline:
        done = list(stage_dir.glob("*.done.json")) if stage_dir.exists() else []
        if len(done) >= 8:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, mid-stage
    proc.wait()
    n_done = len(list(stage_dir.glob("0*.done.json")))
    assert 8 <= n_done < 40, "the kill must land in the middle of the stage"
    assert not (tmp_path / "out.json").exists()

    again = run_script(src, tmp_path / "out.json", run_dir, slow=0.0)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    ref_rows = json.loads((tmp_path / "ref.json").read_text())
    rows = json.loads((tmp_path / "out.json").read_text())
    assert rows == ref_rows
    ids = [r["instruction"] for r in rows]
    assert len(ids) == len(set(ids))  # no duplicates
    ledger = check_ledger(RunDir(run_dir))
    assert ledger["balanced"], ledger["problems"]
    assert ledger["kept"] + ledger["dropped"] == 2000 and ledger["dropped"] > 0


def test_rerun_skips_complete_work_and_force_recomputes(tmp_path):
    src = tmp_path / "in.jsonl"
    write_input(src, 300)

    def pipe(force=False):
        return Pipeline([InputSpec(str(src))], [NormaliseStage(), DropOddStage()],
                        OutputSpec(str(tmp_path / "o.jsonl"), "alpaca"), tmp_path / "run", shard_size=100, force=force)

    pipe().execute()
    marker = tmp_path / "run" / "stages" / "01-normalise" / "000000.done.json"
    first = marker.stat().st_mtime_ns
    pipe().execute()
    assert marker.stat().st_mtime_ns == first  # resumed: nothing recomputed
    pipe(force=True).execute()
    assert marker.stat().st_mtime_ns != first


def test_changed_input_invalidates_the_run(tmp_path):
    src = tmp_path / "in.jsonl"
    write_input(src, 100)
    args = dict(run_dir=tmp_path / "run", shard_size=50)
    Pipeline([InputSpec(str(src))], [], OutputSpec(str(tmp_path / "o.jsonl"), "alpaca"), **args).execute()
    write_input(src, 120)
    s = Pipeline([InputSpec(str(src))], [], OutputSpec(str(tmp_path / "o.jsonl"), "alpaca"), **args).execute()
    assert s["read"] == 120 and s["written"] == 120


def test_ledger_balances_with_merges_and_catches_a_lost_record(tmp_path):
    src = tmp_path / "in.jsonl"
    write_input(src, 101)
    s = Pipeline([InputSpec(str(src))], [MergePairsStage()], OutputSpec(str(tmp_path / "o.jsonl"), "messages"),
                 tmp_path / "run", shard_size=101).execute()
    assert s["ledger_balanced"] and s["merged"] == 100 and s["written"] == 51
    ledger = check_ledger(RunDir(tmp_path / "run"))
    assert ledger["created"] == 50 and ledger["kept"] == 1
    # Tamper: remove one merge event -> the parent vanished and the check must say so.
    events = tmp_path / "run" / "stages" / "01-merge-pairs" / "000000.events.jsonl"
    lines = events.read_text().splitlines()
    events.write_text("\n".join(l for l in lines if '"merged"' not in l or lines.index(l) != 1) + "\n")
    broken = check_ledger(RunDir(tmp_path / "run"))
    assert not broken["balanced"] and any("vanished" in p for p in broken["problems"])


def test_ledger_read_by_worker_processes_equals_the_serial_check(tmp_path):
    """``check_ledger`` with a pool reads the shards' events in the workers: the same balance, counts and
    problems as the serial check, on a healthy run and on one with several kinds of damage."""
    import json as _json

    from purgemix.executors import make_executor

    src = tmp_path / "in.jsonl"
    write_input(src, 101)
    Pipeline([InputSpec(str(src))], [MergePairsStage()], OutputSpec(str(tmp_path / "o.jsonl"), "messages"),
             tmp_path / "run", shard_size=20).execute()
    run = RunDir(tmp_path / "run")
    ex = make_executor("local", 2)
    try:
        assert check_ledger(run, ex) == check_ledger(run) and check_ledger(run)["balanced"]
        events = sorted((tmp_path / "run" / "stages" / "01-merge-pairs").glob("*.events.jsonl"))
        rows = [_json.loads(x) for x in events[1].read_text().splitlines()]
        created = next(e for e in rows if e["outcome"] == "created")
        rows.append({**created, "parents": ["nobody"]})  # created twice, from an unknown parent
        rows.append({"id": rows[0]["id"], "outcome": "teleported"})
        events[1].write_text("".join(_json.dumps(e) + "\n" for e in rows))
        broken = check_ledger(run)
        assert not broken["balanced"] and len(broken["problems"]) >= 3
        assert check_ledger(run, ex) == broken
    finally:
        ex.close()


@pytest.mark.ray
def test_local_and_ray_outputs_are_identical(tmp_path):
    pytest.importorskip("ray")
    src = tmp_path / "in.jsonl"
    write_input(src, 1000)
    outs = {}
    for executor in ("local", "ray"):
        proc = run_script(src, tmp_path / f"{executor}.json", tmp_path / f"run_{executor}", workers=2,
                          executor=executor)
        assert proc.wait(timeout=600) == 0, proc.stderr.read().decode()[-3000:]
        outs[executor] = (tmp_path / f"{executor}.json").read_bytes()
        assert check_ledger(RunDir(tmp_path / f"run_{executor}"))["balanced"]
    assert outs["local"] == outs["ray"] and len(json.loads(outs["local"])) > 0


def test_scores_are_stored_by_column_and_read_back_unchanged(tmp_path):
    """Records (and records inside events) with uniform ``scores`` keys: the values go to a column file,
    the JSON keeps a placeholder in place; reading gives back what a JSON round trip would."""
    import orjson

    from purgemix.core.rundir import StageDir

    def rec(i, **extra):
        scores = {"purge.a": i, "purge.b": i / 3, "purge.c": None if i % 3 else 0.5, "purge.lang": "en",
                  "purge.flag": bool(i % 2), "purge.mixed": i if i % 2 else 0.25, **extra}
        return {"id": f"r{i}", "messages": [{"role": "user", "content": f"q{i}"}], "scores": scores, "lineage": {}}

    records = [rec(i) for i in range(50)]
    records[3]["scores"]["purge.b"] = float("nan")
    records[4]["scores"]["purge.b"] = float("inf")
    records[5]["scores"]["purge.a"] = 2**63 + 5  # beyond int64: kept exactly (as JSON)
    events = [{"id": r["id"], "outcome": "dropped", "reason": "x", "record": r} for r in records[:20:3]]
    events.append({"id": "y", "outcome": "dropped", "reason": "x"})
    d = StageDir(tmp_path / "stage")
    d.path.mkdir()
    d.write_shard(0, records, events, {"in": 50})
    assert (d.path / "000000.scores.bin.zst").exists() and (d.path / "000000.events.scores.bin.zst").exists()
    line = (d.path / "000000.events.jsonl").read_bytes().splitlines()[0]
    assert b'"record":null' in line and b"purge.a" not in line  # the carried records have a file of their own
    assert (d.path / "000000.events.records.jsonl.zst").exists()
    light = d.read_events(0, records=False)
    assert [e["id"] for e in light] == [e["id"] for e in events] and all(e.get("record") is None for e in light)
    assert all(e["record"]["scores"] is None for e in d.read_events(0, scores=False) if e.get("record"))
    roundtrip = [orjson.loads(orjson.dumps(r)) for r in records]
    assert d.read_records(0) == roundtrip
    assert orjson.dumps(d.read_records(0)) == orjson.dumps(roundtrip)  # key order too
    assert d.read_events(0) == [orjson.loads(orjson.dumps(e)) for e in events]
    assert d.read_records(0)[3]["scores"]["purge.b"] is None and d.read_records(0)[4]["scores"]["purge.b"] is None

    # keys that differ between records: stored inline, and no stale column file is left behind
    records[7]["scores"]["purge.extra"] = 1
    d.write_shard(0, records, [], {"in": 50})
    assert not (d.path / "000000.scores.bin.zst").exists()
    assert not (d.path / "000000.events.scores.bin.zst").exists()
    assert not (d.path / "000000.events.records.jsonl.zst").exists()
    assert d.read_records(0) == [orjson.loads(orjson.dumps(r)) for r in records]


def test_score_columns_keep_the_records_sources(tmp_path):
    """The sources of a shard whose scores are stored by column come back without parsing its records, in
    record order; a column file written before sources were kept there falls back to the records."""
    from purgemix.core.rundir import StageDir, _decode_columns, _encode

    d = StageDir(tmp_path / "stage")
    d.path.mkdir()
    sources = ["a"] * 3 + ["b"] * 2 + ["a", ""]
    records = [{"id": f"r{i}", "messages": [], "source": s, "scores": {"purge.x": i}} for i, s in enumerate(sources)]
    d.write_shard(0, records, [], {"in": len(records)})
    cols, got = d.read_columns_and_sources(0)
    assert got == sources and cols["purge.x"].tolist() == list(range(len(records)))
    header, _ = _decode_columns((d.path / "000000.scores.bin.zst").read_bytes())
    assert header["sources"] == [["a", 3], ["b", 2], ["a", 1], ["", 1]]
    # an older column file (no sources in its header)
    (d.path / "000000.scores.bin.zst").write_bytes(_encode(["purge.x"], [list(range(len(records)))], len(records)))
    assert d.read_columns_and_sources(0)[1] == sources


def test_keep_freed_memory_is_idempotent_and_can_be_turned_off(monkeypatch):
    import purgemix.executors.malloc as m

    monkeypatch.setattr(m, "_done", False)
    monkeypatch.setenv("PURGEMIX_MALLOC_DEFAULTS", "1")
    assert m.keep_freed_memory() is False
    monkeypatch.delenv("PURGEMIX_MALLOC_DEFAULTS")
    first = m.keep_freed_memory()  # True on glibc, False where mallopt is missing
    assert m.keep_freed_memory() is first


def test_a_global_stage_report_outlives_its_process(tmp_path):
    """What a global stage learnt (its ``report()``) is kept in the manifest with the stage, so a run
    resumed after that stage still has it (the run report and the run's summary read it there)."""
    from purgemix.core.stage import GlobalStage, Result

    class CountingStage(GlobalStage):
        name = "counting"
        version = "1"

        section = "counting"

        def __init__(self):
            self.seen = None

        def report(self):
            return {} if self.seen is None else {"seen": self.seen}

        def run(self, batches):
            records = [r for b in batches for r in b]
            self.seen = len(records)
            yield Result(records=records)

    src = tmp_path / "in.jsonl"
    write_input(src, 30)

    def pipe():
        return Pipeline([InputSpec(str(src))], [CountingStage()], OutputSpec(str(tmp_path / "o.jsonl"), "alpaca"),
                        tmp_path / "run", shard_size=10)

    assert pipe().execute()["reports"] == {"counting": {"seen": 30}}
    again = pipe()
    summary = again.execute()  # resumed: the stage does not run again
    assert again.stages[0].report() == {}
    stored = RunDir(tmp_path / "run").manifest()["stages"]["counting"]
    assert stored["report"] == {"seen": 30} and stored["section"] == "counting"
    assert summary["reports"] == {"counting": {"seen": 30}}


def test_unordered_map_shards_keeps_workers_busy_behind_a_slow_shard():
    from _stages import sleep_then_return

    from purgemix.executors import make_executor

    ex = make_executor("local", 2)
    try:
        args = [((0, 3.0), {})] + [((i, 0.01), {}) for i in range(1, 12)]
        t0 = time.perf_counter()
        got = list(ex.map_shards(sleep_then_return, args, ordered=False))
        assert sorted(got) == list(range(12))
        # the other worker runs all eleven short tasks while the first one sleeps: they come back first
        assert got[-1] == 0 and time.perf_counter() - t0 < 60
        assert list(ex.map_shards(sleep_then_return, [((i, 0.0), {}) for i in range(5)])) == list(range(5))
    finally:
        ex.close()


def test_export_in_parts_of_shards_writes_the_same_output(tmp_path, monkeypatch):
    """Large shards are exported in parts (``EXPORT_PART`` records each, possibly by different workers):
    the output and the ledger are the same as exporting whole shards; ``read_records(rows=...)`` gives the
    same records as slicing the whole shard, scores by column and renamed ids included."""
    import purgemix.core.shard_tasks as shard_tasks
    from purgemix.recipe.verbs import run_purge

    src = tmp_path / "in.jsonl"
    rows = [{"instruction": f"Question number {i % 40}", "input": "", "output": f"Answer {i} is a sentence of words."}
            for i in range(90)]
    rows += rows[2:50:3]  # exact copies: the same content ids, renamed by the ingest
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    outs = []
    for part in (10_000, 7):
        monkeypatch.setattr(shard_tasks, "EXPORT_PART", part)
        d = tmp_path / f"p{part}"
        summary = run_purge([InputSpec(str(src))], str(d / "k.jsonl"), run_dir=d / "run", shard_size=40, workers=2)
        assert summary["ledger_balanced"]
        outs.append((d / "k.jsonl").read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") > 14
    run = RunDir(tmp_path / "p7" / "run")
    assert any(json.loads(p.read_text()) for p in run.stage_dirs()[0].path.glob("*.renames.json"))
    for stage in run.stage_dirs()[:-1]:
        for i in range(stage.info()["shards"]):
            whole = stage.read_records(i)
            assert stage.read_records(i, rows=slice(3, 11)) == whole[3:11]
            assert stage.read_records(i, rows=slice(5, None), scores=False) == stage.read_records(i, scores=False)[5:]


def test_a_warm_pool_is_taken_by_the_next_executor_of_its_size():
    """``warm_up`` (called by the commands before they import their stages) starts the workers early; the next
    local executor with that many workers takes that pool instead of starting its own."""
    from purgemix.executors import local

    local.warm_up(2)
    pool = local._WARM[2]
    local.warm_up(2)  # a second call starts nothing more
    assert local._WARM[2] is pool
    ex = local.LocalExecutor(2)
    try:
        assert ex._get_pool() is pool and 2 not in local._WARM
        assert list(ex.map_shards(pow, [((2, k), {}) for k in range(5)])) == [1, 2, 4, 8, 16]
    finally:
        ex.close()
    local.warm_up(1)  # one worker runs in-process: no pool
    assert 1 not in local._WARM
