import numpy as np

from purgemix.vectors import diversity as D, neighbours as N


def blobs(n_per=40, k=4, d=32, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centers = N.l2_normalise(rng.normal(size=(k, d)))
    x = np.concatenate([centers[i] + noise * rng.normal(size=(n_per, d)) / np.sqrt(d) * 4 for i in range(k)])
    return N.l2_normalise(x), np.repeat(np.arange(k), n_per)


def test_mmr_central_then_diverse():
    x = N.l2_normalise(np.array([[1, 0.1], [1, 0.0], [1, -0.1], [1, 0.01], [0.7, 0.7]], dtype=np.float32))
    picked = D.mmr(x, np.arange(5), 3, lam=0.5, centroid=np.array([1.0, 0.0]))
    assert picked[0] == 1  # most central first
    assert 3 not in picked[:2]  # near-copy of the first is not second


def test_pair_related_pairs_nearest():
    x = N.l2_normalise(np.array([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0.1, 0.99, 0], [0, 0, 1]], np.float32))
    pairs, left = D.pair_related(x, np.arange(5))
    assert {frozenset(p[:2]) for p in pairs} == {frozenset({0, 1}), frozenset({2, 3})}
    assert left.tolist() == [4]
    pairs, left = D.pair_related(x, np.arange(5), min_similarity=0.999)
    assert pairs == [] and len(left) == 5


def test_pair_related_large_group_blocks():
    x, _ = blobs(n_per=60, k=4)
    pairs, left = D.pair_related(x, np.arange(len(x)), block=50)
    used = [i for p in pairs for i in p[:2]]
    assert len(used) == len(set(used))
    assert len(used) + len(left) == len(x)


def test_random_pairs():
    pairs, left = D.random_pairs(np.arange(7), seed=1)
    assert len(pairs) == 3 and len(left) == 1
    assert sorted([i for p in pairs for i in p[:2]] + left.tolist()) == list(range(7))
    assert [p[:2] for p in D.random_pairs(np.arange(7), seed=1)[0]] == [p[:2] for p in pairs]


def test_mmr_large_cluster_in_blocks():
    x, _ = blobs(n_per=100, k=4)
    picked = D.mmr(x, np.arange(len(x)), 37, block=64)
    assert len(picked) == 37 and len(set(picked.tolist())) == 37
    assert D._proportional(10, np.array([5, 1, 30])).tolist() == [2, 0, 8]


def test_blas_threads_without_threadpoolctl(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import fails: plain no-op context
    with N.blas_threads(1):
        x, _ = blobs(n_per=10, k=2)
        assert len(D.pair_related(x, np.arange(len(x)))[0]) == 10
