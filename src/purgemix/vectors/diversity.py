"""Choosing diverse or related members: MMR representatives, related pairs within a group (blockwise for large
groups), random pairs (the control).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from .cluster import kmeans
from .neighbours import blas_threads, chunks, l2_normalise


def mmr(x: np.ndarray, members: np.ndarray, count: int, *, lam: float = 0.7,
        centroid: np.ndarray | None = None, block: int = 2048, seed: int = 0) -> np.ndarray:
    """``count`` members by maximal marginal relevance: relevance = cosine to the centroid,
    redundancy = max cosine to the already chosen ones. Returns member indices, in pick order.
    Clusters larger than ``block`` are split into nearby blocks (recursive k-means) that get
    picks in proportion to their sizes, so the cost stays linear in the cluster size."""
    members = np.asarray(members)
    if len(members) == 0 or count <= 0:
        return members[:0]
    if centroid is None:
        centroid = x[members].mean(axis=0)
    with blas_threads(1):
        if len(members) <= block:
            return _mmr(x, members, count, lam, centroid)
        groups = list(blocks(x, members, block, seed))
        sizes = np.array([len(g) for g in groups])
        picks = _proportional(min(count, len(members)), sizes)
        return np.concatenate([_mmr(x, g, int(c), lam, centroid) for g, c in zip(groups, picks) if c > 0])


def _proportional(total: int, sizes: np.ndarray) -> np.ndarray:
    """``total`` split over groups in proportion to ``sizes`` (largest remainders, capped by size)."""
    raw = total * sizes / sizes.sum()
    out = np.minimum(np.floor(raw).astype(np.int64), sizes)
    while out.sum() < total:
        room = np.flatnonzero(out < sizes)
        room = room[np.argsort(-(raw[room] - out[room]), kind="stable")][: total - int(out.sum())]
        out[room] += 1
    return out


def _mmr(x, members, count, lam, centroid):
    v = x[members]
    c = l2_normalise((v.mean(axis=0) if centroid is None else centroid)[None, :])[0]
    rel = v @ c
    count = min(count, len(members))
    chosen = [int(rel.argmax())]
    red = v @ v[chosen[0]]
    taken = np.zeros(len(members), bool)
    taken[chosen[0]] = True
    while len(chosen) < count:
        score = np.where(taken, -np.inf, lam * rel - (1 - lam) * red)
        j = int(score.argmax())
        chosen.append(j)
        taken[j] = True
        red = np.maximum(red, v @ v[j])
    return members[chosen]


def pair_related(
    x: np.ndarray, members: np.ndarray, *, min_similarity: float = -1.0, block: int = 1024, seed: int = 0
) -> tuple[list[tuple[int, int, float]], np.ndarray]:
    """Pair the most related members (rounds of mutual nearest neighbours, which includes the
    globally most similar pair each round). Returns ``(i, j, cosine)`` triples and the unpaired."""
    members = np.asarray(members, dtype=np.int64)
    pairs: list[tuple[int, int, float]] = []
    unpaired: list[np.ndarray] = []
    with blas_threads(1):
        for grp in blocks(x, members, block, seed):
            p, u = _pair_block(x, grp, min_similarity)
            pairs.extend(p)
            unpaired.append(u)
    left = np.concatenate(unpaired) if unpaired else members[:0]
    return pairs, left


def blocks(x: np.ndarray, members: np.ndarray, block: int, seed: int, depth: int = 0) -> Iterator[np.ndarray]:
    """Split a large group into nearby sub-groups of at most ``block`` members (recursive k-means)."""
    if len(members) <= block:
        yield members
        return
    if depth >= 4:
        for s in chunks(len(members), block):
            yield members[s]
        return
    km = kmeans(x[members], math.ceil(len(members) / block) + 1, seed=seed, lloyd=2)
    for c in range(len(km.centroids)):
        sub = members[km.labels == c]
        if len(sub):
            yield from blocks(x, sub, block, seed, depth + 1)


def _pair_block(x: np.ndarray, members: np.ndarray, min_similarity: float):
    m = len(members)
    if m < 2:
        return [], members
    v = x[members]
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    alive = np.ones(m, bool)
    pairs: list[tuple[int, int, float]] = []
    while alive.sum() >= 2:
        masked = np.where(alive[None, :] & alive[:, None], sims, -np.inf)
        nn = masked.argmax(axis=1)
        best = masked[np.arange(m), nn]
        idx = np.flatnonzero(alive & (nn[nn] == np.arange(m)) & (np.arange(m) < nn) & (best >= min_similarity))
        if len(idx) == 0:
            break
        for i in idx.tolist():
            j = int(nn[i])
            pairs.append((int(members[i]), int(members[j]), float(sims[i, j])))
        alive[idx] = False
        alive[nn[idx]] = False
    return pairs, members[alive]


def random_pairs(members: np.ndarray, *, seed: int = 0) -> tuple[list[tuple[int, int, float]], np.ndarray]:
    """Control: members shuffled and paired consecutively (similarity not computed: NaN)."""
    members = np.asarray(members, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(members)
    n2 = len(perm) - len(perm) % 2
    pairs = [(int(perm[i]), int(perm[i + 1]), float("nan")) for i in range(0, n2, 2)]
    return pairs, perm[n2:]
