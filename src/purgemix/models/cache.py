"""A request cache in SQLite (WAL mode), and an ``LLM`` wrapper that uses it.

Key = BLAKE2b of ``(backend name, parameters, messages)``. Answers are committed as soon as they
arrive, so a run killed with SIGKILL and started again re-sends only what had no answer. Errors are
never cached (a re-run retries them).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import orjson

from .base import LLM, Generation, GenerationParams, Messages, UsageStats


def cache_dir() -> Path:
    """``$PURGEMIX_CACHE`` or ``~/.cache/purgemix``."""
    root = os.environ.get("PURGEMIX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "purgemix")
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def request_key(backend: str, params: dict[str, Any], messages: Messages) -> str:
    payload = orjson.dumps({"b": backend, "p": params, "m": [[m["role"], m["content"]] for m in messages]},
                           option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


class SQLiteStore:
    """A key -> JSON value table per namespace; safe across threads and processes (WAL)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else cache_dir() / "requests.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._conn() as c:
            c.execute("CREATE TABLE IF NOT EXISTS kv (ns TEXT, key TEXT, value BLOB, created REAL,"
                      " PRIMARY KEY (ns, key))")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def get_many(self, ns: str, keys: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        conn = self._conn()
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), 500):
            chunk = uniq[i:i + 500]
            q = f"SELECT key, value FROM kv WHERE ns=? AND key IN ({','.join('?' * len(chunk))})"
            for k, v in conn.execute(q, [ns, *chunk]):
                out[k] = v
        return out

    def put_many(self, ns: str, items: Sequence[tuple[str, bytes]]) -> None:
        if not items:
            return
        conn = self._conn()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany("INSERT OR REPLACE INTO kv (ns, key, value, created) VALUES (?, ?, ?, ?)",
                             [(ns, k, v, now) for k, v in items])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def count(self, ns: str | None = None) -> int:
        conn = self._conn()
        if ns is None:
            return conn.execute("SELECT COUNT(*) FROM kv").fetchone()[0]
        return conn.execute("SELECT COUNT(*) FROM kv WHERE ns=?", (ns,)).fetchone()[0]


def _encode(g: Generation) -> bytes:
    return orjson.dumps({"texts": g.texts, "finish_reasons": g.finish_reasons, "tokens_in": g.tokens_in,
                         "tokens_out": g.tokens_out, "seconds": g.seconds})


def _decode(b: bytes) -> Generation:
    d = orjson.loads(b)
    return Generation(texts=d["texts"], finish_reasons=d["finish_reasons"], tokens_in=d["tokens_in"],
                      tokens_out=d["tokens_out"], cached=True, seconds=0.0, paid_seconds=float(d.get("seconds") or 0.0))


def accepts_on_result(fn: Callable) -> bool:
    try:
        return "on_result" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


class CachedLLM:
    """Wraps any ``LLM``: same protocol, answers served from / written to the store.

    Duplicated conversations in one call are sent once. Answers are committed one by one when the
    backend reports them as they finish (``on_result``), else per chunk of ``chunk_size``."""

    def __init__(self, inner: LLM, store: SQLiteStore | None = None, chunk_size: int = 8):
        self.inner = inner
        self.name = inner.name
        self.store = store or SQLiteStore()
        self.chunk_size = chunk_size
        self.stats = UsageStats()
        # called with every answer handed out, cached or not (the estimate's probe counts what a step costs)
        self.observers: list[Callable[[Generation], None]] = []

    def __getattr__(self, item: str) -> Any:  # score(), close(), tokenizer ... of the inner backend
        return getattr(self.inner, item)

    def generate(self, conversations: Sequence[Messages], params: GenerationParams,
                 on_result: Callable[[int, Generation], None] | None = None) -> list[Generation]:
        t0 = time.perf_counter()
        pd = params.as_dict()
        keys = [request_key(self.name, pd, c) for c in conversations]
        found = self.store.get_many("gen", keys)
        out: list[Generation | None] = [None] * len(conversations)
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            hit = _decode(found[k]) if k in found else None
            if hit is not None and hit.ok:  # an answer without text (stored by an older version) is asked again
                out[i] = hit
                self.stats.cache_hits += 1
                if on_result:
                    on_result(i, out[i])
            else:
                todo.setdefault(k, []).append(i)
        self.stats.requests += len(conversations)
        miss_keys = list(todo)
        self.stats.cache_misses += len(miss_keys)

        def deliver(j: int, g: Generation, batch_keys: list[str]) -> None:
            k = batch_keys[j]
            bar.advance()
            if g.ok:  # only a real answer is kept: a failure, or a "success" with no text, is asked again next run
                self.store.put_many("gen", [(k, _encode(g))])
                self.stats.tokens_in += g.tokens_in
                self.stats.tokens_out += g.tokens_out
            else:
                self.stats.errors += 1
            for i in todo[k]:
                out[i] = g
                if on_result:
                    on_result(i, g)

        from ..core.progress import progress_bar

        if miss_keys:
            with progress_bar(f"{self.name}: generating", total=len(miss_keys), unit="requests") as bar:
                if accepts_on_result(self.inner.generate):
                    convs = [conversations[todo[k][0]] for k in miss_keys]
                    self.inner.generate(convs, params, on_result=lambda j, g: deliver(j, g, miss_keys))
                else:
                    for s in range(0, len(miss_keys), self.chunk_size):
                        chunk = miss_keys[s:s + self.chunk_size]
                        gens = self.inner.generate([conversations[todo[k][0]] for k in chunk], params)
                        for j, g in enumerate(gens):
                            deliver(j, g, chunk)
        self.stats.seconds += time.perf_counter() - t0
        missing = [i for i, g in enumerate(out) if g is None]
        for i in missing:  # a backend that did not report a result: an error, never a silent gap
            out[i] = Generation(error="backend returned no result")
        for observe in self.observers:
            for g in out:
                observe(g)  # type: ignore[arg-type]
        return out  # type: ignore[return-value]


class CachedEmbedder:
    """Wraps any ``Embedder``: vectors cached by content hash (float32 bytes)."""

    def __init__(self, inner, store: SQLiteStore | None = None, batch_size: int = 256):
        self.inner = inner
        self.name = inner.name
        self.dim = inner.dim
        self.store = store or SQLiteStore(cache_dir() / "embeddings.sqlite")
        self.batch_size = batch_size
        self.stats = UsageStats()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        t0 = time.perf_counter()
        keys = [hashlib.blake2b((self.name + "\x00" + t).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
                for t in texts]
        found = self.store.get_many("emb", keys)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            if k in found:
                out[i] = np.frombuffer(found[k], dtype=np.float32)
                self.stats.cache_hits += 1
            else:
                todo.setdefault(k, []).append(i)
        self.stats.cache_misses += len(todo)
        miss = list(todo)
        for s in range(0, len(miss), self.batch_size):
            chunk = miss[s:s + self.batch_size]
            vecs = np.asarray(self.inner.embed([texts[todo[k][0]] for k in chunk]), dtype=np.float32)
            self.store.put_many("emb", [(k, vecs[j].tobytes()) for j, k in enumerate(chunk)])
            for j, k in enumerate(chunk):
                out[todo[k]] = vecs[j]
        self.stats.requests += len(texts)
        self.stats.seconds += time.perf_counter() - t0
        return out
