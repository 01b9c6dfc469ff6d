"""The contracts of the model layer. Backends (embedded llama.cpp / transformers, OpenAI-compatible
HTTP) and fakes implement them; every caller (rating, fusion, distillation, rewards) uses only these.

Conversations are lists of ``{"role", "content"}`` dicts (the canonical record's ``messages``).
A failed request is a result with ``error`` set, never an exception that loses the batch, and never
a made-up text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class GenerationParams:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 512
    n: int = 1
    stop: tuple[str, ...] = ()
    seed: int | None = None
    # Constrained output, where the backend supports it: a GBNF grammar (llama.cpp) or a JSON schema
    # (as JSON text; llama.cpp, vLLM, SGLang and OpenAI accept it as ``response_format``). Backends
    # without support ignore them, so the caller's parser must stay tolerant.
    grammar: str | None = None
    json_schema: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        for k in ("grammar", "json_schema"):  # absent when unset: cache keys of unconstrained requests stay the same
            if d[k] is None:
                del d[k]
        return d


def config_params(config: Any) -> dict[str, Any]:
    """A config dataclass as plain values for a stage's fingerprint: its plain fields first, then its nested
    settings in field order (``GenerationParams`` by ``as_dict()``, another dataclass by its fields)."""
    plain, nested = {}, {}
    for k, v in vars(config).items():
        if isinstance(v, GenerationParams):
            nested[k] = v.as_dict()
        elif hasattr(v, "__dataclass_fields__"):
            nested[k] = dict(vars(v))
        else:
            plain[k] = v
    return {**plain, **nested}


@dataclass
class Generation:
    texts: list[str] = field(default_factory=list)  # n samples
    finish_reasons: list[str] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cached: bool = False
    error: str | None = None
    seconds: float = 0.0
    paid_seconds: float = 0.0  # for a cached answer: the seconds it took when it was generated

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.texts)


@dataclass
class ScoredResponse:
    """Log-likelihood of a response: given its prompt (conditional) and alone (unconditional)."""

    tokens: int = 0
    loss_conditional: float | None = None  # mean NLL per response token given the prompt
    loss_unconditional: float | None = None  # mean NLL per response token without the prompt
    error: str | None = None

    @property
    def ifd(self) -> float | None:
        if self.loss_conditional is None or not self.loss_unconditional:
            return None
        return self.loss_conditional / self.loss_unconditional


@runtime_checkable
class LLM(Protocol):
    """A text generator. A backend that decodes several requests at once also says how many with a
    ``parallel_width`` attribute (llama.cpp slots, HTTP concurrency, a batch); the wrappers (cache, budget)
    pass it through, and :func:`parallel_width` reads it, 1 when absent."""

    name: str  # "<backend>:<model>", part of every cache key

    def generate(self, conversations: Sequence[Messages], params: GenerationParams) -> list[Generation]:
        ...


def parallel_width(llm: object) -> int:
    """How many requests ``llm`` decodes at once (its ``parallel_width``), else 1."""
    v = getattr(llm, "parallel_width", 1)
    return v if isinstance(v, int) and v > 0 else 1


@runtime_checkable
class LogProbScorer(Protocol):
    """Backends that can score a response's tokens (embedded transformers; llama.cpp)."""

    name: str

    def score(self, prompts: Sequence[Messages], responses: Sequence[str]) -> list[ScoredResponse]:
        """Mean NLL of each response given its prompt (chat template applied) and alone."""
        ...


@dataclass
class UsageStats:
    """What a model wrapper did in a run: goes into the run manifest."""

    requests: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d

    def since(self, before: dict[str, Any] | None) -> dict[str, Any]:
        """What happened after the snapshot ``before`` (an ``as_dict()``): a stage's own share when several
        stages share one model."""
        now = self.as_dict()
        if not before:
            return now
        return {k: round(v - before.get(k, 0), 3) if isinstance(v, float) else v - before.get(k, 0)
                for k, v in now.items()}


def usage_of(model: Any) -> dict[str, Any] | None:
    """A model wrapper's usage counters so far (None for one that keeps none, e.g. a plain callable)."""
    stats = getattr(model, "stats", None)
    return stats.as_dict() if isinstance(stats, UsageStats) else None


def model_usage(model: Any, before: dict[str, Any] | None) -> dict[str, Any]:
    """For a stage's ``report()``: the model's name and its usage since the snapshot ``before`` (taken with
    ``usage_of`` when the stage started: several stages may share one model). Empty without a model."""
    if model is None:
        return {}
    out: dict[str, Any] = {"model": str(getattr(model, "name", None) or type(model).__name__)}
    stats = getattr(model, "stats", None)
    if isinstance(stats, UsageStats):
        out["usage"] = stats.since(before)
    return out


@runtime_checkable
class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array (len(texts), dim), rows L2-normalised."""
        ...
