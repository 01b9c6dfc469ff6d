"""Clustering in embedding space: spherical k-means (mini-batch + Lloyd, numpy only), capacity-constrained
clusters (LM-Mixup), silhouette and ``choose_k``.
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .neighbours import blas_threads, chunks, l2_normalise


def nearest_centroids(x: np.ndarray, centroids: np.ndarray, top: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices (n, top) of the most similar centroids, best first, and their cosine similarities."""
    n, k = len(x), len(centroids)
    top = max(1, min(top, k))
    idx = np.empty((n, top), dtype=np.int64)
    sims = np.empty((n, top), dtype=np.float32)
    ct = centroids.T.copy()
    for s in chunks(n):
        block = x[s] @ ct
        if top == 1:
            best = block.argmax(axis=1)[:, None]
        else:
            part = np.argpartition(-block, top - 1, axis=1)[:, :top]
            order = np.argsort(-np.take_along_axis(block, part, axis=1), axis=1, kind="stable")
            best = np.take_along_axis(part, order, axis=1)
        idx[s] = best
        sims[s] = np.take_along_axis(block, best, axis=1)
    return idx, sims


@dataclass
class KMeansResult:
    centroids: np.ndarray  # (k, d), L2-normalised
    labels: np.ndarray  # (n,)
    similarity: np.ndarray  # (n,) cosine of each point to its centroid


