"""``deita``: complexity x quality, then a greedy pass that skips near-copies of what is kept.

Liu et al. 2024, "What Makes Good Data for Alignment? (DEITA)". The paper scores with two trained scorers;
here the LLM (``models.rater``) scores complexity and quality 1-6 with a prompt each, which is the cheap
stand-in. The diversity pass ("Repr Filter") walks the records by score and keeps one only when its cosine to
every kept record is at most 0.9; it stops at the budget, and keeps fewer when the pool runs out.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.record import Record, instruction_of, response_of
from ..vectors.neighbours import l2_normalise
from .base import Selector, Signals, first_number, register_selector


@register_selector
class DeitaSelector(Selector):
    """Complexity (1-6) x quality (1-6) from the LLM, then a greedy pass skipping a record whose cosine to an
    already kept one exceeds 0.9 (DEITA's score-first, diversity-aware selection)."""

    name = "deita"
    uses_llm = True
    uses_embeddings = True

    def __init__(self, seed: int = 0, threshold: float = 0.9):
        super().__init__(seed, threshold=threshold)

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        comp = signals.ask("deita_complexity", [{"instruction": instruction_of(r)} for r in records], max_tokens=4)
        qual = signals.ask("deita_quality", [{"instruction": instruction_of(r), "response": response_of(r)}
                                             for r in records], max_tokens=4)
        c = np.array([first_number(a) for a in comp])
        q = np.array([first_number(a) for a in qual])
        ok = (c >= 1) & (c <= 6) & (q >= 1) & (q <= 6)
        return np.where(ok, c * q, np.nan)

    def choose(self, scores: np.ndarray, n: int, signals: Signals) -> np.ndarray:
        x = l2_normalise(signals.embeddings()).astype(np.float32)
        key = np.where(np.isnan(scores), -np.inf, scores)
        kept: list[int] = []
        for i in np.argsort(-key, kind="stable").tolist():
            if len(kept) >= n:
                break
            if kept and float((x[kept] @ x[i]).max()) > self.options["threshold"]:
                continue
            kept.append(i)
        return np.sort(np.asarray(kept, dtype=np.int64))
