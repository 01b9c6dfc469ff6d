"""``purge-scores``: a shard-parallel MapStage that writes every feature into ``scores["purge.<feature>"]``.

Its fingerprint depends on the scorers and the tokenizer only, never on the rules, so changing rules
(re-thresholding) reuses the stored scores."""

from __future__ import annotations

from typing import Any

from ...core.record import Record
from ...core.stage import MapStage, Result, register_stage
from ..features.base import SCORERS, Batch, score_batch, write_scores


@register_stage
class ScoreStage(MapStage):
    name = "purge-scores"
    section = "purge.scores"
    version = "2"
    reads = ("messages", "meta._input")
    writes = ("scores.purge.*",)

    def __init__(self, scorers: list[str] | None = None, tokenizer: str = "regex"):
        self.scorers = list(scorers) if scorers else list(SCORERS)
        self.tokenizer = tokenizer

    def params(self) -> dict[str, Any]:
        return {"scorers": {n: SCORERS[n].version for n in self.scorers}, "tokenizer": self.tokenizer}

    def process(self, records: list[Record]) -> Result:
        if not records:
            return Result(records=records)
        cols = score_batch(Batch(records, tokenizer=self.tokenizer), self.scorers)
        return Result(records=records, columns=write_scores(records, cols))
