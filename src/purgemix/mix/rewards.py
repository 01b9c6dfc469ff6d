"""LM-Mixup's three rewards for a new pair, in one place: the distiller's best-of-N selection uses them, and
so can a GRPO trainer (each is a plain function of the sample).

quality (0.5)    a ``QualityFn`` over candidate (instruction, response) pairs, a reward in [0, 1] or None
                 (could not be scored: recorded, never made up). ``KNNBayesQuality`` (kNN-Bayes expected
                 score over a rated library >= 4) and ``RaterQuality`` (the DS2 LLM rater >= 4) adapt the
                 rating layer; ``threshold_quality`` turns any 0-5 scorer into the 0/1 reward;
                 ``heuristic_quality`` is a dependency-free placeholder for tests and demos.
alignment (0.4)  1 if cosine(embed(pair), centroid of the sources' embeddings) >= 0.8.
format (0.1)     0.5 for the exact ``<think>…</think><answer>Q: … A: …</answer>`` shape, 0.5 for the task's
                 shape (QA, multiple choice, true/false, category-statement, paragraph) in the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..core.record import Record, response_of
from ..models.base import LLM, Embedder
from ..vectors.neighbours import l2_normalise
from .text import embed_texts, pair_text, prompt_of

# candidate pairs -> reward in [0, 1] (None: could not be scored)
QualityFn = Callable[[Sequence[tuple[str, str]]], Sequence[float | None]]

TASK_SHAPES = ("qa", "multiple_choice", "true_false", "category_statement", "paragraph")
SHAPE_HINTS = {
    "qa": "",
    "multiple_choice": "a multiple-choice question with four options A-D, and 'Answer: <letter>' in the answer",
    "true_false": "a true/false question, the answer starting with True or False",
    "category_statement": "a question about which category a statement belongs to, the answer naming the category",
    "paragraph": "the answer written as a coherent paragraph",
}

_EXACT = re.compile(r"\A\s*<think>(?P<think>.*?)</think>\s*<answer>(?P<answer>.*?)</answer>\s*\Z", re.S)
_ANSWER = re.compile(r"<answer>(?P<answer>.*?)(?:</answer>|\Z)", re.S)
_QA = re.compile(r"\A\s*(?:\*\*)?Q(?:uestion)?\s*(?:\*\*)?\s*[:：]\s*(?P<q>.*?)\s*^\s*(?:\*\*)?A(?:nswer)?\s*(?:\*\*)?\s*[:：]\s*(?P<a>.*)\Z",
                 re.S | re.M | re.I)
_QA_INLINE = re.compile(r"\A\s*(?:\*\*)?Q(?:uestion)?\s*(?:\*\*)?\s*[:：]\s*(?P<q>.+?)\s+(?:\*\*)?A(?:nswer)?\s*(?:\*\*)?\s*[:：]\s*(?P<a>.+)\Z",
                        re.S | re.I)
_OPTION = re.compile(r"^\s*\(?([A-D])[).:]\s+\S", re.M)
_MC_ANSWER = re.compile(r"\bAnswer\s*[:：]\s*\(?[A-D]\b", re.I)


def parse_distilled(text: str) -> tuple[tuple[str, str] | None, bool]:
    """``((question, answer) or None, exact_shape)``. Only the ``<answer>`` part is used; a
    missing closing tag is tolerated (but the exact shape is then False)."""
    text = text or ""
    exact = _EXACT.match(text)
    if exact and text.count("<think>") == 1 and text.count("<answer>") == 1:
        answer, is_exact = exact.group("answer"), True
    else:
        m = _ANSWER.search(text)
        if not m:
            return None, False
        answer, is_exact = m.group("answer"), False
    qa = _QA.match(answer.strip()) or _QA_INLINE.match(answer.strip())  # "Q: … A: …" on one line too
    if not qa or not qa.group("q").strip() or not qa.group("a").strip():
        return None, is_exact
    return (qa.group("q").strip(), qa.group("a").strip()), is_exact


def detect_task_shape(instruction: str, response: str) -> str:
    """The task shape of one source pair (used to ask for and score the same shape)."""
    if len(_OPTION.findall(instruction)) >= 3 or re.search(r"\b(which|what) of the following\b", instruction, re.I):
        return "multiple_choice"
    if re.match(r"\s*(true|false)\b", response, re.I) or re.search(r"\btrue or false\b", instruction, re.I):
        return "true_false"
    if re.search(r"\b(categor(y|ize|ise)|classify)\b", instruction, re.I):
        return "category_statement"
    if len(response.split()) >= 80 and "\n" not in response.strip() and not re.search(r"\?\s*$", instruction):
        return "paragraph"
    return "qa"


def cluster_task_shape(records: Sequence[Record]) -> str:
    shapes = [detect_task_shape(prompt_of(r), response_of(r)) for r in records]
    return max(TASK_SHAPES, key=lambda s: (shapes.count(s), -TASK_SHAPES.index(s)))


def shape_ok(shape: str, question: str, answer: str) -> bool:
    """Does the pair have the task's shape (``Q:``/``A:`` already parsed)? Exactly one pair: an
    answer that holds another ``Q:`` lists the samples instead of merging them."""
    if re.search(r"^\s*Q(?:uestion)?\s*[:：]", answer, re.M | re.I):
        return False
    if shape == "multiple_choice":
        letters = {m.upper() for m in _OPTION.findall(question)}
        return {"A", "B", "C", "D"} <= letters and bool(_MC_ANSWER.search(answer) or _MC_ANSWER.search(question))
    if shape == "true_false":
        return bool(re.match(r"\s*(true|false)\b", answer, re.I))
    if shape == "category_statement":
        return len(answer.split()) >= 1
    if shape == "paragraph":
        return len(answer.split()) >= 30 and not re.search(r"^\s*([-*•]|\d+[.)])\s", answer, re.M)
    return True


def format_score(parsed: tuple[str, str] | None, exact: bool, shape: str) -> float:
    """LM-Mixup's format reward of a parsed sample (``parse_distilled``): 0.5 for the exact think/answer
    shape, plus 0.5 when the answer has the task's shape."""
    return (0.5 if exact else 0.0) + (0.5 if parsed is not None and shape_ok(shape, *parsed) else 0.0)


