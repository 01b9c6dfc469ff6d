"""Quality rewards for new pairs: adapters from the rating layer to the ``QualityFn`` contract
(candidate ``(instruction, response)`` pairs in, rewards in [0, 1] or ``None`` out).

``KNNBayesQuality``  LM-Mixup's quality reward: kNN-Bayes expected score over a rated library,
                     1 if >= ``threshold`` (4) else 0. Any object with ``reward(embeddings,
                     threshold)`` works (``purgemix.rating.knn_bayes.KNNBayes``).
``RaterQuality``     the DS2 LLM rater: 1 if the compressed 0-5 score >= ``threshold`` else 0;
                     ``None`` when the rating could not be parsed (never a made-up score).
``ScoreQuality``     the raw 0-5 expected score / rating instead of the 0/1 reward (for ranking).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..models.base import LLM, Embedder
from .text import embed_texts


def _pair_text(pair: tuple[str, str]) -> str:
    # the same text the rating layer embeds: the turns joined by a newline
    return pair[0] + "\n" + pair[1]


class KNNBayesQuality:
    def __init__(self, model: Any, embedder: Embedder, *, threshold: float = 4.0, expected: bool = False):
        self.model, self.embedder, self.threshold, self.expected = model, embedder, threshold, expected
        self.name = f"knn-bayes({getattr(embedder, 'name', '?')},>={threshold})" + (":expected" if expected else "")

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
        if not pairs:
            return []
        emb = embed_texts(self.embedder, [_pair_text(p) for p in pairs])
        if self.expected:
            return [float(v) for v in np.asarray(self.model.expected(emb))]
        return [float(v) for v in np.asarray(self.model.reward(emb, self.threshold))]


class RaterQuality:
    def __init__(self, llm: LLM, *, threshold: float = 4.0, attempts: int = 3, template: Any = None,
                 expected: bool = False):
        self.llm, self.threshold, self.attempts, self.template = llm, threshold, attempts, template
        self.expected = expected
        self.name = f"rater({getattr(llm, 'name', '?')},>={threshold})" + (":score" if expected else "")

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[float | None]:
        from ..rating.ds2 import rate_conversations

        convs = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in pairs]
        results = rate_conversations(self.llm, convs, template=self.template, attempts=self.attempts)
        out: list[float | None] = []
        for r in results:
            s = r.score
            out.append(None if s is None else (float(s) if self.expected else float(s >= self.threshold)))
        return out
