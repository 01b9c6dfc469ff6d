"""Pipeline stages of the rating layer. They run in the driver (``GlobalStage``): the model is loaded
once, calls are batched, and every answer lives in the request cache, so a restarted run replays
what it already paid for."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..record import Record
from ..stages.base import GlobalStage, Result


class RateStage(GlobalStage):
    """DS2-style rating of every record: ``scores["ds2.*"]`` or a recorded failure."""

    name = "rate"
    version = "1"
    reads = ("messages",)
    writes = ("scores.ds2.*", "meta._rating")

    def __init__(self, model: str = "qwen2.5-0.5b", *, template: str = "ds2_rating", attempts: int = 3,
                 batch_size: int = 64, max_tokens: int = 64, prefix: str = "ds2", llm: Any = None,
                 model_options: dict[str, Any] | None = None):
        self.model = model
        self.template = template
        self.attempts = attempts
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.prefix = prefix
        self._llm = llm
        self.model_options = model_options or {}
        self.counts = {"rated": 0, "parsed": 0, "failed": 0, "attempts": 0}

    def params(self) -> dict[str, Any]:
        from .ds2 import load_template

        t = load_template(self.template)
        return {"model": self.model, "template": [t.system, t.user], "attempts": self.attempts,
                "max_tokens": self.max_tokens, "prefix": self.prefix}

    @property
    def llm(self):
        if self._llm is None:
            from ..models import load_llm

            self._llm = load_llm(self.model, **self.model_options)
        return self._llm

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        from .ds2 import apply_rating, load_template, rate_conversations

        template = load_template(self.template)
        for records in batches:
            for s in range(0, len(records), self.batch_size):
                chunk = records[s:s + self.batch_size]
                results = rate_conversations(self.llm, [r["messages"] for r in chunk], template=template,
                                             attempts=self.attempts, max_tokens=self.max_tokens)
                for res in results:
                    self.counts["rated"] += 1
                    self.counts["parsed" if res.ok else "failed"] += 1
                    self.counts["attempts"] += res.attempts
                yield Result(records=[apply_rating(r, res, self.prefix, self.llm.name) for r, res in zip(chunk, results)])


def usage_of(obj: Any) -> dict[str, Any] | None:
    stats = getattr(obj, "stats", None)
    return stats.as_dict() if stats is not None and hasattr(stats, "as_dict") else None
