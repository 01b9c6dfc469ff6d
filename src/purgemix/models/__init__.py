"""The model layer: every neural part of purgemix goes through these interfaces.

Factories (heavy libraries are imported only when a backend is built):

``load_llm(spec, *, cache=True, backend=None, **options) -> LLM``
    ``smollm2-135m`` | ``qwen2.5-0.5b`` | ``qwen2.5-1.5b`` | ``gemma3-270m-base``  embedded GGUF (llama.cpp)
    ``gguf:/path/model.gguf`` (or any path ending in .gguf)                            llama.cpp
    ``hf:/path/folder`` or ``hf:qwen2.5-0.5b`` (GGUF converted once)                 transformers
    ``openai:http://127.0.0.1:8000/v1#model-name``                                    OpenAI-compatible HTTP
    ``fake`` / ``fake:echo``                                                          FakeLLM (tests)
    ``cache=True`` wraps it in ``CachedLLM`` (SQLite, ``$PURGEMIX_CACHE``); ``backend="hf"`` sends a
    short name to transformers instead of llama.cpp; ``budget=Budget(...)`` caps the tokens/cost sent.
``load_scorer(spec) -> LogProbScorer``  transformers model for log-probabilities (IFD, perplexity).
``load_embedder(spec="minilm", *, cache=True) -> Embedder``
    ``minilm`` (default) | ``static`` | ``st:/path`` | ``openai:URL#MODEL`` | ``fake``
"""

from __future__ import annotations

from typing import Any

from .base import LLM, Embedder, Generation, GenerationParams, LogProbScorer, ScoredResponse, UsageStats
from .fake import FakeEmbedder, FakeLLM

__all__ = ["Embedder", "FakeEmbedder", "FakeLLM", "Generation", "GenerationParams", "LLM", "LogProbScorer",
           "LazyScorer", "ScoredResponse", "UsageStats", "load_embedder", "load_llm", "load_scorer", "parse_openai_spec"]


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """``openai:URL#MODEL`` -> (URL, MODEL); the model defaults to ``default``."""
    rest = spec.split(":", 1)[1] if spec.startswith("openai:") else spec
    url, _, model = rest.partition("#")
    return url, model or "default"


def load_llm(spec: str, *, cache: bool = True, backend: str | None = None, cache_path: str | None = None,
             budget: Any = None, **options: Any):
    from .registry import MODELS

    if spec.startswith("fake"):
        llm: Any = FakeLLM(name=spec if ":" in spec else "fake:echo")
    elif spec.startswith("openai:") or spec.startswith("http://") or spec.startswith("https://"):
        from .openai_http import OpenAIHTTP

        url, model = parse_openai_spec(spec)
        llm = OpenAIHTTP(url, model, **options)
    elif spec.startswith("hf:") or backend == "hf":
        from .hf import HFCausalLM

        llm = HFCausalLM(spec[3:] if spec.startswith("hf:") else spec, **options)
    else:
        from .registry import ModelNotAvailable, gguf_path

        path = spec[5:] if spec.startswith("gguf:") else spec
        gguf = gguf_path(path)
        from . import llamacpp

        if not llamacpp.available():
            raise ModelNotAvailable(f"embedded GGUF models need llama.cpp: {llamacpp.INSTALL}")
        # started on first use: a run served entirely from the cache never loads the model
        llm = llamacpp.LlamaCppServer(gguf, name=spec if spec in MODELS else None, **options)
    if budget is not None:  # below the cache: only requests actually sent are paid for
        from .budget import BudgetedLLM

        llm = BudgetedLLM(llm, budget)
    if cache:
        from .cache import CachedLLM, SQLiteStore

        llm = CachedLLM(llm, SQLiteStore(cache_path) if cache_path else None)
    return llm


def load_scorer(spec: str = "qwen2.5-0.5b", **options: Any):
    from .hf import HFCausalLM

    return HFCausalLM(spec[3:] if spec.startswith("hf:") else spec, **options)


class LazyScorer:
    """A scorer that loads its model on the first ``score`` call: a run whose scores are all in the cache (the
    cache key needs only ``name`` and ``max_length``) never loads the model (seconds to a minute)."""

    def __init__(self, spec: str, **options: Any):
        from pathlib import Path

        from .registry import MODELS

        bare = spec[3:] if spec.startswith("hf:") else spec
        self.spec, self.options = spec, options
        self.name = f"hf:{options.get('name') or (bare if bare in MODELS else Path(bare).name)}"  # as HFCausalLM
        self.max_length = int(options.get("max_length", 1024))
        self._loaded: Any = None

    @property
    def loaded(self) -> Any:
        if self._loaded is None:
            self._loaded = load_scorer(self.spec, **self.options)
        return self._loaded

    def score(self, prompts, responses, *args: Any, **kwargs: Any):
        return self.loaded.score(prompts, responses, *args, **kwargs)

    def __getattr__(self, item: str) -> Any:
        return getattr(self.loaded, item)


def load_embedder(spec: str = "minilm", *, cache: bool = True, cache_path: str | None = None, **options: Any):
    if spec.startswith("fake"):
        emb: Any = FakeEmbedder(**options)
    elif spec in ("minilm", "default"):
        from .embeddings import SentenceTransformerEmbedder

        emb = SentenceTransformerEmbedder(**options)
    elif spec == "static" or spec.startswith("static:"):
        from .embeddings import StaticEmbedder

        emb = StaticEmbedder(spec[7:] or None if spec.startswith("static:") else None, **options)
    elif spec.startswith("st:"):
        from .embeddings import SentenceTransformerEmbedder

        emb = SentenceTransformerEmbedder(spec[3:], **options)
    elif spec.startswith("openai:"):
        from .embeddings import OpenAIEmbedder

        url, model = parse_openai_spec(spec)
        emb = OpenAIEmbedder(url, model, **options)
    else:
        raise ValueError(f"unknown embedder '{spec}'; use minilm, static, st:PATH or openai:URL#MODEL")
    if cache and not spec.startswith("fake"):
        from .cache import CachedEmbedder, SQLiteStore

        emb = CachedEmbedder(emb, SQLiteStore(cache_path) if cache_path else None)
    return emb