def cluster_sums(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Per-cluster sums of rows (sort + reduceat: much faster than ``np.add.at``)."""
    sums = np.zeros((k, x.shape[1]), dtype=np.float32)
    if len(x) == 0:
        return sums
    if k <= 64:  # one-hot matmul in row chunks: BLAS speed, bounded memory
        for s in chunks(len(x)):
            onehot = np.zeros((k, s.stop - s.start), dtype=np.float32)
            onehot[labels[s], np.arange(s.stop - s.start)] = 1.0
            sums += onehot @ x[s]
        return sums
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    sums[sorted_labels[starts]] = np.add.reduceat(x[order], starts, axis=0)
    return sums


SKINNY_K = 256  # k-means with at most this many centres runs with single-threaded BLAS


SMALL = 5_000_000  # n * k at or below this: several inits, Lloyd to convergence


def kmeans(
    x: np.ndarray,
    k: int,
    *,
    seed: int = 0,
    batch_size: int = 2048,
    steps: int | None = None,
    lloyd: int | None = None,
    n_init: int | None = None,
) -> KMeansResult:
    """Spherical k-means on L2-normalised rows. Small problems (n*k <= 5M): ``n_init`` k-means++
    starts, Lloyd until stable (at most 20 passes), best total similarity wins. Large ones:
    one start, mini-batch steps, then ``lloyd`` (default 2) full passes in row chunks."""
    x = l2_normalise(x)
    n = len(x)
    if n == 0:
        return KMeansResult(np.zeros((0, x.shape[1]), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32))
    k = max(1, min(int(k), n))
    small = n * k <= SMALL
    n_init = n_init if n_init is not None else (3 if small else 1)
    lloyd = lloyd if lloyd is not None else (20 if small else 2)
    best: KMeansResult | None = None
    # with few centres the products are skinny: BLAS threads cost more than they save
    with blas_threads(1) if k <= SKINNY_K else nullcontext():
        for run in range(max(1, n_init)):
            rng = np.random.default_rng([seed, run])
            res = _kmeans_once(x, k, rng, batch_size, steps, lloyd, small)
            if best is None or float(res.similarity.sum()) > float(best.similarity.sum()) + 1e-6:
                best = res
    return best


def _kmeans_once(x, k, rng, batch_size, steps, lloyd, small) -> KMeansResult:
    n = len(x)
    if k <= 256 and n <= 50_000:
        centroids = _kmeans_pp(x, k, rng)
    else:  # k-means++ is sequential in k; random distinct points are the practical init at scale
        centroids = x[rng.choice(n, size=k, replace=False)].copy()
    if steps is None:
        steps = 0 if small else min(100, max(10, math.ceil(n / batch_size)))  # about one epoch
    if n > batch_size and steps:
        counts = np.zeros(k, dtype=np.float64)
        for _ in range(steps):
            batch = x[rng.integers(0, n, size=batch_size)]
            labels = (batch @ centroids.T).argmax(axis=1)
            sums = cluster_sums(batch, labels, k)
            hits = np.bincount(labels, minlength=k).astype(np.float64)
            counts += hits
            m = hits > 0
            eta = (hits[m] / counts[m])[:, None].astype(np.float32)
            centroids[m] = (1 - eta) * centroids[m] + eta * (sums[m] / hits[m][:, None])
            centroids = l2_normalise(centroids)
    labels, sims, prev = None, None, None
    passes = max(1, lloyd)
    for it in range(passes):
        idx, s = nearest_centroids(x, centroids)
        labels, sims = idx[:, 0], s[:, 0]
        if it == passes - 1 or (prev is not None and np.array_equal(prev, labels)):
            break
        prev = labels
        sums = cluster_sums(x, labels, k)
        empty = np.bincount(labels, minlength=k) == 0
        if empty.any():  # re-seed empty centres at the worst-fitting points
            worst = np.argsort(sims, kind="stable")[: int(empty.sum())]
            sums[empty] = x[worst]
        centroids = l2_normalise(sums)
    return KMeansResult(centroids, labels, sims)


def _kmeans_pp(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    sample = x if len(x) <= 20_000 else x[rng.choice(len(x), 20_000, replace=False)]
    first = int(rng.integers(len(sample)))
    chosen = [first]
    dist = np.clip(1.0 - sample @ sample[first], 0, None)
    for _ in range(1, k):
        total = dist.sum()
        nxt = int(rng.integers(len(sample))) if total <= 0 else int(rng.choice(len(sample), p=dist / total))
        chosen.append(nxt)
        dist = np.minimum(dist, np.clip(1.0 - sample @ sample[nxt], 0, None))
    return sample[chosen].copy()


@dataclass
class CapacitySpec:
    mean: float = 3.0
    std: float = 1.0
    min: int = 2
    max: int = 5

    def __post_init__(self) -> None:
        if not (1 <= self.min <= self.max):
            raise ValueError(f"capacity bounds must satisfy 1 <= min <= max, got {self.min}, {self.max}")


def capacities(n: int, spec: CapacitySpec, seed: int = 0, k: int | None = None) -> np.ndarray:
    """Cluster sizes from a clipped normal, adjusted to sum to ``n`` (every size within bounds)."""
    if n < spec.min:
        return np.zeros(0, dtype=np.int64)
    lo, hi = math.ceil(n / spec.max), n // spec.min
    if k is None:
        k = round(n / max(spec.mean, 1e-9))
    k = int(min(max(k, lo), hi))
    rng = np.random.default_rng(seed)
    caps = np.clip(np.rint(rng.normal(spec.mean, spec.std, size=k)), spec.min, spec.max).astype(np.int64)
    diff = n - int(caps.sum())
    while diff != 0:
        room = np.flatnonzero(caps < spec.max) if diff > 0 else np.flatnonzero(caps > spec.min)
        take = rng.choice(room, size=min(abs(diff), len(room)), replace=False)
        caps[take] += 1 if diff > 0 else -1
        diff = n - int(caps.sum())
    return caps


@dataclass
class Clustering:
    labels: np.ndarray  # (n,), -1 = in no cluster
    centroids: np.ndarray  # (k, d)
    sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    info: dict = field(default_factory=dict)

    def members(self) -> list[np.ndarray]:
        """Member indices of each non-empty cluster, ordered by cluster id."""
        valid = np.flatnonzero(self.labels >= 0)
        if len(valid) == 0:
            return []
        order = valid[np.argsort(self.labels[valid], kind="stable")]
        bounds = np.flatnonzero(np.diff(self.labels[order])) + 1
        return [g for g in np.split(order, bounds) if len(g)]


def capacity_clusters(
    x: np.ndarray,
    spec: CapacitySpec | None = None,
    *,
    k: int | None = None,
    seed: int = 0,
    candidates: int = 16,
) -> Clustering:
    """LM-Mixup's capacity-constrained k-means (see the module docstring)."""
    spec = spec or CapacitySpec()
    x = l2_normalise(x)
    n = len(x)
    caps = capacities(n, spec, seed=seed, k=k)
    if len(caps) == 0:
        return Clustering(np.full(n, -1, np.int64), np.zeros((0, x.shape[1] if x.ndim == 2 else 0), np.float32),
                          info={"k": 0, "reason": f"{n} points < minimum cluster size {spec.min}"})
    centroids, cand, cand_sim = _centroids_and_candidates(x, len(caps), seed, candidates)
    k = len(centroids)
    assert k == len(caps), (k, len(caps))
    room = caps.copy()
    labels = np.full(n, -1, dtype=np.int64)
    order = np.argsort(-cand_sim[:, 0], kind="stable")
    leftover: list[int] = []
    for i in order.tolist():
        for c in cand[i].tolist():
            if room[c] > 0:
                room[c] -= 1
                labels[i] = c
                break
        else:
            leftover.append(i)
    _assign_leftovers(x, centroids, labels, room, leftover)
    # dissolve clusters under the minimum and re-assign their members
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    small = (sizes > 0) & (sizes < spec.min)
    dissolved = int(small.sum())
    if dissolved:
        members = np.flatnonzero(small[np.maximum(labels, 0)] & (labels >= 0))
        labels[members] = -1
        room = np.where(small | (sizes == 0), 0, np.maximum(spec.max - sizes, 0))
        _assign_leftovers(x, centroids, labels, room, members.tolist(), allow_overflow=True)
    sizes = np.bincount(labels[labels >= 0], minlength=k)
    info = {"k": int((sizes > 0).sum()), "capacity": vars(spec) | {}, "dissolved": dissolved,
            "size_min": int(sizes[sizes > 0].min()) if (sizes > 0).any() else 0,
            "size_max": int(sizes.max()) if k else 0}
    return Clustering(labels, centroids, sizes, info)


FLAT_MAX_K = 512  # above this many centres, fit two-level (coarse groups, then centres inside)


def _centroids_and_candidates(x: np.ndarray, k: int, seed: int, candidates: int):
    """Centroids and, per point, its most similar centroids (best first) with their cosines.

    With many centres (LM-Mixup's N/3 at 100K points is ~33K) a flat fit costs n*k*d per pass;
    instead points are first grouped by a coarse k-means (about sqrt(k) groups) and each group
    gets centres in proportion to its size, fitted on its own members. A point's candidates are
    then the centres of its group (the greedy assignment falls back to all centres with room)."""
    n = len(x)
    if k <= FLAT_MAX_K or n < 4 * FLAT_MAX_K:
        km = kmeans(x, k, seed=seed)
        cand, sims = nearest_centroids(x, km.centroids, top=candidates)
        return km.centroids, cand, sims
    groups = kmeans(x, max(2, int(round(math.sqrt(k)))), seed=seed, lloyd=2)
    members = [np.flatnonzero(groups.labels == g) for g in range(len(groups.centroids))]
    members = [m for m in members if len(m)]
    sizes = np.array([len(m) for m in members], dtype=np.float64)
    ks = _allocate(k, sizes.astype(np.int64))
    top = max(1, candidates)
    cand = np.zeros((n, top), dtype=np.int64)
    cand_sim = np.full((n, top), -np.inf, dtype=np.float32)
    parts = []
    with blas_threads(1):
        _fit_groups(x, members, ks, seed, top, cand, cand_sim, parts)
    return np.concatenate(parts), cand, cand_sim


def _fit_groups(x, members, ks, seed, top, cand, cand_sim, parts) -> None:
    offset = 0
    for g, (m, kg) in enumerate(zip(members, ks.tolist())):
        km = kmeans(x[m], kg, seed=seed + g, n_init=1, lloyd=10)
        c_idx, c_sim = nearest_centroids(x[m], km.centroids, top=top)
        width = c_idx.shape[1]
        cand[m, :width] = c_idx + offset
        cand_sim[m, :width] = c_sim
        if width < top:  # pad with the best one (harmless duplicates)
            cand[m, width:] = cand[m, :1]
            cand_sim[m, width:] = cand_sim[m, :1]
        parts.append(km.centroids)
        offset += len(km.centroids)


def _allocate(k: int, sizes: np.ndarray) -> np.ndarray:
    """``k`` centres over groups in proportion to their sizes (largest remainders), each group
    getting between 1 and its size; the total is exactly ``k`` (needs len(sizes) <= k <= sum)."""
    raw = k * sizes / sizes.sum()
    ks = np.clip(np.floor(raw).astype(np.int64), 1, sizes)
    diff = k - int(ks.sum())
    while diff != 0:
        if diff > 0:
            idx = np.flatnonzero(ks < sizes)
            idx = idx[np.argsort(-(raw[idx] - ks[idx]), kind="stable")][:diff]
            ks[idx] += 1
        else:
            idx = np.flatnonzero(ks > 1)
            idx = idx[np.argsort(-(ks[idx] - raw[idx]), kind="stable")][:-diff]
            ks[idx] -= 1
        diff = k - int(ks.sum())
    return ks


def _assign_leftovers(x, centroids, labels, room, points: list[int], allow_overflow: bool = False) -> None:
    """Each point in turn to the most similar centroid with room (all of them at once per block)."""
    if not points:
        return
    pts = np.asarray(points, dtype=np.int64)
    for s in chunks(len(pts), 1024):
        block = pts[s]
        sims = x[block] @ centroids.T
        for row, i in enumerate(block.tolist()):
            open_ = room > 0
            if not open_.any():
                if not allow_overflow:
                    raise RuntimeError("capacity assignment ran out of room (capacities do not sum to N)")
                c = int(sims[row].argmax())
            else:
                c = int(np.where(open_, sims[row], -np.inf).argmax())
                room[c] -= 1
            labels[i] = c


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Average silhouette with cosine distance (points in singleton clusters count 0)."""
    x = l2_normalise(x)
    uniq, lab = np.unique(labels, return_inverse=True)
    if len(uniq) < 2 or len(uniq) >= len(x):
        return 0.0
    dist = 1.0 - x @ x.T
    onehot = np.zeros((len(x), len(uniq)), dtype=np.float32)
    onehot[np.arange(len(x)), lab] = 1.0
    sums = dist @ onehot  # (n, k) total distance to each cluster
    counts = onehot.sum(axis=0)
    own = counts[lab]
    a = np.where(own > 1, sums[np.arange(len(x)), lab] / np.maximum(own - 1, 1), 0.0)
    mean_other = sums / counts[None, :]
    mean_other[np.arange(len(x)), lab] = np.inf
    b = mean_other.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def choose_k(
    x: np.ndarray, ks: Sequence[int], *, sample: int = 2000, fit_sample: int = 10_000, seed: int = 0
) -> tuple[int, dict[int, float]]:
    """The k with the highest average silhouette (cosine). Each k is fitted on a sample of at most
    ``fit_sample`` points and scored on the first ``sample`` of them; ties go to the smaller k."""
    x = l2_normalise(x)
    rng = np.random.default_rng(seed)
    fit_idx = rng.permutation(len(x))[: min(fit_sample, len(x))]
    fit_x = x[fit_idx]
    score_n = min(sample, len(fit_x))
    scores: dict[int, float] = {}
    for k in sorted({int(k) for k in ks if 2 <= int(k) < score_n}):
        km = kmeans(fit_x, k, seed=seed, n_init=1, lloyd=10)
        scores[k] = round(silhouette(fit_x[:score_n], km.labels[:score_n]), 6)
    if not scores:
        return 1, {}
    best = max(scores, key=lambda k: (scores[k], -k))
    return best, scores


def default_ks(n: int, count: int = 6, max_k: int = 1000) -> list[int]:
    """Candidate ks spread geometrically between 2 and min(n / 5, ``max_k``)."""
    hi = max(2, min(n // 5, max_k))
    return sorted({int(round(v)) for v in np.geomspace(2, hi, num=count)})
