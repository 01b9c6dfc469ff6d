"""Reservoir sampling: bounded, seeded and uniform, one item or a batch of columns at a time."""

import numpy as np

from purgemix.core.sampling import ColumnReservoir, Reservoir


def test_item_reservoir_is_bounded_seeded_and_uniform():
    counts = np.zeros(40)
    for seed in range(2000):
        r = Reservoir(5, seed)
        for i in range(40):
            r.add(i)
        assert len(r.items) == 5 and len(set(r.items)) == 5 and r.seen == 40
        counts[r.items] += 1
    assert np.all(np.abs(counts / 2000 - 5 / 40) < 0.04), counts
    a, b = Reservoir(5, 7), Reservoir(5, 7)
    for i in range(100):
        a.add(i)
        b.add(i)
    assert a.items == b.items  # the same seed, the same sample


def test_reservoir_keeps_a_uniform_sample_across_batches():
    n, size = 50, 10
    counts = np.zeros(n)
    for seed in range(2000):
        rng = np.random.default_rng(seed)
        res = ColumnReservoir(size, ["x"])
        for lo, hi in ((0, 7), (7, 30), (30, 31), (31, 50)):  # batches filling, crossing and past the size
            res.add({"x": np.arange(lo, hi)}, hi - lo, rng)
        got = dict(res.items())["x"]
        assert len(got) == size and len(set(got)) == size and res.seen == n
        counts[got] += 1
    freq = counts / 2000
    assert abs(freq.mean() - size / n) < 1e-9
    assert np.all(np.abs(freq - size / n) < 0.04), freq  # each row kept with probability size/n
