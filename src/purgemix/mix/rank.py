"""Rank and mix: keep new pairs at or above a quality cut, rank them by quality then long-tail
score, and mix them with the high-quality split at a ratio (default 5:5) up to a target size,
skipping duplicates (exact content, and semantic when embeddings are given) as they are picked.
Also: which split a record belongs to (``SplitSpec``)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..core.numbers import finite_number
from ..core.record import Record, content_hash
from ..vectors.neighbours import l2_normalise

HQ, LQ, MID, NEW = "hq", "lq", "mid", "new"


@dataclass(frozen=True)
class SplitSpec:
    """A record's split: ``meta[meta_key]`` when set (``hq``/``lq``/``new``/...); else from
    the first of ``score_keys`` present in ``scores`` (HQ at or above ``hq_min``, LQ at or below
    ``lq_max``, the band between is ``mid``); else ``missing``. Records created by fuse/distil
    (``meta._split == "new"``) are always ``new``."""

    meta_key: str = "_split"
    score_keys: tuple[str, ...] = ("ds2.curated", "ds2.score")
    hq_min: float = 4.0
    lq_max: float = 3.0
    missing: str = LQ

    def __call__(self, record: Record) -> str:
        if record.get("meta", {}).get("_split") == NEW:  # records created by fuse/distil
            return NEW
        v = record.get("meta", {}).get(self.meta_key)
        if isinstance(v, str) and v:
            return v
        s = first_score(record, self.score_keys)
        if s is not None:
            return HQ if s >= self.hq_min else (LQ if s <= self.lq_max else MID)
        return self.missing

    def params(self) -> dict[str, Any]:
        return {**vars(self), "score_keys": list(self.score_keys)}


def first_score(record: Record, keys: str | Sequence[str]) -> float | None:
    """The first of ``keys`` with a number in ``record["scores"]``."""
    scores = record.get("scores", {})
    for key in ([keys] if isinstance(keys, str) else keys):
        v = finite_number(scores.get(key))
        if v is not None:
            return v
    return None


def parse_ratio(ratio: str | Sequence[float]) -> tuple[float, float]:
    if isinstance(ratio, str):
        parts = re.split(r"[:/]", ratio)
        if len(parts) != 2:
            raise ValueError(f"ratio must look like 'NEW:HQ' (e.g. 5:5), got '{ratio}'")
        a, b = float(parts[0]), float(parts[1])
    else:
        a, b = float(ratio[0]), float(ratio[1])
    if a < 0 or b < 0 or a + b <= 0:
        raise ValueError(f"ratio parts must be >= 0 and not both 0, got {a}:{b}")
    return a, b


def exact_key(record: Record) -> str:
    msgs = [{"role": m["role"], "content": re.sub(r"\s+", " ", m["content"]).strip().lower()}
            for m in record["messages"]]
    return content_hash(msgs)


@dataclass
class MixPlan:
    selected: list[int] = field(default_factory=list)  # indices into new + hq (new first), pick order
    reasons: dict[int, dict[str, Any]] = field(default_factory=dict)  # not selected: reason (+ into)
    counts: dict[str, int] = field(default_factory=dict)


def rank_and_mix(
    new: Sequence[Record],
    hq: Sequence[Record],
    *,
    quality_key: str = "mix.quality",
    hq_quality_key: str | Sequence[str] = ("ds2.curated", "ds2.score"),
    longtail_key: str | Sequence[str] = "mix.longtail",
    quality_cut: float | None = 0.5,
    ratio: str | Sequence[float] = "5:5",
    target: int | None = None,
    fill: bool = True,
    embeddings: np.ndarray | None = None,
    dedup_threshold: float = 0.95,
) -> MixPlan:
    """Plan the mix. Indices ``0..len(new)-1`` are new records, the rest HQ ones. ``embeddings``
    (rows for new + hq, same order) turn on the semantic part of the final dedup. HQ records are
    picked first so that an original wins over a new record that duplicates it."""
    a, b = parse_ratio(ratio)
    plan = MixPlan()
    n_new = len(new)
    pool_new: list[int] = []
    for i, r in enumerate(new):
        q = finite_number(r.get("scores", {}).get(quality_key))
        if quality_cut is not None and q is None:
            plan.reasons[i] = {"reason": "no quality score", "key": quality_key}
        elif quality_cut is not None and q < quality_cut:
            plan.reasons[i] = {"reason": "below quality cut", "quality": q, "cut": quality_cut}
        else:
            pool_new.append(i)

    def rank(idx: list[int], recs: Sequence[Record], qkey, offset: int) -> list[int]:
        def key(i: int):
            q, lt = first_score(recs[i - offset], qkey), first_score(recs[i - offset], longtail_key)
            return (-(q if q is not None else -math.inf), -(lt if lt is not None else -math.inf), recs[i - offset]["id"])
        return sorted(idx, key=key)

    ranked_new = rank(pool_new, new, quality_key, 0)
    ranked_hq = rank(list(range(n_new, n_new + len(hq))), hq, hq_quality_key, n_new)
    if target is None:
        want_new, want_hq = len(ranked_new), len(ranked_hq)
    else:
        want_new = int(round(target * a / (a + b)))
        want_hq = target - want_new
    records = list(new) + list(hq)
    emb = None if embeddings is None else l2_normalise(embeddings)
    seen: dict[str, int] = {}
    keys = [exact_key(r) for r in records]
    chosen_emb: list[int] = []
    # embeddings of the picked records, in pick order (grown by doubling: no copy per check)
    buf = None if emb is None else np.empty((max(16, min(len(records), 1024)), emb.shape[1]), np.float32)

    def duplicate_of(i: int) -> tuple[int, float | None] | None:
        if keys[i] in seen:
            return seen[keys[i]], None
        if emb is not None and chosen_emb:
            sims = buf[: len(chosen_emb)] @ emb[i]
            j = int(sims.argmax())
            if sims[j] >= dedup_threshold:
                return chosen_emb[j], float(sims[j])
        return None

    def remember(i: int) -> None:
        nonlocal buf
        seen[keys[i]] = i
        if emb is not None:
            if len(chosen_emb) == len(buf):
                buf = np.concatenate([buf, np.empty_like(buf)])
            buf[len(chosen_emb)] = emb[i]
        chosen_emb.append(i)

    def take(ranked: list[int], want: int) -> list[int]:
        got, rest = 0, []
        for pos, i in enumerate(ranked):
            if got >= want:
                rest.extend(ranked[pos:])
                break
            d = duplicate_of(i)
            if d is not None:
                plan.reasons[i] = {"reason": "duplicate in mix", "into": records[d[0]]["id"],
                                   **({"cosine": round(d[1], 4)} if d[1] is not None else {})}
                continue
            plan.selected.append(i)
            remember(i)
            got += 1
        return rest

    rest_hq = take(ranked_hq, want_hq)
    rest_new = take(ranked_new, want_new)
    if fill and target is not None:
        short = target - len(plan.selected)
        if short > 0 and rest_new:
            rest_new = take(rest_new, short)
        short = target - len(plan.selected)
        if short > 0 and rest_hq:
            rest_hq = take(rest_hq, short)
    for i in rest_new + rest_hq:
        plan.reasons.setdefault(i, {"reason": "over target size", "target": target})
    sel_new = sum(1 for i in plan.selected if i < n_new)
    plan.counts = {"new_in": n_new, "hq_in": len(hq), "new_passing_cut": len(pool_new),
                   "selected_new": sel_new, "selected_hq": len(plan.selected) - sel_new,
                   "duplicates": sum(1 for r in plan.reasons.values() if r["reason"] == "duplicate in mix")}
    return plan
