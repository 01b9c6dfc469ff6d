"""Pipeline stages of neural reconstruction.

``semdedup`` (FitMapStage)  semantic duplicates merged into the best-scored member they duplicate.
``fuse``     (GlobalStage)  ENTP: LQ pool -> clusters -> related pairs -> fused pairs (with the
                            feedback loop); controls: random pairing, 1-to-1 rewrite, no feedback.
``distil``   (GlobalStage)  LM-Mixup: LQ pool -> capacity-constrained clusters -> one pair each,
                            best-of-N by the three rewards.
``mix``      (GlobalStage)  new pairs at or above a quality cut, ranked, mixed with HQ at a ratio up
                            to a target size, final dedup.

Ledger: a consumed parent is ``merged`` into the new record; a new record that fails its checks is
``created`` (naming its parents) and then ``dropped`` with its reasons and text in the event; its
parents pass through unchanged (with ``meta._mix_failed``) for a later stage to decide. Records
these stages do not touch pass through with no event.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from ..core.numbers import finite_number
from ..core.record import Record, response_of
from ..core.stage import FitMapStage, GlobalStage, MapStage, Result, register_stage
from ..models.base import LLM, Embedder, model_usage, usage_of
from ..vectors.cluster import CapacitySpec, capacity_clusters, choose_k, default_ks, kmeans
from ..vectors.diversity import mmr, pair_related, random_pairs
from ..vectors.neighbours import longtail
from .checks import SymbolicChecks
from .distil import DistilConfig, Distiller
from .estimate import generation_probe, probe_stage
from .fuse import Fuser, FusionConfig
from .rank import HQ, LQ, NEW, SplitSpec, rank_and_mix
from .rewards import QualityFn
from .semdedup import semantic_duplicates
from .templates import TemplateSet
from .text import embed_records, new_record
from .verdict import audit


def _collect(batches: Iterable[list[Record]]) -> list[Record]:
    return [r for b in batches for r in b]


def _name(obj: Any) -> str | None:
    if obj is None:
        return None
    return str(getattr(obj, "name", None) or getattr(obj, "__name__", None) or type(obj).__name__)


def _emit(passthrough: list[Record], final: Result, shard_size: int) -> Iterator[Result]:
    """Pass-through records in shards, then the new records with every event."""
    for i in range(0, len(passthrough), max(1, shard_size)):
        yield Result(records=passthrough[i:i + shard_size])
    yield final


def _annotate_failed(records: Sequence[Record], stage: str, reason: str) -> None:
    for r in records:
        r["meta"]["_mix_failed"] = {"stage": stage, "reason": reason}


def _quality_scores(quality: QualityFn | None, pairs: list[tuple[str, str]]) -> list[float | None]:
    if quality is None or not pairs:
        return [None] * len(pairs)
    out = list(quality(pairs))
    if len(out) != len(pairs):
        raise ValueError(f"quality callable returned {len(out)} values for {len(pairs)} pairs")
    return [None if v is None else float(v) for v in out]


def cluster_artifact(records: Sequence[Record], labels: np.ndarray, x: np.ndarray) -> dict[str, np.ndarray]:
    """What the run report draws: ids, cluster labels and a 2-D PCA projection of the embeddings."""
    xc = x - x.mean(axis=0, keepdims=True)
    sample = xc[np.random.default_rng(0).choice(len(xc), min(len(xc), 5000), replace=False)]
    _, _, vt = np.linalg.svd(sample, full_matrices=False)
    return {"ids": np.array([r["id"] for r in records]), "labels": np.asarray(labels, dtype=np.int32),
            "xy": (xc @ vt[:2].T).astype(np.float32)}


# --- pools by input file ---------------------------------------------------------------------


@register_stage
class TagSplitStage(MapStage):
    """Sets ``meta._split`` from the input file a record came from (``record["source"]``), e.g.
    ``{"hq.jsonl": "hq", "lq.jsonl": "lq"}``. An annotation: no events."""

    name = "tag-split"
    version = "1"
    reads = ("source",)
    writes = ("meta",)

    def __init__(self, by_source: dict[str, str], meta_key: str = "_split"):
        self.by_source, self.meta_key = dict(by_source), meta_key

    def params(self) -> dict[str, Any]:
        return {"by_source": self.by_source, "meta_key": self.meta_key}

    def process(self, records: list[Record]) -> Result:
        for r in records:
            split = self.by_source.get(r.get("source", ""))
            if split:
                r["meta"][self.meta_key] = split
        return Result(records=records)


# --- semantic dedup ---------------------------------------------------------------------------


@register_stage
class SemDedupStage(FitMapStage):
    """SemDeDup: within k-means clusters, cosine >= threshold are duplicates; the best member by
    ``scores[score_key]`` (ties: longer response, then input order) is kept, the others are merged
    into it with ``duplicate_of``."""

    name = "semdedup"
    section = "mix.clusters"
    version = "1"
    reads = ("messages", "scores")
    writes = ()

    def __init__(self, embedder: Embedder, *, threshold: float = 0.95, score_key: str | None = None,
                 cluster_size: int = 1000, seed: int = 0, batch_size: int = 256):
        self.embedder = embedder
        self.threshold = threshold
        self.score_key = score_key
        self.cluster_size = cluster_size
        self.seed = seed
        self.batch_size = batch_size

    def params(self) -> dict[str, Any]:
        return {"embedder": _name(self.embedder), "threshold": self.threshold, "score_key": self.score_key,
                "cluster_size": self.cluster_size, "seed": self.seed}

    def __getstate__(self) -> dict[str, Any]:  # workers only need the fitted state
        return {k: v for k, v in self.__dict__.items() if k != "embedder"} | {"embedder": None}

    def fit(self, batches: Iterable[list[Record]]) -> dict[str, Any]:
        records = _collect(batches)
        if not records:
            return {"duplicate_of": {}}
        x = embed_records(self.embedder, records, self.batch_size)
        n = len(records)
        score = np.zeros(n)
        if self.score_key:
            score = np.array([-math.inf if (v := finite_number(r["scores"].get(self.score_key))) is None else v
                              for r in records])
        # ties: longer response first (tiny weight below any score difference), then input order
        length = np.array([len(response_of(r)) for r in records], dtype=np.float64)
        rank_score = np.lexsort((-np.arange(n), length, score))  # ascending: worst first
        order_score = np.empty(n)
        order_score[rank_score] = np.arange(n)
        dup = semantic_duplicates(x, order_score, threshold=self.threshold, cluster_size=self.cluster_size,
                                  seed=self.seed)
        out: dict[str, Any] = {}
        for i in np.flatnonzero(dup >= 0).tolist():
            j = int(dup[i])
            out[records[i]["id"]] = [records[j]["id"], round(float(x[i] @ x[j]), 4)]
        return {"duplicate_of": out, "n": n}

    def process(self, records: list[Record], state: dict[str, Any]) -> Result:
        dups = state["duplicate_of"]
        result = Result()
        for r in records:
            if r["id"] in dups:
                keeper, cos = dups[r["id"]]
                result.merge(r, self.name, into=keeper, reason="semantic duplicate", duplicate_of=keeper, cosine=cos)
            else:
                result.records.append(r)
        return result


# --- ENTP fusion --------------------------------------------------------------------------------


class _GeneratingStage(GlobalStage):
    """What fuse and distil share: they report what they learnt (``_info``: pairing or clustering figures)
    with their generator's usage in this stage, and save the LQ split's clusters (``_artifacts``)."""

    llm: LLM
    _info: dict[str, Any] = {}
    _artifacts: dict[str, dict[str, Any]] = {}
    _usage_before: dict[str, Any] | None = None
    _estimate: dict[str, Any] | None = None
    # set by the builder, outside the fingerprint: `run --estimate` stops after the probe; prices per 1M tokens
    estimate_only: bool = False
    prices: tuple[float, float] = (0.0, 0.0)

    def report(self) -> dict[str, Any]:
        return {**self._info, **model_usage(self.llm, self._usage_before),
                **({"estimate": self._estimate} if self._estimate else {})}

    def artifacts(self) -> dict[str, dict[str, Any]]:
        return self._artifacts

    def _accept(self, final: Result, consumed: set[str], parents: list[Record], rec: Record, reason: str,
                **detail: Any) -> None:
        """A new pair that passed: created from its parents, each merged into it (``reason``), or rewritten
        when it has one parent (the 1-to-1 rewrite control)."""
        final.create(rec, self.name, [p["id"] for p in parents], **detail)
        for p in parents:
            if len(parents) > 1:
                final.merge(p, self.name, into=rec["id"], reason=reason)
            else:
                final.rewrite(p, self.name, into=rec["id"], reason="rewritten")
            consumed.add(p["id"])

    def _reject(self, final: Result, parents: list[Record], why: str, rec: Record | None = None,
                reason: str = "", **detail: Any) -> None:
        """A group that made no pair: its text (when there is some) is kept as a dropped new record with
        ``reason``, and its parents pass on marked with ``why``."""
        if rec is not None:
            final.create_dropped(rec, self.name, [p["id"] for p in parents], reason, **detail)
        _annotate_failed(parents, self.name, why)

    def _emit_rest(self, records: list[Record], final: Result, consumed: set[str]) -> Iterator[Result]:
        """The events, then every record not consumed by a new pair, in shards."""
        yield from _emit([r for r in records if r["id"] not in consumed], final, self.shard_size)


@register_stage
class FuseStage(_GeneratingStage):
    """ENTP two-to-one fusion of the LQ split.

    ``pairing``: ``cluster`` (k-means, k by silhouette when ``k="auto"``; MMR representatives per
    cluster; most related pairs first), ``random`` (control) or ``none`` (the 1-to-1 rewrite
    control: ``budget`` single records rewritten; by default as many as pairs would be made,
    i.e. the same number of LLM groups). ``config.feedback=False`` is the no-feedback control.
    ``quality`` (optional) scores the new pairs into ``scores["mix.quality"]``."""

    name = "fuse"
    section = "mix.clusters"
    version = "1"
    reads = ("messages", "meta", "scores")
    writes = ("messages", "lineage", "scores")

    def __init__(self, llm: LLM, embedder: Embedder | None = None, *, config: FusionConfig | None = None,
                 pairing: str = "cluster", k: int | str = "auto", ks: Sequence[int] | None = None,
                 representatives: float = 1.0, mmr_lambda: float = 0.7, min_pair_similarity: float = 0.0,
                 budget: int | None = None, quality: QualityFn | None = None, split: SplitSpec | None = None,
                 templates: TemplateSet | None = None, checks: SymbolicChecks | None = None,
                 checker: LLM | None = None, silhouette_sample: int = 2000, seed: int = 0,
                 shard_size: int = 10_000, judge: LLM | None = None):
        if pairing not in ("cluster", "random", "none"):
            raise ValueError(f"pairing must be cluster, random or none, got '{pairing}'")
        if pairing == "cluster" and embedder is None:
            raise ValueError("cluster pairing needs an embedder")
        self.llm, self.embedder, self.checker, self.judge = llm, embedder, checker, judge
        self.config = config or FusionConfig(operator="rewrite" if pairing == "none" else "merged_corpus")
        if pairing == "none" and self.config.operator not in ("rewrite", "compose"):  # compose rewrites singles too
            self.config = FusionConfig(**{**vars(self.config), "operator": "rewrite"})
        self.pairing, self.k, self.ks = pairing, k, list(ks) if ks else None
        self.representatives, self.mmr_lambda = representatives, mmr_lambda
        self.min_pair_similarity, self.budget = min_pair_similarity, budget
        self.quality, self.split = quality, split or SplitSpec()
        self.templates = templates or TemplateSet()
        self.checks = checks or SymbolicChecks()
        self.silhouette_sample, self.seed, self.shard_size = silhouette_sample, seed, shard_size

    def params(self) -> dict[str, Any]:
        return {"llm": _name(self.llm), "embedder": _name(self.embedder), "checker": _name(self.checker),
                "config": self.config.params(), "pairing": self.pairing, "k": self.k, "ks": self.ks,
                "representatives": self.representatives, "mmr_lambda": self.mmr_lambda,
                "min_pair_similarity": self.min_pair_similarity, "budget": self.budget,
                "quality": _name(self.quality), "split": self.split.params(),
                "templates": self.templates.hashes(), "checks": self.checks.params(), "seed": self.seed,
                "judge": _name(self.judge)}

    def groups(self, lq: list[Record]) -> list[tuple[list[int], dict[str, Any]]]:
        """Index groups of ``lq`` to fuse (pairs, or singles for the rewrite control) with their
        pairing info, budget applied."""
        n = len(lq)
        info: dict[str, Any] = {"lq": n, "pairing": self.pairing}
        out: list[tuple[list[int], dict[str, Any]]] = []
        if self.pairing == "cluster" and n >= 2:
            x = embed_records(self.embedder, lq)
            if self.k == "auto":
                k, scores = choose_k(x, self.ks or default_ks(n), sample=self.silhouette_sample, seed=self.seed)
                info["silhouette"] = {str(kk): v for kk, v in scores.items()}
            else:
                k = max(1, min(int(self.k), n))
            info["k"] = k
            km = kmeans(x, k, seed=self.seed)
            self._artifacts = {"clusters.npz": cluster_artifact(lq, km.labels, x)}
            for c in range(len(km.centroids)):
                members = np.flatnonzero(km.labels == c)
                if len(members) < 2:
                    continue
                count = max(2, math.ceil(self.representatives * len(members)))
                reps = members if count >= len(members) else mmr(x, members, count, lam=self.mmr_lambda,
                                                                  centroid=km.centroids[c])
                pairs, _ = pair_related(x, reps, min_similarity=self.min_pair_similarity, seed=self.seed)
                out.extend(([i, j], {"cluster": int(c), "cosine": round(s, 4)}) for i, j, s in pairs)
            out.sort(key=lambda g: -g[1]["cosine"])  # most related first when a budget cuts
        elif self.pairing == "random":
            pairs, _ = random_pairs(np.arange(n), seed=self.seed)
            out = [([i, j], {}) for i, j, _ in pairs]
        elif self.pairing == "none":
            count = n // 2 if self.budget is None else self.budget
            rng = np.random.default_rng(self.seed)
            out = [([int(i)], {}) for i in sorted(rng.choice(n, size=min(count, n), replace=False).tolist())]
        if self.budget is not None:
            out = out[: self.budget]
        info["groups"] = len(out)
        self._info = info
        return out

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        self._usage_before = usage_of(self.llm)
        records = _collect(batches)
        lq_pos = [i for i, r in enumerate(records) if self.split(r) == LQ]
        lq = [records[i] for i in lq_pos]
        groups = self.groups(lq)
        fuser = Fuser(self.llm, config=self.config, templates=self.templates, checks=self.checks,
                      checker=self.checker)
        items = [[lq[i] for i in g] for g, _ in groups]

        probe_stage(self, items, generation_probe(self, fuser.fuse, rate=True),  # sends what the step will (cached)
                    self.checker, getattr(self.quality, "llm", None), self.judge)
        outcomes = fuser.fuse(items)
        ok = [o for o in outcomes if o.ok]
        quality = dict(zip((id(o) for o in ok), _quality_scores(self.quality, [(o.instruction, o.response) for o in ok])))
        final, made = Result(), []
        consumed: set[str] = set()
        for (g, pinfo), o in zip(groups, outcomes):
            parents = [lq[i] for i in g]
            pids = [p["id"] for p in parents]
            lineage = {"operator": o.operator, "operators": [h["operator"] for h in o.history],
                       "template": o.template, "model": _name(self.llm),
                       "checker": _name(self.checker or self.llm) if self.config.feedback and self.config.llm_check else None,
                       "cycles": o.cycles, "pairing": {"method": self.pairing, **pinfo},
                       "checks": o.checks, "feedback": self.config.feedback}
            if o.ok:
                q = quality.get(id(o))
                lineage["rewards"] = {"quality": q}
                rec = new_record(o.instruction, o.response, pids, stage=self.name, lineage=lineage)
                if q is not None:
                    rec["scores"]["mix.quality"] = q
                self._accept(final, consumed, parents, rec, "fused", operator=o.operator, cycles=o.cycles)
                made.append((rec, parents))
            elif o.instruction or o.response:
                lineage["errors"] = o.errors
                rec = new_record(o.instruction, o.response, pids, stage=self.name, lineage=lineage)
                self._reject(final, parents, o.reason, rec, f"fusion failed: {o.reason}", errors=o.errors,
                             cycles=o.cycles, history=o.history)
            else:
                self._reject(final, parents, o.reason)
        audit(self, made)
        yield from self._emit_rest(records, final, consumed)


# --- LM-Mixup distillation ----------------------------------------------------------------------


@register_stage
class DistilStage(_GeneratingStage):
    """LM-Mixup cluster-to-one distillation of the LQ split (capacity-constrained clusters)."""

    name = "distil"
    section = "mix.clusters"
    version = "1"
    reads = ("messages", "meta", "scores")
    writes = ("messages", "lineage", "scores")

    def __init__(self, llm: LLM, embedder: Embedder, quality: QualityFn | None = None, *,
                 config: DistilConfig | None = None, capacity: CapacitySpec | None = None,
                 split: SplitSpec | None = None, templates: TemplateSet | None = None,
                 max_clusters: int | None = None, seed: int = 0, shard_size: int = 10_000, judge: LLM | None = None):
        self.llm, self.embedder, self.quality, self.judge = llm, embedder, quality, judge
        self.config = config or DistilConfig()
        self.capacity = capacity or CapacitySpec()
        self.split = split or SplitSpec()
        self.templates = templates or TemplateSet()
        self.max_clusters, self.seed, self.shard_size = max_clusters, seed, shard_size

    def params(self) -> dict[str, Any]:
        return {"llm": _name(self.llm), "embedder": _name(self.embedder),
                "quality": _name(self.quality) or "heuristic_quality",
                "config": self.config.params(), "capacity": vars(self.capacity), "split": self.split.params(),
                "template": self.templates.get("distil").hash, "max_clusters": self.max_clusters, "seed": self.seed,
                "judge": _name(self.judge)}

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        self._usage_before = usage_of(self.llm)
        records = _collect(batches)
        lq = [r for r in records if self.split(r) == LQ]
        clusters: list[np.ndarray] = []
        if lq:
            x = embed_records(self.embedder, lq)
            clustering = capacity_clusters(x, self.capacity, seed=self.seed)
            self._artifacts = {"clusters.npz": cluster_artifact(lq, clustering.labels, x)}
            clusters = clustering.members()
            self._info = {"lq": len(lq), **clustering.info}
        if self.max_clusters is not None and len(clusters) > self.max_clusters:
            pick = np.random.default_rng(self.seed).choice(len(clusters), self.max_clusters, replace=False)
            clusters = [clusters[i] for i in sorted(pick.tolist())]
        groups = [[lq[i] for i in c.tolist()] for c in clusters]
        distiller = Distiller(self.llm, self.embedder, self.quality, config=self.config, templates=self.templates)
        probe_stage(self, groups, generation_probe(self, distiller.distil, rate=False),
                    getattr(self.quality, "llm", None), self.judge)
        outcomes = distiller.distil(groups)
        final, made = Result(), []
        consumed: set[str] = set()
        for parents, o in zip(groups, outcomes):
            pids = [p["id"] for p in parents]
            lineage = {"operator": "distil", "template": o.template, "model": _name(self.llm),
                       "embedder": _name(self.embedder), "quality": _name(distiller.quality), "cycles": 0,
                       "shape": o.shape, "cluster_size": len(parents), "rewards": o.rewards,
                       "candidates": o.candidates}
            if o.ok:
                rec = new_record(o.instruction, o.response, pids, stage=self.name, lineage=lineage)
                rec["scores"].update({"mix.quality": o.rewards["quality"], "mix.reward": o.rewards["total"],
                                      "mix.alignment": o.rewards["alignment"], "mix.format": o.rewards["format"]})
                self._accept(final, consumed, parents, rec, "distilled", operator="distil", reward=o.rewards["total"])
                made.append((rec, parents))
            elif o.rewards:
                rec = new_record(o.instruction, o.response, pids, stage=self.name, lineage=lineage)
                self._reject(final, parents, o.reason, rec, "distillation below reward threshold"
                             if o.reason.startswith("best reward") else f"distillation failed: {o.reason}",
                             rewards=o.rewards, candidates=o.candidates, detail=o.reason)
            else:
                self._reject(final, parents, o.reason)
        audit(self, made)
        yield from self._emit_rest(records, final, consumed)


# --- rank and mix -------------------------------------------------------------------------------


@register_stage
class MixStage(GlobalStage):
    """New pairs at or above ``quality_cut`` ranked by quality then long-tail score, mixed with
    the HQ split at ``ratio`` (new:HQ) up to ``target`` records; duplicates skipped as picked.
    Records of other splits (LQ left over, mid band) are dropped as not mixed. With an embedder,
    missing long-tail scores are computed (k nearest within each pool) and the final dedup is
    also semantic."""

    name = "mix"
    section = "mix"
    version = "1"
    reads = ("messages", "meta", "scores")
    writes = ("scores",)

    def __init__(self, *, target: int | None = None, ratio: str = "5:5", quality_key: str = "mix.quality",
                 hq_quality_key: str | Sequence[str] = ("ds2.curated", "ds2.score"),
                 longtail_key: str = "mix.longtail",
                 quality_cut: float | None = 0.5, fill: bool = True, embedder: Embedder | None = None,
                 dedup_threshold: float = 0.95, longtail_k: int = 15, split: SplitSpec | None = None,
                 shard_size: int = 10_000):
        self.target, self.ratio = target, ratio
        self.quality_key, self.hq_quality_key, self.longtail_key = quality_key, hq_quality_key, longtail_key
        self.quality_cut, self.fill, self.embedder = quality_cut, fill, embedder
        self.dedup_threshold, self.longtail_k = dedup_threshold, longtail_k
        self.split, self.shard_size = split or SplitSpec(), shard_size
        self._plan: Any = None

    def params(self) -> dict[str, Any]:
        return {k: (_name(v) if k == "embedder" else v.params() if k == "split" else v)
                for k, v in vars(self).items() if k not in ("shard_size", "_plan")}

    def report(self) -> dict[str, Any]:
        """The mix's counts: new pairs in and past the cut, HQ in, selected of each, duplicates skipped."""
        return dict(getattr(self._plan, "counts", None) or {})

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        records = _collect(batches)
        new, hq, result = [], [], Result()
        for r in records:
            s = self.split(r)
            if s == NEW:
                new.append(r)
            elif s == HQ:
                hq.append(r)
            else:
                result.drop(r, self.name, f"not mixed: {s} split")
        pool = new + hq
        emb = None
        if self.embedder is not None and pool:
            emb = embed_records(self.embedder, pool)
            for part, lo, hi in (("new", 0, len(new)), ("hq", len(new), len(pool))):
                if hi - lo >= 2:
                    lt = longtail(emb[lo:hi], self.longtail_k)
                    for r, v in zip(pool[lo:hi], lt.tolist()):
                        r["scores"].setdefault(self.longtail_key, round(float(v), 6))
        plan = rank_and_mix(new, hq, quality_key=self.quality_key, hq_quality_key=self.hq_quality_key,
                            longtail_key=self.longtail_key, quality_cut=self.quality_cut, ratio=self.ratio,
                            target=self.target, fill=self.fill, embeddings=emb, dedup_threshold=self.dedup_threshold)
        self._plan = plan
        for i, why in sorted(plan.reasons.items()):
            detail = {k: v for k, v in why.items() if k not in ("reason", "into")}
            if "into" in why:
                result.merge(pool[i], self.name, into=why["into"], reason=why["reason"], **detail)
            else:
                result.drop(pool[i], self.name, why["reason"], **detail)
        selected = [pool[i] for i in plan.selected]
        yield from _emit(selected, result, self.shard_size)
