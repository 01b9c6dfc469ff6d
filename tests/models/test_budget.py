"""A spending cap stops a run cleanly at the cap, and the rerun with a larger cap pays for no request twice."""

import json

import pytest
from _run_pool import FAKES, write_pool
from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.models import FakeLLM, GenerationParams
from purgemix.models.budget import Budget, BudgetedLLM, BudgetExceeded
from purgemix.models.cache import CachedLLM, SQLiteStore

runner = CliRunner()


def _convs(n):
    return [[{"role": "user", "content": f"question number {i} with five words"}] for i in range(n)]


def test_budget_stops_between_chunks_and_cached_answers_are_free(tmp_path):
    fake = FakeLLM()
    budget = Budget(max_tokens_total=30)
    llm = CachedLLM(BudgetedLLM(fake, budget, chunk=2), SQLiteStore(tmp_path / "c.sqlite"))
    with pytest.raises(BudgetExceeded, match="token cap reached.*rerun with a larger cap"):
        llm.generate(_convs(10), GenerationParams())
    sent_first = fake.calls
    assert 0 < sent_first < 10 and budget.tokens >= 30  # stopped at the cap, overshooting by under one chunk
    assert budget.tokens - 30 < 2 * 16
    # a larger cap: the answered requests come from the cache, only the rest is sent
    llm.inner.budget = bigger = Budget(max_tokens_total=10_000)
    gens = llm.generate(_convs(10), GenerationParams())
    assert all(g.ok for g in gens) and fake.calls == 10  # every request sent exactly once over both runs
    assert bigger.tokens < 10 * 16


def test_a_cost_cap_needs_a_price():
    with pytest.raises(ValueError, match="needs a price"):
        Budget(max_cost=1.0)
    b = Budget(max_cost=0.01, price_in=1.0, price_out=2.0)
    b.tokens_in, b.tokens_out = 4000, 3000
    assert b.cost == pytest.approx(0.01) and "cost cap reached" in b.exhausted()


def test_run_stops_at_the_cap_with_a_clear_message_and_the_rerun_continues(tmp_path, monkeypatch):
    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pool.jsonl"
    write_pool(data, 80, truncate_every=0)
    base = ["run", "quick", str(data), *FAKES, "mix.budget=12", "-o", str(tmp_path / "o.jsonl"),
            "--run-dir", str(tmp_path / "run"), "--json"]
    res = runner.invoke(app, base + ["mix.max_tokens_total=50"])
    assert res.exit_code == 6, res.output
    assert "stopped: token cap reached" in res.output and "rerun with a larger cap" in res.output
    assert not (tmp_path / "o.jsonl").exists()
    res = runner.invoke(app, base + ["mix.max_tokens_total=1000000"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    usage = summary["reports"]["fuse"]["usage"]
    assert usage["cache_hits"] > 0  # what the first run paid for was not asked again
