"""``select``: the stage that runs one registered selector, and ``make_selector`` (a selector by name).

Kept out of ``base`` so that the selector modules can import the contract without an import cycle."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import numpy as np

from ..core.record import Record
from ..core.stage import GlobalStage, Result, register_stage
from . import alpagasus, deita, ds2, ifd, instag, kcenter, knn, length, less, perplexity, uniform  # noqa: F401
from .base import PREFIX, SELECTORS, Selector, Signals, stored


def make_selector(name: str, **options: Any) -> Selector:
    if name not in SELECTORS:
        raise KeyError(f"unknown selector '{name}'; available: {', '.join(sorted(SELECTORS))}")
    return SELECTORS[name](**options)


@register_stage
class SelectStage(GlobalStage):
    """Keeps ``n`` records chosen by a selector; the rest are dropped with ``not selected by NAME``."""

    name = "select"
    section = "select"
    version = "1"
    reads = ("messages", "scores")
    writes = ("scores.select.*",)

    def __init__(self, strategy: str = "random", n: int = 1000, *, embedder: Any = None, llm: Any = None,
                 seed: int = 0, options: dict[str, Any] | None = None, shard_size: int = 10_000):
        self.strategy, self.n, self.seed = strategy, int(n), seed
        self.selector = make_selector(strategy, seed=seed, **(options or {}))
        self.embedder, self.llm = embedder, llm
        self.shard_size = max(1, int(shard_size))
        self._report: dict[str, Any] = {}

    def params(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "n": self.n, "selector": self.selector.params(),
                "version": self.selector.version,
                "embedder": getattr(self.embedder, "name", None) if self.selector.uses_embeddings else None,
                "llm": getattr(self.llm, "name", None) if self.selector.uses_llm else None}

    def report(self) -> dict[str, Any]:
        return self._report

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        from ..models.base import model_usage, usage_of

        records = [r for b in batches for r in b]
        key = PREFIX + self.strategy
        before = {"llm": usage_of(self.llm), "embedder": usage_of(self.embedder)}
        signals = Signals(records, self.embedder, self.llm)
        scores = stored(records, key)
        reused = bool(records) and not np.isnan(scores).all() and all(key in (r.get("scores") or {}) for r in records)
        if not reused:
            scores = np.asarray(self.selector.score(records, signals), dtype=np.float64)
            for r, s in zip(records, scores.tolist()):
                r.setdefault("scores", {})[key] = None if s != s else round(float(s), 6)
        keep = set(self.selector.choose(scores, min(self.n, len(records)), signals).tolist())
        res, kept = Result(), []
        for i, r in enumerate(records):
            if i in keep:
                kept.append(r)
            else:
                res.drop(r, self.name, f"not selected by {self.strategy}")
        self._report = {"strategy": self.strategy, "n": self.n, "kept": len(keep), "pool": len(records),
                        "scores_reused": reused, "scored": int(np.isfinite(scores).sum())}
        if not reused and self.selector.report():
            self._report["selector"] = self.selector.report()
        for role, model in (("llm", self.llm), ("embedder", self.embedder)):
            if model is not None and (self.selector.uses_llm if role == "llm" else self.selector.uses_embeddings):
                self._report[role] = model_usage(model, before[role])
        for i in range(0, len(kept), self.shard_size):  # the kept records in shards, then the drop events
            yield Result(records=kept[i:i + self.shard_size])
        yield res
