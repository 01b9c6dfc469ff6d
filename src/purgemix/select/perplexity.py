"""``perplexity``: response perplexity under the scorer model, lowest first."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record
from .base import Selector, Signals, register_selector, stored


@register_selector
class PerplexitySelector(Selector):
    """Response perplexity under the scorer model, lowest first (the fluent, typical answers; Marion et al.
    2023 found the low-to-middle perplexity subsets best, and high perplexity mostly marks noise here)."""

    name = "perplexity"
    needs = ("ifd",)

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        return -stored(records, "ifd.ppl")
