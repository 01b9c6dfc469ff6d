"""The statistical prior: correct noisy LLM scores with a score-transition matrix.

1. **Estimate** ``T[i, j] = P(observed j | true i)`` and the class prior ``p`` without any clean
   labels, by *high-order consensus* (HOC): each sample and its 2 nearest neighbours in embedding
   space are assumed to share a true class, so the frequencies of observed score singles, pairs and
   triples over those 2-NN tuples must equal what ``(p, T)`` predicts::

       c1[j]       = Σ_i p_i T_ij
       c2[j, l]    = Σ_i p_i T_ij T_il
       c3[j, l, m] = Σ_i p_i T_ij T_il T_im

   ``(p, T)`` are fitted to the empirical tensors by gradient descent (Adam on softmax
   parameters, started near the identity so classes keep their names).
2. **Correct** each score from its ``k`` neighbours: posterior over the true class
   ``∝ p_i · T[i, own] · Π_n T[i, y_n]^(w_n)`` with neighbour weights ``w_n`` (cosine similarity,
   tempered); the curated score is the arg-max when its posterior ≥ ``threshold``, else the raw score.
3. **Long-tail score**: mean cosine distance to the ``k`` nearest neighbours, min–max normalised.

Pure numpy (the core install needs nothing else); kNN uses faiss when installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..vectors.neighbours import knn, longtail_score


def consensus_tensors(scores: np.ndarray, nbrs: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empirical first/second/third-order score frequencies over (self, nn1, nn2), symmetrised."""
    y0, y1, y2 = scores, scores[nbrs[:, 0]], scores[nbrs[:, 1]]
    c1 = np.bincount(np.concatenate([y0, y1, y2]), minlength=K).astype(float)
    c1 /= c1.sum()
    c2 = np.zeros((K, K))
    for a, b in ((y0, y1), (y0, y2), (y1, y2)):
        np.add.at(c2, (a, b), 1)
        np.add.at(c2, (b, a), 1)
    c2 /= c2.sum()
    c3 = np.zeros((K, K, K))
    for a, b, c in ((y0, y1, y2), (y0, y2, y1), (y1, y0, y2), (y1, y2, y0), (y2, y0, y1), (y2, y1, y0)):
        np.add.at(c3, (a, b, c), 1)
    c3 /= c3.sum()
    return c1, c2, c3


def _softmax(a: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def fit_hoc(c1: np.ndarray, c2: np.ndarray, c3: np.ndarray, *, steps: int = 3000, lr: float = 0.05,
            init_diag: float = 0.7, weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
            seed: int = 0) -> tuple[np.ndarray, np.ndarray, float]:
    """Fit ``(T, p)`` to the consensus tensors; returns ``(T, p, final loss)``."""
    K = len(c1)
    T0 = np.full((K, K), (1 - init_diag) / max(K - 1, 1))
    np.fill_diagonal(T0, init_diag)
    A = np.log(T0)
    b = np.log(np.clip(c1, 1e-6, None))
    params = [A, b]
    m = [np.zeros_like(A), np.zeros_like(b)]
    v = [np.zeros_like(A), np.zeros_like(b)]
    b1, b2, eps = 0.9, 0.999, 1e-8
    w1, w2, w3 = weights
    loss = np.inf
    for t in range(1, steps + 1):
        T, p = _softmax(params[0], 1), _softmax(params[1])
        e1 = p @ T
        e2 = np.einsum("i,ij,il->jl", p, T, T)
        e3 = np.einsum("i,ij,il,im->jlm", p, T, T, T)
        r1, r2, r3 = e1 - c1, e2 - c2, e3 - c3
        loss = w1 * (r1 ** 2).sum() + w2 * (r2 ** 2).sum() + w3 * (r3 ** 2).sum()
        gp = (2 * w1 * T @ r1 + 2 * w2 * np.einsum("jl,ij,il->i", r2, T, T)
              + 2 * w3 * np.einsum("jlm,ij,il,im->i", r3, T, T, T))
        r2s = r2 + r2.T
        r3s = r3 + r3.transpose(1, 0, 2) + r3.transpose(1, 2, 0)
        gT = (2 * w1 * np.outer(p, r1) + 2 * w2 * p[:, None] * (T @ r2s.T)
              + 2 * w3 * p[:, None] * np.einsum("jlm,il,im->ij", r3s, T, T))
        gA = T * (gT - (gT * T).sum(1, keepdims=True))
        gb = p * (gp - (gp * p).sum())
        for k, g in enumerate((gA, gb)):
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            params[k] = params[k] - lr * (m[k] / (1 - b1 ** t)) / (np.sqrt(v[k] / (1 - b2 ** t)) + eps)
    return _softmax(params[0], 1), _softmax(params[1]), float(loss)


@dataclass
class Curation:
    T: np.ndarray  # estimated transition matrix (K, K)
    prior: np.ndarray  # estimated true-class prior (K,)
    curated: np.ndarray  # curated scores (int)
    confidence: np.ndarray  # posterior of the curated class (1.0 where the raw score was kept... see changed)
    changed: np.ndarray  # bool: curated != raw
    longtail: np.ndarray  # 0..1, higher = rarer
    loss: float


def estimate_transition(scores: np.ndarray, emb: np.ndarray, K: int = 6, *, nbrs: np.ndarray | None = None,
                        **fit_options) -> tuple[np.ndarray, np.ndarray, float]:
    scores = np.asarray(scores, dtype=np.int64)
    if nbrs is None:
        nbrs, _ = knn(emb, 2)
    c1, c2, c3 = consensus_tensors(scores, nbrs[:, :2], K)
    return fit_hoc(c1, c2, c3, **fit_options)


def posterior(scores: np.ndarray, nbrs: np.ndarray, sims: np.ndarray, T: np.ndarray, prior: np.ndarray, *,
              temperature: float = 0.5) -> np.ndarray:
    """Posterior over the true class of each sample from its own score and its neighbours'."""
    logT = np.log(np.clip(T, 1e-6, None))
    K = T.shape[0]
    w = np.clip(sims, 0, None) * temperature  # neighbours count less than the sample itself
    log_post = np.log(np.clip(prior, 1e-9, None))[None, :] + logT[:, scores].T  # (n, K)
    for c in range(nbrs.shape[1]):
        log_post += w[:, c:c + 1] * logT[:, scores[nbrs[:, c]]].T
    log_post -= log_post.max(1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(1, keepdims=True) if K else post


def curate(scores: np.ndarray, emb: np.ndarray, *, K: int = 6, k: int = 10, threshold: float = 0.5,
           temperature: float = 0.5, longtail_k: int = 10, **fit_options) -> Curation:
    """Estimate ``T`` and correct every score (see module doc). ``scores`` are ints in 0..K-1."""
    scores = np.asarray(scores, dtype=np.int64)
    kk = max(k, longtail_k, 2)
    nbrs, sims = knn(emb, kk)
    T, prior, loss = estimate_transition(scores, emb, K, nbrs=nbrs, **fit_options)
    post = posterior(scores, nbrs[:, :k], sims[:, :k], T, prior, temperature=temperature)
    best = post.argmax(1)
    conf = post[np.arange(len(scores)), best]
    curated = np.where(conf >= threshold, best, scores)
    return Curation(T=T, prior=prior, curated=curated, confidence=conf, changed=curated != scores,
                    longtail=longtail_score(sims[:, :longtail_k]), loss=loss)
