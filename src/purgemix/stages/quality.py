"""The quality stage: one 0–1 score per record from calibrated signals, and its 0–5 class.

``quality.score`` comes from :func:`purgemix.rating.quality.quality_scores` (percentile-ranked
likelihood/IFD, rating, kNN-Bayes, vetoed by rule features); ``quality.class`` is
``round(5 * score)``, the scale the HQ/LQ split cuts (``split.hq``/``split.lq``) are written in, so
a recipe can split on it exactly as on a curated DS2 rating.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from ..record import Record
from .base import GlobalStage, Result, register_stage


@register_stage
class QualityStage(GlobalStage):
    name = "quality"
    version = "1"
    reads = ("messages", "scores.ifd.*", "scores.ds2.*")
    writes = ("scores.quality.*",)

    def __init__(self, *, strong_rater: bool = False, shard_size: int = 2000):
        self.strong_rater = strong_rater
        self.shard_size = shard_size

    def params(self) -> dict[str, Any]:
        return {"strong_rater": self.strong_rater}

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        from ..rating.quality import quality_scores

        records = [r for b in batches for r in b]
        if not records:
            return
        scored = quality_scores(records, strong_rater=self.strong_rater)
        for r in scored:
            s = r["scores"].get("quality.score")
            if s is not None:
                r["scores"]["quality.class"] = int(round(5 * s))
        for i in range(0, len(scored), self.shard_size):
            yield Result(records=scored[i:i + self.shard_size])
