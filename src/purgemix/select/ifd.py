"""``ifd`` and ``superfilter``: the IFD < 1 rule (Cherry LLM), under the scorer or under the smallest model."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record
from .base import Selector, Signals, register_selector, stored


class _IFDRule(Selector):
    """Keep IFD < 1 (an answer the instruction makes easier to predict), highest first: Li et al. 2024
    ("From Quantity to Quality", Cherry LLM). A record with IFD >= 1 or no IFD is never kept, even when that
    leaves fewer than ``n``."""

    prefix = "ifd"
    needs = ("ifd",)

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        ifd = stored(records, f"{self.prefix}.ifd")
        return np.where(ifd < 1.0, ifd, np.nan)

    def choose(self, scores: np.ndarray, n: int, signals: Signals) -> np.ndarray:
        ok = np.flatnonzero(np.isfinite(scores))
        return np.sort(ok[np.argsort(-scores[ok], kind="stable")[:n]])


@register_selector
class IFDSelector(_IFDRule):
    __doc__ = _IFDRule.__doc__
    name = "ifd"


@register_selector
class SuperfilterSelector(_IFDRule):
    """Superfiltering (Li et al. 2024): the IFD rule under a small model instead of the one being tuned (GPT-2
    in the paper; the smallest local model, SmolLM2-135M, stands in). Its IFD lives in ``superfilter.*``."""

    name = "superfilter"
    prefix = "superfilter"
    needs = ("superfilter",)
