"""``random``: the seeded uniform sample, the control every method must beat."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record
from .base import Selector, Signals, register_selector


@register_selector
class RandomSelector(Selector):
    """A seeded uniform sample: the control every method must beat."""

    name = "random"

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        return np.random.default_rng(self.seed).random(len(records))
