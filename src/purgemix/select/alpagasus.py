"""``alpagasus``: an LLM's 0-5 accuracy rating of each pair; keep >= 4.5, then top up by score.

Chen et al. 2024, "AlpaGasus: Training a Better Alpaca with Fewer Data" (the paper's prompt; the rater is
``models.rater``, by default the embedded generator: a far weaker judge than the paper's ChatGPT).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record, input_of, instruction_of, response_of
from .base import Selector, Signals, first_number, register_selector

KEEP = 4.5  # the paper's threshold


@register_selector
class AlpagasusSelector(Selector):
    """An LLM's 0-5 accuracy rating (AlpaGasus prompt), highest first: every record rated >= 4.5 is kept
    before any other, and the budget is topped up by score (unparsed ratings last)."""

    name = "alpagasus"
    uses_llm = True

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        answers = signals.ask("alpagasus", [{"instruction": instruction_of(r), "input": input_of(r),
                                             "response": response_of(r)} for r in records], max_tokens=8)
        s = np.array([first_number(a) for a in answers])
        return np.where((s >= 0) & (s <= 5), s, np.nan)
