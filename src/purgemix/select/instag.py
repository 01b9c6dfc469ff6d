"""``instag``: intention tags from an LLM; complexity-first (most tags) with tag coverage.

Lu et al. 2024, "#InsTag: Instruction Tagging for Analyzing Supervised Fine-tuning of Large Language Models".
The paper's tagger is ChatGPT (or its distilled InsTagger); here the LLM (``models.rater``) tags with the
paper's prompt. Selection follows the paper's complexity-first diverse sampling: by the number of tags, most
first, a record is taken when it adds a tag not yet covered; the budget is then filled by the number of tags.
"""

from __future__ import annotations

import json
import re
from typing import Sequence

import numpy as np

from ..core.record import Record, instruction_of
from .base import Selector, Signals, register_selector


def parse_tags(text: str | None) -> list[str] | None:
    """A JSON list of tags in the answer (or a comma-separated line); None when there is nothing."""
    if not text:
        return None
    m = re.search(r"\[.*?\]", text, re.S)
    if m:
        try:
            tags = json.loads(m.group(0))
            if isinstance(tags, list):
                return sorted({str(t).strip().lower() for t in tags if str(t).strip()})
        except ValueError:
            pass
    parts = [p.strip(" \"'.-*").lower() for p in text.splitlines()[0].split(",")]
    return sorted({p for p in parts if p}) or None


@register_selector
class InsTagSelector(Selector):
    """The number of intention tags the LLM gives an instruction (complexity), most first, taking first the
    records that add a tag not yet covered (diversity), then filling the budget by tag count."""

    name = "instag"
    uses_llm = True

    def __init__(self, seed: int = 0):
        super().__init__(seed)
        self._tags: list[list[str] | None] = []

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        answers = signals.ask("instag", [{"instruction": instruction_of(r)} for r in records], max_tokens=64)
        self._tags = [parse_tags(a) for a in answers]
        for r, t in zip(records, self._tags):  # kept beside the score: coverage needs the tags themselves
            r.setdefault("meta", {})["_select_tags"] = t
        return np.array([np.nan if t is None else float(len(t)) for t in self._tags])

    def choose(self, scores: np.ndarray, n: int, signals: Signals) -> np.ndarray:
        tags = [((r.get("meta") or {}).get("_select_tags") or []) for r in signals.records]
        key = np.where(np.isnan(scores), -np.inf, scores)
        order = np.argsort(-key, kind="stable").tolist()
        covered: set[str] = set()
        kept: list[int] = []
        for i in order:
            if len(kept) >= n:
                break
            if set(tags[i]) - covered:
                kept.append(i)
                covered |= set(tags[i])
        taken = set(kept)
        kept += [i for i in order if i not in taken][: n - len(kept)]
        return np.sort(np.asarray(kept, dtype=np.int64))
