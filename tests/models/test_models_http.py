"""The OpenAI-compatible backend against the dummy server: faults, retries, limits, cache."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("httpx")

from purgemix.models.base import GenerationParams
from purgemix.models.cache import CachedLLM, SQLiteStore
from purgemix.models.openai_http import OpenAIHTTP, RetryPolicy, parse_retry_after
from purgemix.testing.dummy_server import FAULT_KINDS, DummyServer

FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05)


def convs(n, tag="q"):
    return [[{"role": "user", "content": f"{tag} {i}"}] for i in range(n)]


def test_fault_injection_1000_requests_nothing_lost_no_duplicates(tmp_path):
    with DummyServer(failure_rate=0.2, kinds=FAULT_KINDS, slow_seconds=1.0, retry_after="0") as srv:
        llm = OpenAIHTTP(srv.url, "dummy", concurrency=32, timeout=0.5, retry=FAST)
        out = llm.generate(convs(1000), GenerationParams(max_tokens=8))
        assert len(out) == 1000
        answered = [g for g in out if g.ok]
        reported = [g for g in out if g.error]
        assert len(answered) + len(reported) == 1000
        for i, g in enumerate(out):
            if g.ok:
                assert g.texts == [f"echo: q {i}"]  # each answer belongs to its own request
        assert set(srv.faults) == set(FAULT_KINDS)  # every kind was injected
        assert sum(srv.faults.values()) >= 150
        # retries are bounded: no request was tried more than max_attempts times
        assert max(srv.attempts.values()) <= FAST.max_attempts
        assert llm.attempts <= 1000 * FAST.max_attempts
        assert len(answered) >= 990


def test_cached_run_has_no_duplicates_and_resends_only_missing(tmp_path):
    store = SQLiteStore(tmp_path / "c.sqlite")
    with DummyServer(failure_rate=0.2, kinds=("500", "drop", "malformed"), seed=3) as srv:
        flaky = CachedLLM(OpenAIHTTP(srv.url, "dummy", concurrency=8, retry=RetryPolicy(max_attempts=1)), store)
        first = flaky.generate(convs(200), GenerationParams())
        failed = [i for i, g in enumerate(first) if not g.ok]
        assert failed and all(first[i].error for i in failed)  # errors reported per record
        assert store.count("gen") == 200 - len(failed)
    with DummyServer() as srv2:
        again = CachedLLM(OpenAIHTTP(srv2.url, "dummy"), store)
        again.name = flaky.name  # same backend identity, different port
        second = again.generate(convs(200), GenerationParams())
        assert all(g.ok for g in second)
        assert srv2.requests == len(failed)  # only what had no answer is sent again
        assert again.stats.cache_hits == 200 - len(failed)
        assert [g.texts for g in second] == [[f"echo: q {i}"] for i in range(200)]


def test_concurrency_limit_respected():
    with DummyServer(delay=0.02) as srv:
        llm = OpenAIHTTP(srv.url, "dummy", concurrency=5)
        out = llm.generate(convs(60), GenerationParams())
        assert all(g.ok for g in out)
        assert srv.max_inflight <= 5


def test_429_retry_after_honoured_and_bounded():
    with DummyServer(failure_rate=1.0, kinds=("429",), retry_after="0") as srv:
        llm = OpenAIHTTP(srv.url, "dummy", retry=RetryPolicy(max_attempts=3, base_delay=10))  # base ignored
        out = llm.generate(convs(4), GenerationParams())
        assert all(g.error and "429" in g.error and "3 attempts" in g.error for g in out)
        assert max(srv.attempts.values()) == 3


def test_non_retryable_status_is_reported_once():
    with DummyServer() as srv:
        llm = OpenAIHTTP(srv.url.replace("/v1", "/nope"), "dummy", retry=FAST)
        out = llm.generate(convs(3), GenerationParams())
        assert all(g.error and g.error.startswith("HTTP 404") for g in out)
        assert srv.requests == 3


def test_n_samples_native_and_fanned_out():
    with DummyServer() as srv:
        for native in (True, False):
            out = OpenAIHTTP(srv.url, "d", native_n=native).generate(convs(3), GenerationParams(n=3))
            assert all(len(g.texts) == 3 for g in out)


def test_retry_delays():
    p = RetryPolicy(base_delay=1.0, max_delay=8.0, max_retry_after=5.0)
    rng = random.Random(0)
    assert all(0 <= p.delay(a, None, rng) <= min(8.0, 2 ** (a - 1)) for a in range(1, 10) for _ in range(20))
    assert p.delay(1, 3.0, rng) == 3.0
    assert p.delay(1, 100.0, rng) == 5.0
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None


def test_api_key_from_env_never_in_repr_or_errors(monkeypatch):
    monkeypatch.setenv("PM_TEST_KEY", "sk-secret-123")
    with DummyServer(failure_rate=1.0, kinds=("500",)) as srv:
        llm = OpenAIHTTP(srv.url, "dummy", api_key_env="PM_TEST_KEY", retry=RetryPolicy(max_attempts=1))
        assert llm._headers()["Authorization"] == "Bearer sk-secret-123"
        out = llm.generate(convs(2), GenerationParams())
        text = repr(llm) + llm.name + " ".join(g.error for g in out)
        assert "sk-secret" not in text


def test_sigkill_then_rerun_resends_only_unanswered(tmp_path):
    import sqlite3
    import subprocess
    import sys
    import time

    db = tmp_path / "c.sqlite"
    with DummyServer(delay=0.05) as srv:
        code = (
            "from purgemix.models import load_llm, GenerationParams\n"
            f"llm = load_llm('openai:{srv.url}#d', cache_path={str(db)!r}, concurrency=2)\n"
            "llm.generate([[{'role': 'user', 'content': f'q {i}'}] for i in range(200)], GenerationParams())\n"
        )
        proc = subprocess.Popen([sys.executable, "-c", code])
        done = 0
        for _ in range(600):
            time.sleep(0.05)
            if db.exists():
                try:
                    done = sqlite3.connect(db).execute("SELECT COUNT(*) FROM kv").fetchone()[0]
                except sqlite3.OperationalError:
                    done = 0
            if done >= 20:
                break
        proc.kill()  # SIGKILL: no cleanup, no flush
        proc.wait()
        cached = sqlite3.connect(db).execute("SELECT COUNT(*) FROM kv").fetchone()[0]
        assert 20 <= cached < 200
        before = srv.requests
        from purgemix.models import load_llm

        llm = load_llm(f"openai:{srv.url}#d", cache_path=str(db), concurrency=8)
        out = llm.generate(convs(200), GenerationParams())
        assert [g.texts for g in out] == [[f"echo: q {i}"] for i in range(200)]
        assert srv.requests - before == 200 - cached  # only what had no answer
        assert llm.stats.cache_hits == cached


def test_rate_limiter_spaces_requests():
    import asyncio
    import time

    from purgemix.models.openai_http import RateLimiter

    async def run():
        lim = RateLimiter(600)  # 10 per second, bucket of 600: the first 600 pass at once
        t0 = time.monotonic()
        for _ in range(600):
            await lim.acquire(1)
        burst = time.monotonic() - t0
        await lim.acquire(3)  # empty bucket: must wait for refill
        return burst, lim.tokens

    burst, left = asyncio.run(run())
    assert left >= 0  # never overdrawn
    assert RateLimiter(None).capacity is None


def test_a_200_with_no_choices_is_retried_and_never_cached_as_an_answer(tmp_path):
    store = SQLiteStore(tmp_path / "c.sqlite")
    with DummyServer(failure_rate=1.0, kinds=("empty",)) as srv:
        llm = CachedLLM(OpenAIHTTP(srv.url, "dummy", retry=RetryPolicy(max_attempts=2, base_delay=0.01)), store)
        out = llm.generate(convs(3), GenerationParams())
        assert all(not g.ok and "0 choice(s)" in g.error for g in out)
        assert max(srv.attempts.values()) == 2  # retried like any unreadable answer
        assert store.count("gen") == 0  # nothing cached: the next run asks again
    with DummyServer() as srv2:
        again = CachedLLM(OpenAIHTTP(srv2.url, "dummy"), store)
        again.name = llm.name
        assert all(g.ok for g in again.generate(convs(3), GenerationParams())) and srv2.requests == 3


def test_an_answer_without_text_stored_by_an_older_version_is_asked_again(tmp_path):
    from purgemix.models import FakeLLM
    from purgemix.models.base import Generation
    from purgemix.models.cache import _encode, request_key

    store = SQLiteStore(tmp_path / "c.sqlite")
    inner = FakeLLM(lambda conv, i: "fresh")
    llm = CachedLLM(inner, store)
    params = GenerationParams()
    store.put_many("gen", [(request_key(llm.name, params.as_dict(), convs(1)[0]), _encode(Generation(texts=[])))])
    assert llm.generate(convs(1), params)[0].texts == ["fresh"]


def test_json_schema_and_grammar_are_sent_and_a_server_without_schemas_is_asked_again_without():
    schema = '{"type": "object", "properties": {"errors": {"type": "array"}}}'
    llm = OpenAIHTTP("http://127.0.0.1:1/v1", "d", grammar_field="grammar")
    body = llm._body(convs(1)[0], GenerationParams(json_schema=schema, grammar='root ::= "ok"'), 1)
    assert body["grammar"] == 'root ::= "ok"' and body["response_format"]["json_schema"]["schema"]["type"] == "object"
    assert "grammar" not in OpenAIHTTP("http://127.0.0.1:1/v1", "d")._body(convs(1)[0], GenerationParams(grammar="g"), 1)
    with DummyServer(reject_fields=("response_format",)) as srv:
        llm = OpenAIHTTP(srv.url, "d", retry=FAST)
        out = llm.generate(convs(3), GenerationParams(json_schema=schema))
        assert all(g.ok for g in out) and llm.schema_unsupported
        out = llm.generate(convs(2), GenerationParams(json_schema=schema))
        assert all(g.ok for g in out)
        assert srv.requests <= 3 * 2 + 2  # each of the first 3 at most once again; later ones go without at once
