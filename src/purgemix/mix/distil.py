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
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..core.record import Record, response_of
from ..models.base import LLM, Embedder, GenerationParams, config_params
from .fuse import generate_batched
from .rewards import (
    SHAPE_HINTS,
    QualityFn,
    RewardWeights,
    alignment_rewards,
    cluster_task_shape,
    format_score,
    heuristic_quality,
    parse_distilled,
)
from .templates import TemplateSet
from .text import DISTIL_GRAMMAR, prompt_of


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
    constrained: bool = True  # DISTIL_GRAMMAR where the backend supports grammars (the parser stays tolerant)

    def params(self) -> dict[str, Any]:
        return config_params(self)


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
        shapes = {i: cluster_task_shape(clusters[i]) for i in valid}
        convs = []
        for i in valid:
            srcs = [{"instruction": prompt_of(r), "response": response_of(r)} for r in clusters[i]]
            convs.append(template.messages(sources=srcs, shape_hint=SHAPE_HINTS[shapes[i]]))
        params = dataclasses.replace(cfg.generation, n=cfg.samples,
                                     grammar=DISTIL_GRAMMAR if cfg.constrained else cfg.generation.grammar)
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
                fmt = format_score(parsed, exact, shapes[i])
                per[i].append({"sample": s, "format": fmt, "parsed": parsed is not None})
                if parsed is not None:
                    flat.append((i, s, parsed))
        quality = list(self.quality([p for _, _, p in flat])) if flat else []
        if len(quality) != len(flat):
            raise ValueError(f"quality callable returned {len(quality)} values for {len(flat)} pairs")
        align = alignment_rewards(self.embedder, clusters, [(i, p) for i, _, p in flat], cfg.alignment_threshold)
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
                cand["total"] = w.total(q, a, cand["format"])
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