def format_reward(text: str, shape: str) -> float:
    """The format reward of a raw sample (a GRPO reward function needs only the text)."""
    return format_score(*parse_distilled(text), shape)


def alignment_rewards(embedder: Embedder, clusters: Sequence[Sequence[Record]],
                      pairs: Sequence[tuple[int, tuple[str, str]]], threshold: float = 0.8) -> list[tuple[float, float]]:
    """LM-Mixup's alignment reward: (cosine, 1.0 or 0.0) of each candidate pair against the centroid of its
    cluster's sources (``pairs``: (cluster index, (question, answer))), 1.0 when the cosine reaches
    ``threshold``. Every cluster that has a candidate is embedded once."""
    if not pairs:
        return []
    cluster_ids = sorted({i for i, _ in pairs})
    src_texts, owner = [], []
    for i in cluster_ids:
        for r in clusters[i]:
            src_texts.append(pair_text(r))
            owner.append(i)
    src = embed_texts(embedder, src_texts)
    owner_arr = np.asarray(owner)
    centroid = {i: l2_normalise(src[owner_arr == i].mean(axis=0, keepdims=True))[0] for i in cluster_ids}
    gen = embed_texts(embedder, [q + "\n" + a for _, (q, a) in pairs])
    out = []
    for (i, _), v in zip(pairs, gen):
        cos = float(np.dot(v, centroid[i]))
        out.append((cos, 1.0 if cos >= threshold else 0.0))
    return out


def threshold_quality(score_fn: Callable[[Sequence[tuple[str, str]]], Sequence[float | None]],
                      cut: float = 4.0) -> QualityFn:
    """Wrap a 0-5 scorer (kNN-Bayes expected score, curated rating) into LM-Mixup's 0/1 reward."""
    def reward(pairs: Sequence[tuple[str, str]]) -> list[float | None]:
        return [None if s is None else float(s >= cut) for s in score_fn(pairs)]
    return reward


def heuristic_quality(pairs: Sequence[tuple[str, str]]) -> list[float]:
    """A dependency-free placeholder quality reward (NOT a quality model): longer, lexically
    varied answers that end properly score higher. Use a rater or kNN-Bayes for real runs."""
    out = []
    for q, a in pairs:
        words = a.split()
        if not words or not q.strip():
            out.append(0.0)
            continue
        variety = len({w.lower() for w in words}) / len(words)
        length = min(len(words), 120) / 120
        ends = 1.0 if re.search(r"[.!?)\]`\"']\s*$", a) else 0.5
        out.append(round(float(0.5 * length + 0.3 * variety + 0.2 * ends), 4))
    return out


@dataclass
class RewardWeights:
    quality: float = 0.5
    alignment: float = 0.4
    format: float = 0.1

    def total(self, quality: float | None, alignment: float, format: float) -> float:
        """The weighted reward of one sample (a quality that could not be scored counts 0)."""
        return round(self.quality * (quality or 0.0) + self.alignment * alignment + self.format * format, 6)


def _pair_text(pair: tuple[str, str]) -> str:
    # the same text the rating layer embeds: the turns joined by a newline
    return pair[0] + "\n" + pair[1]


class KNNBayesQuality:
    """The kNN-Bayes quality reward: 1 if the expected score over a rated library >= ``threshold`` (any object
    with ``reward(embeddings, threshold)`` and ``expected(embeddings)``, e.g. ``rating.knn_bayes.KNNBayes``)."""

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
    """The DS2 LLM rater as a reward: 1 if the compressed 0-5 score >= ``threshold``, None when the rating
    could not be parsed; ``expected``: the score itself (for ranking)."""

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
