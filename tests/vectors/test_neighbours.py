import numpy as np

from purgemix.vectors import neighbours as N


def blobs(n_per=40, k=4, d=32, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centers = N.l2_normalise(rng.normal(size=(k, d)))
    x = np.concatenate([centers[i] + noise * rng.normal(size=(n_per, d)) / np.sqrt(d) * 4 for i in range(k)])
    return N.l2_normalise(x), np.repeat(np.arange(k), n_per)


def test_longtail_rare_is_highest():
    x, _ = blobs(n_per=20, k=2, noise=0.05)
    rng = np.random.default_rng(5)
    outlier = N.l2_normalise(rng.normal(size=(1, x.shape[1])))
    lt = N.longtail(np.concatenate([x, outlier]), k=5)
    assert lt.argmax() == len(x)
    assert lt.min() == 0.0 and abs(lt.max() - 1.0) < 1e-6
