"""`purgemix run --estimate`: a probe of the fuse step's own groups, extrapolated; the real run reuses the probe."""

import json

from _run_pool import FAKES, write_pool
from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.mix.estimate import probe_size
from purgemix.models import FakeLLM
from purgemix.models.base import parallel_width
from purgemix.models.budget import Budget, BudgetedLLM
from purgemix.models.cache import CachedLLM
from purgemix.models.openai_http import OpenAIHTTP

runner = CliRunner()


def test_probe_size_fills_the_slots_on_large_steps_and_halves_small_ones():
    assert probe_size(0, 8) == 0 and probe_size(1, 8) == 1 and probe_size(8, 8) == 4
    assert probe_size(200, 8) == 8 and probe_size(10_000, 8) == 8 and probe_size(200, 1) == 4


def test_parallel_width_is_declared_by_the_backend_and_passes_through_the_wrappers():
    class Slots(FakeLLM):
        parallel_width = 6

    assert parallel_width(CachedLLM(Slots())) == 6 and parallel_width(CachedLLM(FakeLLM())) == 1
    http = OpenAIHTTP("http://127.0.0.1:9/v1", model="m", concurrency=12)
    assert parallel_width(BudgetedLLM(CachedLLM(http), Budget(max_tokens_total=10))) == 12
    assert BudgetedLLM(http, Budget(max_tokens_total=10)).chunk == 12 and BudgetedLLM(FakeLLM(), Budget()).chunk == 8


def test_estimate_then_run_matches_and_pays_for_the_probe_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pool.jsonl"
    write_pool(data, 120, truncate_every=0)
    base = ["run", "quick", str(data), *FAKES, "mix.budget=20", "models.price_in=1", "models.price_out=2",
            "-o", str(tmp_path / "o.jsonl"), "--run-dir", str(tmp_path / "run"), "--json"]
    res = runner.invoke(app, base + ["--estimate"])
    assert res.exit_code == 0, res.output
    est = json.loads(res.stdout.strip().splitlines()[-1])["estimate"]
    assert "estimate for fuse on fake:mix" in res.output and not (tmp_path / "o.jsonl").exists()
    assert est["groups"] > 0 and 0 < est["probe_groups"] < est["groups"] and est["requests"] > 0
    assert est["cost"] and est["cost"] > 0
    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    fuse = json.loads(res.stdout.strip().splitlines()[-1])["reports"]["fuse"]
    used = fuse["usage"]
    # every answer of the probe came from the cache in the real run
    assert used["cache_hits"] >= est["probe"]["requests"]
    # the fake answers every group alike, so the extrapolation is close (a real model varies more)
    tokens = used["tokens_in"] + used["tokens_out"]  # of the requests this run sent (the rest were the probe's)
    assert abs(est["requests"] - used["requests"]) <= 0.3 * used["requests"]
    assert tokens > 0 and fuse["estimate"]["groups"] == est["groups"]
