"""A dummy OpenAI-compatible server on 127.0.0.1 for tests and benchmarks.

Raw HTTP/1.1 over asyncio streams (so it can misbehave at the byte level), in a background thread::

    with DummyServer(failure_rate=0.2, kinds=FAULT_KINDS) as srv:
        llm = OpenAIHTTP(srv.url, "dummy")

Faults are chosen deterministically from (request content, attempt number): a retried request
meets a fresh draw, so every request can eventually succeed. Kinds:

``slow``       answer after ``slow_seconds`` (longer than a client timeout -> the client times out)
``429``        status 429 with ``Retry-After: retry_after``
``500``        status 500
``malformed``  status 200 with a body that is not JSON
``truncated``  status 200, ``Content-Length`` larger than the body, connection closed
``drop``       connection closed without any answer

Endpoints: ``POST /v1/chat/completions`` (answer = ``responder(messages, i)``, default an echo of the
last user turn, ``n`` choices) and ``POST /v1/embeddings`` (hashed-word vectors).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from typing import Any, Callable

import orjson

FAULT_KINDS = ("slow", "429", "500", "malformed", "truncated", "drop")
# faults a test asks for by name: a 200 whose "choices" is empty, and a 401 that echoes the Authorization
# header in its body (as some proxies do: the key must never reach a record, a log or a report)
EXTRA_FAULTS = ("empty", "401-echo")


def _echo(messages: list[dict[str, Any]], i: int) -> str:
    user = [m["content"] for m in messages if m.get("role") == "user"]
    return f"echo: {user[-1] if user else ''}" + (f" #{i}" if i else "")


class DummyServer:
    def __init__(self, *, failure_rate: float = 0.0, kinds: tuple[str, ...] = FAULT_KINDS, delay: float = 0.0,
                 slow_seconds: float = 2.0, retry_after: str = "0", responder: Callable | None = None,
                 seed: int = 0, port: int = 0, reject_fields: tuple[str, ...] = ()):
        self.failure_rate = failure_rate
        self.reject_fields = tuple(reject_fields)  # request fields answered with 400 (a server without that feature)
        self.kinds = tuple(kinds)
        self.delay = delay
        self.slow_seconds = slow_seconds
        self.retry_after = retry_after
        self.responder = responder or _echo
        self.seed = seed
        self.port = port
        self.host = "127.0.0.1"
        self.attempts: Counter = Counter()  # content key -> attempts seen
        self.faults: Counter = Counter()  # kind -> injected
        self.answered: Counter = Counter()  # content key -> successful answers
        self.inflight = 0
        self.max_inflight = 0
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._server = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "DummyServer":
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, self.host, self.port))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        self._loop.run_until_complete(self._server.wait_closed())
        self._loop.close()

    def stop(self) -> None:
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> "DummyServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- behaviour -----------------------------------------------------------------------------

    def fault_for(self, key: str, attempt: int) -> str | None:
        if not self.failure_rate or not self.kinds:
            return None
        h = int.from_bytes(hashlib.blake2b(f"{self.seed}:{key}:{attempt}".encode(), digest_size=8).digest(), "little")
        if (h % 10_000) / 10_000 >= self.failure_rate:
            return None
        return self.kinds[(h >> 20) % len(self.kinds)]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                keep = await self._respond(method, path, body, writer, headers)
                if not keep:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass

    async def _respond(self, method: str, path: str, body: bytes, writer: asyncio.StreamWriter,
                       headers: dict[str, str] | None = None) -> bool:
        self.requests += 1
        self.inflight += 1
        self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            try:
                req = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                return self._send(writer, 400, b'{"error": "bad json"}')
            if any(f in req for f in self.reject_fields):
                return self._send(writer, 400, b'{"error": "unsupported parameter"}')
            key = hashlib.blake2b(orjson.dumps(req.get("messages") or req.get("input"), option=orjson.OPT_SORT_KEYS),
                                  digest_size=8).hexdigest()
            self.attempts[key] += 1
            fault = self.fault_for(key, self.attempts[key])
            if self.delay:
                await asyncio.sleep(self.delay)
            if fault:
                self.faults[fault] += 1
            if fault == "slow":
                await asyncio.sleep(self.slow_seconds)
                fault = None  # a slow answer is still an answer (if the client waited)
            if fault == "429":
                return self._send(writer, 429, b'{"error": "rate limited"}', {"Retry-After": self.retry_after})
            if fault == "500":
                return self._send(writer, 500, b'{"error": "internal"}')
            if fault == "drop":
                return False
            if fault == "401-echo":
                auth = (headers or {}).get("authorization", "")
                return self._send(writer, 401, orjson.dumps({"error": f"invalid credentials: {auth}"}))
            if fault == "empty":
                return self._send(writer, 200, b'{"id": "dummy", "choices": [], "usage": {}}')
            if not path.startswith("/v1/"):
                return self._send(writer, 404, b'{"error": "not found"}')
            if path.rstrip("/").endswith("/embeddings"):
                payload = self._embeddings(req)
            elif path.rstrip("/").endswith("/chat/completions"):
                payload = self._chat(req)
            else:
                return self._send(writer, 404, b'{"error": "not found"}')
            if fault == "malformed":
                return self._send(writer, 200, b'{"choices": [{"message": ')
            if fault == "truncated":
                head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload) + 50}"
                        "\r\nConnection: close\r\n\r\n").encode()
                writer.write(head + payload[: len(payload) // 2])
                await writer.drain()
                return False
            self.answered[key] += 1
            return self._send(writer, 200, payload)
        finally:
            self.inflight -= 1

    def _send(self, writer, status: int, payload: bytes, extra: dict[str, str] | None = None) -> bool:
        reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error"}.get(status, "")
        head = f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        for k, v in (extra or {}).items():
            head += f"{k}: {v}\r\n"
        writer.write((head + "\r\n").encode() + payload)
        return True

    def _chat(self, req: dict[str, Any]) -> bytes:
        messages = req.get("messages") or []
        n = int(req.get("n") or 1)
        texts = [self.responder(messages, i) for i in range(n)]
        p_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        c_tokens = sum(len(t.split()) for t in texts)
        return orjson.dumps({
            "id": "dummy", "object": "chat.completion", "model": req.get("model", "dummy"),
            "choices": [{"index": i, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
                        for i, t in enumerate(texts)],
            "usage": {"prompt_tokens": p_tokens, "completion_tokens": c_tokens, "total_tokens": p_tokens + c_tokens},
        })

    def _embeddings(self, req: dict[str, Any]) -> bytes:
        from ..models.fake import FakeEmbedder

        inp = req.get("input") or []
        if isinstance(inp, str):
            inp = [inp]
        vecs = FakeEmbedder(dim=int(req.get("dimensions") or 32)).embed(inp)
        return orjson.dumps({"object": "list", "data": [{"index": i, "embedding": v.tolist(), "object": "embedding"}
                                                        for i, v in enumerate(vecs)],
                             "model": req.get("model", "dummy")})
