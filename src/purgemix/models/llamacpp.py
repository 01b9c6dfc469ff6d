"""Embedded GGUF models through llama.cpp's own server, run in this process (``xllamacpp``, a prebuilt
wheel: nothing compiles on install), with several sequences decoded together.

The server listens on 127.0.0.1 only, on a free port, with ``slots`` parallel sequences (continuous
batching); purgemix talks to it through the same HTTP client as to a user's vLLM/SGLang/llama.cpp
endpoint (``openai_http.OpenAIHTTP``), so retries, ``on_result`` streaming into the cache and the
usage counters are one code path. The server starts on first use and stops with ``close()`` (or when
the process ends). The chat template stored in the GGUF is applied by llama.cpp (jinja).

A request may carry a GBNF grammar (``GenerationParams.grammar``) or a JSON schema
(``GenerationParams.json_schema``): llama.cpp then samples only tokens the grammar allows, so a
constrained output cannot be malformed (only cut short by the token limit).

Why this engine (measured in ``docs/model-layer.md``): ``llama-cpp-python`` compiles llama.cpp from
source on install (about 9 minutes on 2 cores) and decodes one sequence at a time; ``xllamacpp``
installs from a 34 MB wheel in seconds and its server batches the slots.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from .base import Generation, GenerationParams, Messages, UsageStats
from .registry import ModelNotAvailable

INSTALL = "pip install 'purgemix[llamacpp]'  (the xllamacpp wheel)"


def available() -> bool:
    import importlib.util

    return importlib.util.find_spec("xllamacpp") is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaCppServer:
    """``LLM`` over a GGUF file: an in-process llama.cpp server with ``slots`` parallel sequences.

    ``n_ctx`` is the context of one sequence (the server's KV cache holds ``n_ctx * slots`` tokens,
    shared between the slots). ``n_threads`` defaults to ``$PURGEMIX_LLM_THREADS`` or every usable CPU."""

    def __init__(self, model_path: str | os.PathLike, *, name: str | None = None, n_ctx: int = 4096,
                 slots: int | None = None, n_threads: int | None = None, n_batch: int = 512,
                 timeout: float = 600.0, verbose: bool = False):
        if not available():
            raise ModelNotAvailable(f"embedded GGUF models need llama.cpp: {INSTALL}")
        self.path = Path(model_path)
        self.name = f"llamacpp:{name or self.path.name}"
        self.n_ctx = int(n_ctx)
        self.slots = max(1, int(slots if slots is not None else default_slots()))
        self.n_threads = n_threads or _threads()
        self.n_batch = n_batch
        self.timeout = timeout
        self.verbose = verbose
        self.stats = UsageStats()
        self._server: Any = None
        self._client: Any = None
        self._lock = threading.Lock()

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def parallel_width(self) -> int:  # sequences the server decodes at once
        return self.slots

    def start(self) -> "LlamaCppServer":
        with self._lock:
            if self._server is not None:
                return self
            import xllamacpp

            from .openai_http import OpenAIHTTP, RetryPolicy

            p = xllamacpp.CommonParams()
            p.model.path = str(self.path)
            p.n_parallel = self.slots
            p.n_ctx = self.n_ctx * self.slots
            p.kv_unified = True  # one KV pool for all slots: measured faster with 8 slots on 2 cores
            p.cont_batching = True
            p.n_batch = self.n_batch
            p.cpuparams.n_threads = self.n_threads
            p.cpuparams_batch.n_threads = self.n_threads
            p.hostnames = ["127.0.0.1"]  # never beyond this machine
            p.port = _free_port()
            p.use_jinja = True
            p.verbosity = 3 if self.verbose else 1  # 1: errors only (the default prints every slot event)
            try:
                self._server = xllamacpp.Server(p)
            except Exception as e:
                raise ModelNotAvailable(f"llama.cpp could not load {self.path.name}: {e}") from e
            # the model is local: a failure is not a rate limit, so few attempts and short waits
            self._client = OpenAIHTTP(f"http://127.0.0.1:{p.port}/v1", self.path.stem, api_key_env="",
                                      concurrency=self.slots, timeout=self.timeout,
                                      retry=RetryPolicy(max_attempts=2, base_delay=0.1, max_delay=1.0),
                                      native_n=False, grammar_field="grammar")
            self._client.stats = self.stats  # one set of counters, reported under this backend's name
            return self

    def close(self) -> None:
        """Stop the server and free the model (a later ``generate`` starts it again)."""
        with self._lock:
            self._server, self._client = None, None

    @property
    def url(self) -> str | None:
        return self._client.base_url if self._client else None

    # -- LLM ------------------------------------------------------------------------------------

    def generate(self, conversations: Sequence[Messages], params: GenerationParams,
                 on_result: Callable[[int, Generation], None] | None = None) -> list[Generation]:
        self.start()
        if params.seed is None:  # llama.cpp draws a random seed otherwise: the same run must give the same text
            params = replace(params, seed=0)
        t0 = time.perf_counter()
        try:
            return self._client.generate(conversations, params, on_result)
        finally:
            self.stats.seconds += time.perf_counter() - t0


def default_slots() -> int:
    """``$PURGEMIX_LLM_SLOTS``, else 8: on 2 cores, 8 slots gave 1.48x the tokens/s of one (qwen2.5-0.5b,
    ``benchmarks/llm_throughput.py``); more slots only add KV memory."""
    env = os.environ.get("PURGEMIX_LLM_SLOTS")
    return max(1, int(env)) if env else 8


def _threads() -> int:
    """``$PURGEMIX_LLM_THREADS``, else every CPU this process may use. llama.cpp's threads wait for
    each other at every layer, so on a machine shared with other busy processes fewer threads than
    cores can be much faster."""
    env = os.environ.get("PURGEMIX_LLM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)
