"""``kcenter``: k-center greedy coverage in embedding space."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record
from ..vectors.neighbours import l2_normalise
from .base import Selector, Signals, register_selector


@register_selector
class KCenterSelector(Selector):
    """K-center greedy coverage (Sener & Savarese 2018): start from the record nearest the centroid, then
    repeatedly add the record farthest (cosine) from every record kept so far. The stored score is each
    record's cosine distance to the centroid; the choice is the greedy order."""

    name = "kcenter"
    uses_embeddings = True

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        x = l2_normalise(signals.embeddings())
        c = l2_normalise(x.mean(axis=0, keepdims=True))[0]
        return (1.0 - x @ c).astype(np.float64)

    def choose(self, scores: np.ndarray, n: int, signals: Signals) -> np.ndarray:
        x = l2_normalise(signals.embeddings()).astype(np.float32)
        if n <= 0 or not len(x):
            return np.zeros(0, dtype=np.int64)
        chosen = [int(np.argmin(scores))]
        dist = 1.0 - x @ x[chosen[0]]
        for _ in range(n - 1):
            dist[chosen] = -np.inf
            nxt = int(np.argmax(dist))
            chosen.append(nxt)
            dist = np.minimum(dist, 1.0 - x @ x[nxt])
        return np.sort(np.asarray(chosen))
