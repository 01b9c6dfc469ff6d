"""``knn``: long-tail first, by the mean cosine distance to the nearest neighbours."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record
from ..vectors.neighbours import longtail
from .base import Selector, Signals, register_selector


@register_selector
class KNNSelector(Selector):
    """Long-tail first: the mean cosine distance to the ``k`` nearest neighbours in embedding space (the
    kNN-distance baseline of the DS2 and ENTP comparisons; rare records are kept first)."""

    name = "knn"
    uses_embeddings = True

    def __init__(self, seed: int = 0, k: int = 10):
        super().__init__(seed, k=k)

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        return longtail(signals.embeddings(), k=self.options["k"]).astype(np.float64)
