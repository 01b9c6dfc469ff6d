"""The statistical prior on synthetic data with a known true score, transition matrix and clusters."""

from __future__ import annotations

import numpy as np

from purgemix.rating.correction import consensus_tensors, curate, fit_hoc
from purgemix.vectors.neighbours import knn


def synthetic(seed=0, n_clusters=300, per=10, d=32, K=6, diag_boost=0.5, spread=0.9):
    rng = np.random.default_rng(seed)
    prior = np.array([0.1, 0.15, 0.2, 0.25, 0.2, 0.1])
    idx = np.arange(K)
    T = np.exp(-np.abs(idx[:, None] - idx[None, :]) * spread)
    T[idx, idx] *= 1 + diag_boost
    T /= T.sum(1, keepdims=True)
    centres = rng.normal(size=(n_clusters, d))
    cluster_true = rng.choice(K, size=n_clusters, p=prior)
    emb = np.repeat(centres, per, 0) + 0.35 * rng.normal(size=(n_clusters * per, d))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    true = np.repeat(cluster_true, per)
    obs = np.array([rng.choice(K, p=T[t]) for t in true])
    return emb.astype(np.float32), true, obs, T


def test_hoc_recovers_exact_tensors():
    K = 6
    T = np.full((K, K), 0.08) + np.eye(K) * 0.52
    T /= T.sum(1, keepdims=True)
    p = np.array([0.1, 0.15, 0.2, 0.25, 0.2, 0.1])
    c1 = p @ T
    c2 = np.einsum("i,ij,il->jl", p, T, T)
    c3 = np.einsum("i,ij,il,im->jlm", p, T, T, T)
    T_hat, p_hat, loss = fit_hoc(c1, c2, c3, steps=4000)
    assert np.abs(T_hat - T).max() < 0.03
    assert np.abs(p_hat - p).max() < 0.03


def test_transition_matrix_estimate_and_curation_beat_raw():
    emb, true, obs, T = synthetic()
    raw_acc = (obs == true).mean()
    assert 0.5 < raw_acc < 0.7  # really noisy raw scores
    c = curate(obs, emb, k=10, threshold=0.5)
    err = np.abs(c.T - T)
    assert err.mean() < 0.03 and err.max() < 0.12  # figures in docs/model-layer.md
    assert (c.curated == true).mean() > raw_acc + 0.2
    assert c.T.shape == (6, 6) and np.allclose(c.T.sum(1), 1)
    assert c.longtail.min() == 0.0 and c.longtail.max() == 1.0


def test_consensus_tensors_symmetric_and_normalised():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 6, 100)
    nbrs = np.stack([rng.integers(0, 100, 100), rng.integers(0, 100, 100)], 1)
    c1, c2, c3 = consensus_tensors(scores, nbrs, 6)
    assert np.isclose(c1.sum(), 1) and np.isclose(c2.sum(), 1) and np.isclose(c3.sum(), 1)
    assert np.allclose(c2, c2.T) and np.allclose(c3, c3.transpose(1, 0, 2)) and np.allclose(c3, c3.transpose(2, 1, 0))


def test_knn_excludes_self_and_handles_duplicates():
    x = np.eye(4, dtype=np.float32)[[0, 0, 1, 2, 3]]
    idx, sims = knn(x, 2)
    assert all(i not in row for i, row in enumerate(idx))
    assert idx[0, 0] == 1 and sims[0, 0] == 1.0
