"""OpenAI-compatible HTTP backend (vLLM, SGLang, llama.cpp server, Ollama, hosted APIs).

Async (httpx), bounded concurrency, retries with exponential backoff and full jitter on 429, 5xx,
timeouts, connection errors and unreadable bodies, honouring ``Retry-After``; requests-per-minute
and tokens-per-minute limits (token buckets). The API key comes from an environment variable and
never appears in logs, errors, cache keys or ``repr``. A request that still fails is returned as a
``Generation`` with ``error`` set: one record's failure never loses the batch.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import random
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

from ..core.secrets import redact
from .base import Generation, GenerationParams, Messages, UsageStats

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524}


@dataclass
class RetryPolicy:
    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return rng.uniform(0, min(self.max_delay, self.base_delay * 2 ** (attempt - 1)))  # full jitter


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class RateLimiter:
    """Token bucket: ``per_minute`` units, refilled continuously; ``None`` means unlimited."""

    def __init__(self, per_minute: float | None):
        self.capacity = float(per_minute) if per_minute else None
        self.tokens = self.capacity or 0.0
        self.updated = time.monotonic()
        self.lock: asyncio.Lock | None = None

    async def acquire(self, amount: float = 1.0) -> None:
        if not self.capacity:
            return
        if self.lock is None:
            self.lock = asyncio.Lock()
        amount = min(amount, self.capacity)
        async with self.lock:
            while True:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.capacity / 60.0)
                self.updated = now
                if self.tokens >= amount:
                    self.tokens -= amount
                    return
                await asyncio.sleep((amount - self.tokens) * 60.0 / self.capacity)


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OpenAIHTTP:
    """``LLM`` over ``POST {base_url}/chat/completions``.

    ``api_key_env`` names the environment variable holding the key (default ``OPENAI_API_KEY``;
    none needed for local servers)."""

    def __init__(self, base_url: str, model: str = "default", *, api_key_env: str = "OPENAI_API_KEY",
                 concurrency: int = 16, timeout: float = 120.0, retry: RetryPolicy | None = None,
                 requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 native_n: bool = True, extra_body: dict[str, Any] | None = None, seed: int = 0,
                 grammar_field: str | None = None):
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.name = f"openai:{redact(self.base_url)}#{model}"  # names go into manifests and reports
        self.api_key_env = api_key_env
        self.concurrency = max(1, int(concurrency))
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.rpm = requests_per_minute
        self.tpm = tokens_per_minute
        self.native_n = native_n
        self.extra_body = extra_body or {}
        # the request field a GBNF grammar goes in: "grammar" for llama.cpp's server, "guided_grammar" for
        # vLLM; None (the OpenAI API has no such field) sends none
        self.grammar_field = grammar_field
        # a server that answered 400 to a JSON schema: later requests go without it (the parsers are tolerant)
        self.schema_unsupported = False
        self.stats = UsageStats()
        self.attempts = 0  # every HTTP attempt, for tests and reports
        self._rng = random.Random(seed)
        # buckets live across calls (their asyncio locks are re-created for each event loop)
        self._rpm, self._tpm = RateLimiter(requests_per_minute), RateLimiter(tokens_per_minute)

    @property
    def parallel_width(self) -> int:  # requests in flight at once
        return self.concurrency

    def __repr__(self) -> str:  # never the key
        return f"OpenAIHTTP({self.base_url!r}, model={self.model!r}, concurrency={self.concurrency})"

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            h["Authorization"] = f"Bearer {key}"
        return h

    def _body(self, conv: Messages, params: GenerationParams, n: int) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": [{"role": m["role"], "content": m["content"]}
                                                                  for m in conv],
                                "temperature": params.temperature, "top_p": params.top_p,
                                "max_tokens": params.max_tokens}
        if n != 1:
            body["n"] = n
        if params.stop:
            body["stop"] = list(params.stop)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.grammar and self.grammar_field:
            body[self.grammar_field] = params.grammar
        if params.json_schema and not self.schema_unsupported:
            body["response_format"] = {"type": "json_schema",
                                       "json_schema": {"name": "output", "schema": json.loads(params.json_schema)}}
        body.update(self.extra_body)
        return body

    # -- public, synchronous -------------------------------------------------------------------

    def generate(self, conversations: Sequence[Messages], params: GenerationParams,
                 on_result: Callable[[int, Generation], None] | None = None) -> list[Generation]:
        coro = self.agenerate(conversations, params, on_result)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        box: dict[str, Any] = {}  # called from inside an event loop: run in a helper thread
        t = threading.Thread(target=lambda: box.setdefault("r", asyncio.run(coro)))
        t.start()
        t.join()
        return box["r"]

    # -- async ---------------------------------------------------------------------------------

    async def agenerate(self, conversations: Sequence[Messages], params: GenerationParams,
                        on_result: Callable[[int, Generation], None] | None = None) -> list[Generation]:
        import httpx

        sem = asyncio.Semaphore(self.concurrency)
        rpm, tpm = self._rpm, self._tpm
        rpm.lock = tpm.lock = None
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        out: list[Generation | None] = [None] * len(conversations)
        async with httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), limits=limits,
                                     headers=self._headers()) as client:

            async def one(i: int, conv: Messages) -> None:
                t0 = time.perf_counter()
                try:
                    if self.native_n or params.n == 1:
                        g = await self._request(client, sem, rpm, tpm, conv, params, params.n)
                    else:
                        # one request per sample, each with its own seed (the same seed gives the same sample)
                        parts = await asyncio.gather(*[
                            self._request(client, sem, rpm, tpm, conv,
                                          params if params.seed is None else replace(params, seed=params.seed + k), 1)
                            for k in range(params.n)])
                        g = _join(parts)
                except Exception as e:  # never lose a record
                    g = Generation(error=f"{type(e).__name__}: {e}")
                if g.error:  # an error text is stored in the run's events: never with a credential in it
                    g.error = redact(g.error)
                g.seconds = time.perf_counter() - t0
                out[i] = g
                self.stats.requests += 1
                self.stats.tokens_in += g.tokens_in
                self.stats.tokens_out += g.tokens_out
                self.stats.errors += g.error is not None
                if on_result:
                    on_result(i, g)

            await asyncio.gather(*[one(i, c) for i, c in enumerate(conversations)])
        return out  # type: ignore[return-value]

    async def _request(self, client, sem, rpm: RateLimiter, tpm: RateLimiter, conv: Messages,
                       params: GenerationParams, n: int) -> Generation:
        import httpx

        body = self._body(conv, params, n)
        est_tokens = sum(len(m["content"]) for m in conv) / 4 + params.max_tokens * n
        url = self.base_url + "/chat/completions"
        last = "no attempt"
        for attempt in range(1, self.retry.max_attempts + 1):
            retry_after = None
            await rpm.acquire(1)
            await tpm.acquire(est_tokens)
            try:
                async with sem:
                    self.attempts += 1
                    resp = await client.post(url, json=body)
                    content = resp.content
                if resp.status_code in RETRY_STATUS:
                    raise _Retryable(f"HTTP {resp.status_code}", parse_retry_after(resp.headers.get("retry-after")))
                if resp.status_code == 400 and "response_format" in body and "response_format" not in self.extra_body:
                    # not every OpenAI-compatible server takes a JSON schema: ask again without it, once
                    self.schema_unsupported = True
                    body = {k: v for k, v in body.items() if k != "response_format"}
                    last = "HTTP 400 with a JSON schema"
                    continue
                if resp.status_code >= 400:
                    return Generation(error=f"HTTP {resp.status_code}: {_snippet(content)}")
                try:
                    data = resp.json()
                    choices = data["choices"]
                    texts = [c["message"]["content"] or "" for c in choices]
                except Exception as e:
                    raise _Retryable(f"unreadable response body ({type(e).__name__})") from None
                if len(texts) < n:  # a 200 with no (or too few) choices is not an answer
                    raise _Retryable(f"response has {len(texts)} choice(s), asked for {n}")
                usage = data.get("usage") or {}
                return Generation(texts=texts, finish_reasons=[c.get("finish_reason") or "" for c in choices],
                                  tokens_in=int(usage.get("prompt_tokens") or 0),
                                  tokens_out=int(usage.get("completion_tokens") or 0))
            except _Retryable as e:
                last, retry_after = str(e), e.retry_after
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{type(e).__name__}"
            if attempt < self.retry.max_attempts:
                await asyncio.sleep(self.retry.delay(attempt, retry_after, self._rng))
        return Generation(error=f"{last} after {self.retry.max_attempts} attempts")


def _join(parts: list[Generation]) -> Generation:
    errs = [p.error for p in parts if p.error]
    if errs:
        return Generation(error=errs[0])
    return Generation(texts=[t for p in parts for t in p.texts],
                      finish_reasons=[f for p in parts for f in p.finish_reasons],
                      tokens_in=parts[0].tokens_in if parts else 0, tokens_out=sum(p.tokens_out for p in parts))


def _snippet(content: bytes, n: int = 200) -> str:
    """The start of an error body, credentials masked (a server may echo the Authorization header)."""
    return redact(content[:n].decode("utf-8", "replace").replace("\n", " "))
