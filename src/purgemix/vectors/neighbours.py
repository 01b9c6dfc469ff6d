"""Neighbours in embedding space: L2 normalising, blockwise similarity (``chunks``), the BLAS thread limit for many
small products, kNN of a set with itself (``knn``) and of queries in a library (``top_k``), and the long-tail score
(mean cosine distance to the nearest neighbours). One copy of each, for every family.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numpy as np

CHUNK = 4096  # rows per block of similarity computations


_CONTROLLER = None


@contextmanager
def blas_threads(limit: int = 1) -> Iterator[None]:
    """Limit BLAS threads (threadpoolctl, when installed). Loops of many small matrix products
    (per-cluster pairing, MMR, dedup) are far faster single-threaded: a multi-threaded BLAS spends
    more on waking threads than on a 50 x 384 product, dramatically so on a busy machine."""
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        yield
        return
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=limit, user_api="blas"):
        yield


def l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def longtail(x: np.ndarray, k: int = 15, *, reference: np.ndarray | None = None) -> np.ndarray:
    """Mean cosine distance to the ``k`` nearest neighbours (in ``reference``, default the same
    points, self excluded), min-max normalised to [0, 1]. Brute force in row chunks."""
    x = l2_normalise(x)
    ref = x if reference is None else l2_normalise(reference)
    same = reference is None
    n = len(x)
    if n == 0:
        return np.zeros(0, np.float32)
    kk = max(1, min(k, len(ref) - (1 if same else 0)))
    out = np.empty(n, dtype=np.float32)
    for s in chunks(n, 2048):
        sims = x[s] @ ref.T
        if same:
            sims[np.arange(s.stop - s.start), np.arange(s.start, s.stop)] = -np.inf
        if kk >= sims.shape[1]:
            top = sims if not same else np.where(np.isinf(sims), np.nan, sims)
            out[s] = 1.0 - np.nanmean(top, axis=1)
        else:
            top = -np.partition(-sims, kk - 1, axis=1)[:, :kk]
            out[s] = 1.0 - top.mean(axis=1)
    lo, hi = float(out.min()), float(out.max())
    return np.zeros(n, np.float32) if hi - lo < 1e-12 else ((out - lo) / (hi - lo)).astype(np.float32)


def knn(emb: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Indices and cosine similarities of the ``k`` nearest other rows (rows L2-normalised)."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = len(emb)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    try:
        import faiss  # type: ignore

        index = faiss.IndexFlatIP(emb.shape[1])
        index.add(emb)
        sims, idx = index.search(emb, k + 1)
    except ImportError:
        idx = np.empty((n, k + 1), dtype=np.int64)
        sims = np.empty((n, k + 1), dtype=np.float32)
        for s in range(0, n, chunk):
            block = emb[s:s + chunk] @ emb.T
            part = np.argpartition(-block, k, axis=1)[:, : k + 1]
            ps = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-ps, axis=1)
            idx[s:s + chunk] = np.take_along_axis(part, order, axis=1)
            sims[s:s + chunk] = np.take_along_axis(ps, order, axis=1)
    # drop self (usually first; exact duplicates may swap places)
    out_i = np.empty((n, k), dtype=np.int64)
    out_s = np.empty((n, k), dtype=np.float32)
    for r in range(n):
        keep = idx[r] != r
        ii, ss = idx[r][keep][:k], sims[r][keep][:k]
        if len(ii) < k:  # self not among the k+1 (many duplicates): take the first k
            ii, ss = idx[r][:k], sims[r][:k]
        out_i[r], out_s[r] = ii, ss
    return out_i, out_s


def top_k(query: np.ndarray, lib: np.ndarray, k: int, chunk: int = 2048) -> np.ndarray:
    """Indices of the ``k`` rows of ``lib`` most similar to each query row (dot product; unordered within the
    ``k``): queries looked up in a library, where ``knn`` is a set against itself."""
    k = min(k, len(lib))
    out = np.empty((len(query), k), dtype=np.int64)
    for s in range(0, len(query), chunk):
        sims = query[s:s + chunk] @ lib.T
        out[s:s + chunk] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return out


def longtail_score(sims: np.ndarray) -> np.ndarray:
    """The long-tail score from neighbour similarities already at hand (``knn``'s): mean cosine distance,
    min-max normalised to [0, 1], float64 (``longtail`` computes it from the vectors, as float32)."""
    d = (1.0 - sims.mean(1)).astype(np.float64) if sims.shape[1] else np.zeros(len(sims))
    if not len(d):
        return d
    lo, hi = float(d.min()), float(d.max())
    return (d - lo) / (hi - lo) if hi > lo else np.zeros_like(d)
