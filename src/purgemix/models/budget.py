"""A spending cap on a model: total tokens and/or cost of the requests actually sent.

``BudgetedLLM`` sits between the request cache and the backend (``load_llm(..., budget=Budget(...))``),
so answers served from the cache cost nothing and a rerun pays for no request twice. Requests go out in
chunks of the backend's parallel width; before each chunk the budget is checked, and once it is spent
``BudgetExceeded`` stops the run with a clear message. Every answer received before that is already in
the cache (the cache commits answers one by one as they arrive), so a rerun with a larger cap continues
where this one stopped. The cap can overshoot by at most one chunk of requests.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from .base import Generation, GenerationParams, Messages, parallel_width
from .cache import accepts_on_result


class BudgetExceeded(RuntimeError):
    """The run reached its token or cost cap; answers so far are cached."""


@dataclass
class Budget:
    max_tokens_total: int | None = None  # prompt + completion tokens of the requests sent
    max_cost: float | None = None  # in the currency of the prices
    price_in: float = 0.0  # per million prompt tokens
    price_out: float = 0.0  # per million completion tokens
    tokens_in: int = 0
    tokens_out: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_cost is not None and not (self.price_in or self.price_out):
            raise ValueError("a cost cap needs a price: set models.price_in / models.price_out (per million tokens)")

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def cost(self) -> float:
        return (self.tokens_in * self.price_in + self.tokens_out * self.price_out) / 1e6

    def spend(self, g: Generation) -> None:
        with self._lock:
            self.tokens_in += g.tokens_in
            self.tokens_out += g.tokens_out

    def exhausted(self) -> str | None:
        """Why the budget is spent, or None."""
        if self.max_tokens_total is not None and self.tokens >= self.max_tokens_total:
            return f"token cap reached: {self.tokens:,} tokens sent of mix.max_tokens_total={self.max_tokens_total:,}"
        if self.max_cost is not None and self.cost >= self.max_cost:
            return f"cost cap reached: {self.cost:.4f} spent of mix.max_cost={self.max_cost}"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"max_tokens_total": self.max_tokens_total, "max_cost": self.max_cost, "tokens_in": self.tokens_in,
                "tokens_out": self.tokens_out, "cost": round(self.cost, 6) if (self.price_in or self.price_out) else None}


class BudgetedLLM:
    """An ``LLM`` that stops sending once its ``Budget`` is spent (same name as the backend: the cap is
    not part of any cache key or stage fingerprint, so raising it reuses everything)."""

    def __init__(self, inner: Any, budget: Budget, chunk: int | None = None):
        self.inner = inner
        self.name = inner.name
        self.budget = budget
        # one chunk keeps every parallel slot busy; the cap is checked between chunks
        self.chunk = max(1, int(chunk or (parallel_width(inner) if parallel_width(inner) > 1 else 8)))

    def __getattr__(self, item: str) -> Any:
        return getattr(self.inner, item)

    def generate(self, conversations: Sequence[Messages], params: GenerationParams,
                 on_result: Callable[[int, Generation], None] | None = None) -> list[Generation]:
        out: list[Generation] = []
        for start in range(0, len(conversations), self.chunk):
            why = self.budget.exhausted()
            if why:
                raise BudgetExceeded(f"{why}; {len(conversations) - start} request(s) of this step not sent. "
                                     "Answers so far are cached: rerun with a larger cap to continue.")
            chunk = conversations[start:start + self.chunk]

            def deliver(j: int, g: Generation, base: int = start) -> None:
                self.budget.spend(g)
                if on_result:
                    on_result(base + j, g)

            if accepts_on_result(self.inner.generate):
                gens = self.inner.generate(chunk, params, on_result=deliver)
            else:
                gens = self.inner.generate(chunk, params)
                for j, g in enumerate(gens):
                    deliver(j, g)
            out.extend(gens)
        return out
