"""Semantic deduplication (SemDeDup-style).

Embeddings are clustered with k-means; inside each cluster members are visited best first (by a
configurable score) and a member whose cosine to an already *kept* member is at least the
threshold is a duplicate of the best such kept member. Keepers are never duplicates, so
``duplicate_of`` never chains.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..vectors.cluster import kmeans
from ..vectors.diversity import blocks
from ..vectors.neighbours import blas_threads, l2_normalise


def semantic_duplicates(
    x: np.ndarray,
    scores: Sequence[float] | np.ndarray | None = None,
    *,
    threshold: float = 0.95,
    cluster_size: int = 1000,
    block: int = 4096,
    seed: int = 0,
) -> np.ndarray:
    """``duplicate_of`` per point: -1 for kept points, else the index of the kept point it
    duplicates. Higher ``scores`` are kept first (ties: lower index first)."""
    x = l2_normalise(x)
    n = len(x)
    dup = np.full(n, -1, dtype=np.int64)
    if n < 2:
        return dup
    s = np.zeros(n) if scores is None else np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    k = max(1, math.ceil(n / max(cluster_size, 2)))
    labels = kmeans(x, k, seed=seed).labels if k > 1 else np.zeros(n, np.int64)
    with blas_threads(1):
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            for grp in blocks(x, members, block, seed):
                _dedup_group(x, grp, s, threshold, dup)
    return dup


def _dedup_group(x, members: np.ndarray, s: np.ndarray, threshold: float, dup: np.ndarray) -> None:
    if len(members) < 2:
        return
    order = members[np.lexsort((members, -s[members]))]  # best score first, then index
    v = x[order]
    sims = v @ v.T
    kept = np.zeros(len(order), bool)
    for j in range(len(order)):
        hits = np.flatnonzero(kept[:j] & (sims[j, :j] >= threshold))
        if len(hits):
            dup[order[j]] = order[hits[0]]  # the best-scored kept member it matches
        else:
            kept[j] = True
