"""Embedded GGUF models through llama.cpp (``llama-cpp-python``, imported lazily).

The chat template stored in the GGUF is applied by llama.cpp. Consecutive prompts that share a
prefix (a fixed rubric in the system message) reuse the KV cache of that prefix.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

from .base import Generation, GenerationParams, Messages, UsageStats
from .registry import ModelNotAvailable


class LlamaCpp:
    def __init__(self, model_path: str | os.PathLike, *, name: str | None = None, n_ctx: int = 4096,
                 n_threads: int | None = None, n_batch: int = 512, verbose: bool = False):
        try:
            from llama_cpp import Llama
        except ImportError:
            raise ModelNotAvailable("embedded GGUF models need llama-cpp-python: pip install 'purgemix[llamacpp]'") from None
        self.path = Path(model_path)
        self.name = f"llamacpp:{name or self.path.name}"
        self.llm = Llama(model_path=str(self.path), n_ctx=n_ctx, n_threads=n_threads or _threads(),
                         n_batch=n_batch, verbose=verbose, seed=0)
        self.stats = UsageStats()
        self._lock = threading.Lock()  # a llama context is not thread-safe

    def generate(self, conversations: Sequence[Messages], params: GenerationParams,
                 on_result: Callable[[int, Generation], None] | None = None) -> list[Generation]:
        out = []
        for i, conv in enumerate(conversations):
            g = self._one(conv, params)
            out.append(g)
            if on_result:
                on_result(i, g)
        return out

    def _one(self, conv: Messages, params: GenerationParams) -> Generation:
        t0 = time.perf_counter()
        g = Generation()
        try:
            for k in range(params.n):
                seed = (params.seed if params.seed is not None else 0) + k
                with self._lock:
                    r = self.llm.create_chat_completion(
                        messages=[{"role": m["role"], "content": m["content"]} for m in conv],
                        temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens,
                        stop=list(params.stop) or None, seed=seed)
                ch = r["choices"][0]
                g.texts.append(ch["message"]["content"] or "")
                g.finish_reasons.append(ch.get("finish_reason") or "")
                g.tokens_in = r["usage"]["prompt_tokens"]
                g.tokens_out += r["usage"]["completion_tokens"]
        except Exception as e:  # context overflow, bad template ...: reported per record
            g = Generation(error=f"{type(e).__name__}: {e}")
        g.seconds = time.perf_counter() - t0
        self.stats.requests += 1
        self.stats.tokens_in += g.tokens_in
        self.stats.tokens_out += g.tokens_out
        self.stats.errors += g.error is not None
        self.stats.seconds += g.seconds
        return g


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
