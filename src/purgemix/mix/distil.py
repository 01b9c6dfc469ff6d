"""LM-Mixup cluster-to-one distillation with best-of-N selection by the three rewards.

cluster (2..20 records) -> prompt (members as ``Q:``/``A:`` blocks) -> N samples of
``<think>…</think><answer>Q: … A: …</answer>`` -> each parsed and scored by

- quality (weight 0.5): a pluggable callable over candidate (instruction, response) pairs that
  returns a reward in [0, 1] or ``None`` (could not be scored: recorded). The kNN-Bayes scorer or
  the LLM rater plug in here (``threshold_quality`` turns a 0-5 score into LM-Mixup's 0/1 reward);
- alignment (0.4): 1 if cosine(embed(answer), centroid of the sources' embeddings) >= 0.8;
- format (0.1): 0.5 for the exact think/answer shape + 0.5 for the task's shape in the answer.

The best sample (highest total, first on ties) is kept if its total reaches ``min_reward``;
otherwise the cluster's output is dropped with all reward values recorded.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..core.record import Record, response_of
from ..models.base import LLM, Embedder, GenerationParams
from ..vectors.neighbours import l2_normalise
from .fuse import generate_batched
from .templates import TemplateSet
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


def detect_shape(instruction: str, response: str) -> str:
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


def cluster_shape(records: Sequence[Record]) -> str:
    shapes = [detect_shape(prompt_of(r), response_of(r)) for r in records]
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


def format_reward(text: str, shape: str) -> float:
    parsed, exact = parse_distilled(text)
    r = 0.5 if exact else 0.0
    if parsed is not None and shape_ok(shape, *parsed):
        r += 0.5
    return r


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


@dataclass
class DistilConfig:
    samples: int = 4  # best-of-N
    weights: RewardWeights = field(default_factory=RewardWeights)
    alignment_threshold: float = 0.8
    min_reward: float = 0.5  # best total below this: dropped
    min_size: int = 2
    max_size: int = 20
    generation: GenerationParams = field(default_factory=lambda: GenerationParams(temperature=1.0, max_tokens=1024))
    batch_size: int = 512

    def params(self) -> dict[str, Any]:
        d = {k: v for k, v in vars(self).items() if k not in ("generation", "weights")}
        d["weights"] = vars(self.weights)
        d["generation"] = self.generation.as_dict()
        return d


@dataclass
class DistilOutcome:
    parents: list[str]
    ok: bool
    instruction: str = ""
    response: str = ""
    shape: str = "qa"
    rewards: dict[str, Any] = field(default_factory=dict)  # of the chosen sample
    candidates: list[dict[str, Any]] = field(default_factory=list)  # rewards of every sample
    reason: str = ""
    template: dict[str, str] = field(default_factory=dict)


class Distiller:
    def __init__(self, llm: LLM, embedder: Embedder, quality: QualityFn | None = None, *,
                 config: DistilConfig | None = None, templates: TemplateSet | None = None):
        self.llm = llm
        self.embedder = embedder
        self.quality = quality or heuristic_quality
        self.config = config or DistilConfig()
        self.templates = templates or TemplateSet()

    def distil(self, clusters: Sequence[Sequence[Record]]) -> list[DistilOutcome]:
        cfg = self.config
        template = self.templates.get("distil")
        outcomes = [DistilOutcome(parents=[r["id"] for r in c], ok=False, template=template.ref()) for c in clusters]
        valid = [i for i, c in enumerate(clusters) if cfg.min_size <= len(c) <= cfg.max_size]
        for i, c in enumerate(clusters):
            if not cfg.min_size <= len(c) <= cfg.max_size:
                outcomes[i].reason = f"cluster size {len(c)} outside [{cfg.min_size}, {cfg.max_size}]"
        shapes = {i: cluster_shape(clusters[i]) for i in valid}
        convs = []
        for i in valid:
            srcs = [{"instruction": prompt_of(r), "response": response_of(r)} for r in clusters[i]]
            convs.append(template.messages(sources=srcs, shape_hint=SHAPE_HINTS[shapes[i]]))
        params = dataclasses.replace(cfg.generation, n=cfg.samples)
        gens = generate_batched(self.llm, convs, params, cfg.batch_size)
        # flatten every parsed sample for batched reward computation
        flat: list[tuple[int, int, tuple[str, str]]] = []
        per: dict[int, list[dict[str, Any]]] = {}
        for i, gen in zip(valid, gens):
            outcomes[i].shape = shapes[i]
            if not gen.ok:
                outcomes[i].reason = f"generation failed: {gen.error or 'no text'}"[:300]
                continue
            per[i] = []
            for s, text in enumerate(gen.texts):
                parsed, exact = parse_distilled(text)
                fmt = (0.5 if exact else 0.0) + (0.5 if parsed is not None and shape_ok(shapes[i], *parsed) else 0.0)
                per[i].append({"sample": s, "format": fmt, "parsed": parsed is not None})
                if parsed is not None:
                    flat.append((i, s, parsed))
        quality = list(self.quality([p for _, _, p in flat])) if flat else []
        if len(quality) != len(flat):
            raise ValueError(f"quality callable returned {len(quality)} values for {len(flat)} pairs")
        align = self._alignment(clusters, flat)
        w = cfg.weights
        for (i, s, pair), q, (cos, a) in zip(flat, quality, align):
            cand = per[i][s]
            cand.update({"quality": None if q is None else float(q), "alignment": a, "cosine": round(cos, 4),
                         "pair": pair})
        for i, cands in per.items():
            o = outcomes[i]
            for cand in cands:
                q = cand.get("quality")
                a = cand.get("alignment", 0.0)
                cand["total"] = round(w.quality * (q or 0.0) + w.alignment * a + w.format * cand["format"], 6)
            scored = [c for c in cands if c["parsed"]]
            o.candidates = [{k: v for k, v in c.items() if k != "pair"} for c in cands]
            if not scored:
                o.reason = "no sample had a <answer> with Q:/A:"
                continue
            best = max(scored, key=lambda c: (c["total"], -c["sample"]))
            o.rewards = {k: best.get(k) for k in ("quality", "alignment", "cosine", "format", "total", "sample")}
            o.instruction, o.response = best["pair"]
            if best.get("quality") is None:
                o.reason = "quality reward unavailable for the best sample"
            elif best["total"] < cfg.min_reward:
                o.reason = f"best reward {best['total']:.3f} < {cfg.min_reward}"
            else:
                o.ok = True
        return outcomes

    def _alignment(self, clusters: Sequence[Sequence[Record]], flat) -> list[tuple[float, float]]:
        if not flat:
            return []
        cluster_ids = sorted({i for i, _, _ in flat})
        src_texts, owner = [], []
        for i in cluster_ids:
            for r in clusters[i]:
                src_texts.append(pair_text(r))
                owner.append(i)
        src = embed_texts(self.embedder, src_texts)
        owner_arr = np.asarray(owner)
        centroid = {i: l2_normalise(src[owner_arr == i].mean(axis=0, keepdims=True))[0] for i in cluster_ids}
        gen = embed_texts(self.embedder, [q + "\n" + a for _, _, (q, a) in flat])
        out = []
        for (i, _, _), v in zip(flat, gen):
            cos = float(np.dot(v, centroid[i]))
            out.append((cos, 1.0 if cos >= self.config.alignment_threshold else 0.0))
        return out
