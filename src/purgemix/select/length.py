"""``length``: completion length, longest first."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record, response_of
from ..text.tokens import regex_token_counts
from .base import Selector, Signals, register_selector


@register_selector
class LengthSelector(Selector):
    """Completion length in tokens (GPT-2-style pre-tokens), longest first: Zhao et al. 2024, "Long Is More
    for Alignment", a strong, cheap baseline for instruction tuning."""

    name = "length"

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        return np.asarray(regex_token_counts([response_of(r) for r in records]), dtype=np.float64)
