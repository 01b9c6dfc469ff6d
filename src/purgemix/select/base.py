"""The selection contract: a registered ``Selector`` scores records and chooses a budget (``stage.SelectStage``
runs one).

A selector writes its score into ``scores["select.NAME"]`` (so a threshold or another budget never
recomputes it: a re-run finds the stored scores and skips the scoring), then chooses ``n`` records: by
default the ``n`` highest scores, ties broken by position; a selector with a diversity or coverage rule
(k-center, DEITA) overrides ``choose``. The stage keeps the chosen records in their input order and drops
the others with reason ``not selected by NAME``, so the ledger balances. Signals a selector needs that
another stage computes (IFD and perplexity from ``rating.ifd``, DS2 ratings) are read from ``scores``:
the builder puts that stage upstream, so each is computed once.

    @register_selector
    class Longest(Selector):
        \"\"\"Completion length, longest first (Zhao et al. 2024, "Long is more for alignment").\"\"\"
        name = "length"
        def score(self, records, signals) -> np.ndarray: ...
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.numbers import finite_number
from ..core.record import Record

SELECTORS: dict[str, type[Selector]] = {}
PREFIX = "select."
# The causal LM of IFD, perplexity and LESS when ``models.scorer`` is unset: the base model that
# ``benchmarks/protocol.py`` fine-tunes. IFD is defined under the model being tuned (Cherry LLM), and a 0.5B
# scorer costs ~3.5x as much (about 4 h for 9K records on 2 cores, against 65 min).
DEFAULT_SCORER = "smollm2-135m"


def register_selector(cls: type[Selector]) -> type[Selector]:
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__qualname__} needs a name")
    SELECTORS[cls.name] = cls
    return cls


class Signals:
    """What selectors share, computed once per run and only when asked for: the records' embeddings."""

    def __init__(self, records: Sequence[Record], embedder: Any = None, llm: Any = None):
        self.records, self.embedder, self.llm = records, embedder, llm
        self._emb: np.ndarray | None = None

    def ask(self, template: str, variables: Sequence[dict[str, str]], max_tokens: int = 32,
            batch_size: int = 32) -> list[str | None]:
        """The LLM's greedy answer to the packaged prompt ``select/prompts/TEMPLATE.txt`` for each set of
        variables (None where the request failed). Requests go through the model's cache when it has one."""
        if self.llm is None:
            raise ValueError("this selector needs an LLM (models.rater, default: the generator)")
        from pathlib import Path

        from ..models.base import GenerationParams
        from ..models.prompts import load_template

        tpl = load_template(Path(__file__).parent / "prompts" / f"{template}.txt")
        params = GenerationParams(temperature=0.0, max_tokens=max_tokens, seed=0)
        out: list[str | None] = []
        for i in range(0, len(variables), batch_size):
            gens = self.llm.generate([tpl.messages(**v) for v in variables[i:i + batch_size]], params)
            out += [g.texts[0] if g.ok else None for g in gens]
        return out

    def embeddings(self) -> np.ndarray:
        if self._emb is None:
            if self.embedder is None:
                raise ValueError("this selector needs an embedder (models.embedder)")
            from ..rating.stages import embed_text  # the text every rating-side stage embeds

            texts = [embed_text(r) for r in self.records]
            parts = [np.asarray(self.embedder.embed(texts[i:i + 256]), dtype=np.float32)
                     for i in range(0, len(texts), 256)]
            self._emb = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
        return self._emb


class Selector:
    name: str = ""
    version: str = "1"
    needs: tuple[str, ...] = ()  # upstream stages whose scores it reads: "ifd", "ds2", "curate"
    uses_embeddings: bool = False
    uses_llm: bool = False  # asks ``Signals.llm`` itself (AlpaGasus, DEITA, InsTag)
    uses_scorer: bool = False  # loads ``models.scorer`` itself (its ``model`` option; LESS)

    def __init__(self, seed: int = 0, **options: Any):
        self.seed = seed
        self.options = options

    def params(self) -> dict[str, Any]:
        return {"seed": self.seed, **self.options}

    def score(self, records: Sequence[Record], signals: Signals) -> np.ndarray:
        """One float per record, higher = kept first; NaN = no score (chosen last)."""
        raise NotImplementedError

    def report(self) -> dict[str, Any]:
        """What the last ``score`` call cost beyond the shared signals (LESS: its gradient passes); {} if nothing."""
        return {}

    def choose(self, scores: np.ndarray, n: int, signals: Signals) -> np.ndarray:
        """Positions of the ``n`` records kept: the highest scores, NaN last, ties by position."""
        key = np.where(np.isnan(scores), -np.inf, scores)
        return np.sort(np.argsort(-key, kind="stable")[:n])


def first_number(text: str | None) -> float:
    """The first number in a model's answer (NaN when there is none): the ratings' tolerant parse."""
    import re

    m = re.search(r"-?\d+(?:\.\d+)?", text or "")
    return float(m.group(0)) if m else float("nan")


def stored(records: Sequence[Record], key: str) -> np.ndarray:
    """``scores[key]`` of each record as floats (NaN where missing or not a number)."""
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        v = finite_number((r.get("scores") or {}).get(key))
        if v is not None:
            out[i] = v
    return out
