"""Prior reservoirs: float32 storage only while it loses nothing, so the fit equals a float64 one."""

import numpy as np

from purgemix.purge.priors import PriorFitter, Reservoir


def _float64_reservoir(chunks, size, seed):
    """The same algorithm R with a float64 buffer (the reference)."""
    buf, n, rng = np.empty(size), 0, np.random.default_rng(seed)
    for v in chunks:
        take = min(max(size - n, 0), v.size)
        buf[n:n + take] = v[:take]
        rest = v[take:]
        if rest.size:
            idx = np.arange(n + take, n + take + rest.size)
            j = (rng.random(rest.size) * (idx + 1)).astype(np.int64)
            buf[j[j < size]] = rest[j < size]
        n += v.size
    return buf[: min(n, size)]


def test_reservoir_storage_is_compact_and_exact():
    rng = np.random.default_rng(0)
    counts = [rng.integers(0, 5000, 700).astype(np.float64) for _ in range(9)]
    ratios = [np.round(rng.random(700) * 3, 4) for _ in range(9)]
    floats = [rng.normal(0, 1, 700) for _ in range(9)]
    cases = {"exact": counts, "round": ratios, "f64": floats,
             "round-late": counts[:4] + ratios[4:], "f64-late": counts[:3] + ratios[3:6] + floats[6:]}
    for mode, chunks in cases.items():
        r = Reservoir(size=2000, seed=3)
        for c in chunks:
            r.add(c)
        assert r.mode == mode.split("-")[0]
        assert r.buf.dtype == (np.float64 if r.mode == "f64" else np.float32)
        s = r.sample()
        assert s.dtype == np.float64 and np.array_equal(s, _float64_reservoir(chunks, 2000, 3))


def test_prior_fit_is_unchanged_by_the_compact_storage():
    rng = np.random.default_rng(1)
    cols = {"response.words": rng.integers(0, 900, 5000).astype(float),
            "response.ratio": np.round(rng.beta(2, 5, 5000), 4)}
    fitter = PriorFitter(sample=1500)
    for s in range(0, 5000, 600):
        fitter.add_columns({k: v[s:s + 600] for k, v in cols.items()})
    got = fitter.finish()["features"]
    for name, v in cols.items():
        sample = _float64_reservoir([v[s:s + 600] for s in range(0, 5000, 600)], 1500, list(cols).index(name))
        assert got[name]["quantiles"] == [round(float(q), 6) for q in np.quantile(sample, np.linspace(0, 1, 1001))]
        assert got[name]["median"] == float(np.median(sample))
