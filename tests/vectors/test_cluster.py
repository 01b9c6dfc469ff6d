import numpy as np

from purgemix.vectors import cluster as C, neighbours as N


def blobs(n_per=40, k=4, d=32, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centers = N.l2_normalise(rng.normal(size=(k, d)))
    x = np.concatenate([centers[i] + noise * rng.normal(size=(n_per, d)) / np.sqrt(d) * 4 for i in range(k)])
    return N.l2_normalise(x), np.repeat(np.arange(k), n_per)


def test_capacities_sum_and_bounds():
    spec = C.CapacitySpec(mean=3, std=1, min=2, max=5)
    for n in (2, 3, 7, 10, 101, 1000):
        caps = C.capacities(n, spec, seed=1)
        assert caps.sum() == n
        assert caps.min() >= 2 and caps.max() <= 5
    assert len(C.capacities(1, spec)) == 0


def test_capacities_code_defaults():
    spec = C.CapacitySpec(mean=10, std=3, min=2, max=25)
    caps = C.capacities(500, spec, seed=0)
    assert caps.sum() == 500 and caps.min() >= 2 and caps.max() <= 25
    assert abs(len(caps) - 50) <= 1


def test_capacity_clusters_sizes_and_determinism():
    x, _ = blobs()
    spec = C.CapacitySpec(mean=3, std=1, min=2, max=5)
    a = C.capacity_clusters(x, spec, seed=3)
    b = C.capacity_clusters(x, spec, seed=3)
    assert np.array_equal(a.labels, b.labels)
    assert (a.labels >= 0).all()
    sizes = np.bincount(a.labels)
    sizes = sizes[sizes > 0]
    assert sizes.min() >= 2 and sizes.max() <= 5
    assert sum(len(m) for m in a.members()) == len(x)


def test_capacity_clusters_keep_blobs_together():
    x, truth = blobs(n_per=30, noise=0.05)
    c = C.capacity_clusters(x, C.CapacitySpec(mean=5, std=1, min=3, max=6), seed=0)
    # capacities rarely split a blob exactly, so a few points overflow to a neighbour's cluster
    agree = [np.mean(truth[m] == np.bincount(truth[m]).argmax()) for m in c.members()]
    assert np.mean(agree) > 0.9


def test_capacity_clusters_two_level(monkeypatch):
    monkeypatch.setattr(C, "FLAT_MAX_K", 8)
    x, _ = blobs(n_per=50, k=4)
    c = C.capacity_clusters(x, C.CapacitySpec(mean=4, std=1, min=2, max=6), seed=0)
    sizes = np.bincount(c.labels)
    sizes = sizes[sizes > 0]
    assert (c.labels >= 0).all() and sizes.min() >= 2 and sizes.max() <= 6
    assert c.info["k"] == len(sizes)


def test_capacity_clusters_too_few_points():
    c = C.capacity_clusters(np.ones((1, 4)), C.CapacitySpec(min=2))
    assert (c.labels == -1).all() and c.members() == []


def test_choose_k_by_silhouette():
    x, _ = blobs(n_per=40, k=4, noise=0.05)
    k, scores = C.choose_k(x, [2, 3, 4, 6, 8], sample=160, seed=0)
    assert k == 4
    assert set(scores) == {2, 3, 4, 6, 8}


def test_silhouette_range():
    x, truth = blobs(noise=0.05)
    s = C.silhouette(x, truth)
    assert 0.5 < s <= 1.0
    assert C.silhouette(x, np.zeros(len(x), int)) == 0.0


def test_kmeans_labels_match_blobs():
    x, truth = blobs(noise=0.05)
    km = C.kmeans(x, 4, seed=0)
    for c in range(4):
        assert len(set(truth[km.labels == c])) <= 1
    assert np.allclose(np.linalg.norm(km.centroids, axis=1), 1, atol=1e-5)


def test_allocate_exact():
    for k, sizes in [(10, [1, 1, 1, 50]), (5, [3, 3, 3, 3, 3]), (7, [100, 1, 1]), (50, [10, 20, 30])]:
        ks = C._allocate(k, np.array(sizes))
        assert ks.sum() == k and (ks >= 1).all() and (ks <= np.array(sizes)).all()


def test_capacity_clusters_two_level_uneven_groups(monkeypatch):
    monkeypatch.setattr(C, "FLAT_MAX_K", 4)
    rng = np.random.default_rng(2)
    x = np.concatenate([blobs(n_per=90, k=1, seed=1)[0], N.l2_normalise(rng.normal(size=(7, 32)))])
    c = C.capacity_clusters(x, C.CapacitySpec(mean=3, std=1, min=2, max=5), seed=0)
    sizes = np.bincount(c.labels)
    assert (c.labels >= 0).all() and sizes[sizes > 0].min() >= 2 and sizes.max() <= 5
