"""Deterministic fakes for tests: no model, no network, same output for the same input."""

from __future__ import annotations

import hashlib
import re
from typing import Callable, Sequence

import numpy as np

from .base import Generation, GenerationParams, Messages, UsageStats


class FakeLLM:
    """Answers with ``responder(conversation, sample_index)``, or an echo of the last user turn.

    ``fail_every=k`` makes every k-th call return an error (to test error paths). ``stats`` counts requests,
    errors and (whitespace) tokens as a real backend does, so usage reporting is testable offline."""

    def __init__(self, responder: Callable[[Messages, int], str] | None = None, name: str = "fake:echo",
                 fail_every: int = 0):
        self.name = name
        self.responder = responder or (lambda conv, i: f"echo: {conv[-1]['content']}")
        self.fail_every = fail_every
        self.calls = 0
        self.stats = UsageStats()

    def generate(self, conversations: Sequence[Messages], params: GenerationParams) -> list[Generation]:
        out = []
        for conv in conversations:
            self.calls += 1
            self.stats.requests += 1
            if self.fail_every and self.calls % self.fail_every == 0:
                self.stats.errors += 1
                out.append(Generation(error="fake failure"))
                continue
            texts = [self.responder(conv, i) for i in range(params.n)]
            g = Generation(texts=texts, finish_reasons=["stop"] * params.n,
                           tokens_in=sum(len(m["content"].split()) for m in conv),
                           tokens_out=sum(len(t.split()) for t in texts))
            self.stats.tokens_in += g.tokens_in
            self.stats.tokens_out += g.tokens_out
            out.append(g)
        return out


class FakeEmbedder:
    """Bag-of-hashed-words embeddings: texts sharing words are close (cosine), deterministic."""

    def __init__(self, dim: int = 64, name: str = "fake:hashed-words"):
        self.dim = dim
        self.name = name

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 16) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms
