"""``ds2-raw`` and ``ds2``: the DS2 LLM rating, raw or curated by the transition-matrix correction, long-tail
breaking ties (Pang et al. 2025, "Improving Data Efficiency via Curating LLM-Driven Rating Systems")."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record
from .base import Selector, Signals, register_selector, stored

# a tie-break that never outweighs one rating step: the long-tail score is in [0, 1], scaled below 0.01
TIE = 1e-3


@register_selector
class DS2RawSelector(Selector):
    """The DS2 rating (``ds2.score``, 0-5, from the ``rate`` stage) without curation, the long-tail score
    (``ds2.longtail``) breaking ties; records the rater could not score come last."""

    name = "ds2-raw"
    needs = ("ds2", "curate")  # curate computes the long-tail score

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        return stored(records, "ds2.score") + TIE * np.nan_to_num(stored(records, "ds2.longtail"))


@register_selector
class DS2Selector(Selector):
    """DS2's curated score (``ds2.curated``: the rating corrected by the pool's transition matrix), then the
    long-tail score: DS2's selection rule."""

    name = "ds2"
    needs = ("ds2", "curate")

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        return stored(records, "ds2.curated") + TIE * np.nan_to_num(stored(records, "ds2.longtail"))
