"""kNN-Bayes quality scorer (LM-Mixup's quality reward).

A library of rated texts (embeddings + classes 0..K-1) gives

- a class transition matrix from each library item's ``k_t`` (3) nearest library neighbours:
  ``T[class(item), class(neighbour)] += 1``, add-``alpha`` (0.01) smoothing, rows normalised;
- a class prior (class frequencies).

For a new text: ``h`` = histogram of classes among its ``k`` (16) nearest library items;
posterior ``∝ prior × Π_j T[i, j]^h_j``; expected score ``ŝ = Σ_i i · post_i``; reward 1 if ``ŝ ≥ 4``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..vectors.neighbours import knn, top_k


@dataclass
class KNNBayes:
    library: np.ndarray  # (n, d) float32, L2-normalised
    classes: np.ndarray  # (n,) int in 0..K-1
    T: np.ndarray  # (K, K)
    prior: np.ndarray  # (K,)
    k: int = 16

    @classmethod
    def fit(cls, embeddings: np.ndarray, classes: np.ndarray, *, K: int = 6, k: int = 16, k_t: int = 3,
            alpha: float = 0.01) -> "KNNBayes":
        emb = np.asarray(embeddings, dtype=np.float32)
        y = np.asarray(classes, dtype=np.int64)
        if len(emb) != len(y) or len(y) < 2:
            raise ValueError("kNN-Bayes needs at least 2 rated library texts with one class each")
        nbrs, _ = knn(emb, k_t)
        T = np.zeros((K, K))
        np.add.at(T, (np.repeat(y, nbrs.shape[1]), y[nbrs].ravel()), 1.0)
        T += alpha
        T /= T.sum(1, keepdims=True)
        prior = (np.bincount(y, minlength=K) + alpha) / (len(y) + alpha * K)
        return cls(emb, y, T, prior, k)

    def posterior(self, query: np.ndarray) -> np.ndarray:
        q = np.asarray(query, dtype=np.float32)
        idx = top_k(q, self.library, self.k)
        K = len(self.prior)
        h = np.zeros((len(q), K))
        np.add.at(h, (np.repeat(np.arange(len(q)), idx.shape[1]), self.classes[idx].ravel()), 1.0)
        log_post = np.log(self.prior)[None, :] + h @ np.log(self.T).T  # Σ_j h_j log T[i, j]
        log_post -= log_post.max(1, keepdims=True)
        post = np.exp(log_post)
        return post / post.sum(1, keepdims=True)

    def expected(self, query: np.ndarray) -> np.ndarray:
        return self.posterior(query) @ np.arange(len(self.prior), dtype=float)

    def reward(self, query: np.ndarray, threshold: float = 4.0) -> np.ndarray:
        return (self.expected(query) >= threshold).astype(float)

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, library=self.library, classes=self.classes, T=self.T, prior=self.prior,
                            k=np.array(self.k))

    @classmethod
    def load(cls, path: str | Path) -> "KNNBayes":
        d = np.load(path)
        return cls(d["library"], d["classes"], d["T"], d["prior"], int(d["k"]))
