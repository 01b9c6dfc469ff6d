"""Statistical priors: the pool's distribution of every numeric feature, fitted in bounded memory.

For each feature we keep a uniform random sample of at most ``SAMPLE`` values (a seeded reservoir,
so the fit is deterministic and memory stays flat whatever the pool size) and exact counts, and
summarise it as: count, missing, mean, std, min, max, median, MAD (scaled by 1.4826 so it estimates
the standard deviation of a normal), and a grid of 1001 quantiles (q0.000 ... q1.000), from which
quantile thresholds, robust z-scores and histograms are read.

Robust z of a value x: ``(x - median) / scale`` where ``scale`` is 1.4826 * MAD, or, when more than
half the pool shares one value (MAD = 0, common for counts and flags), 1.2533 * mean absolute
deviation, or failing that 1.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ..core.sampling import replacement_slots

SAMPLE = 200_000
GRID = np.linspace(0.0, 1.0, 1001)


class Reservoir:
    """Uniform sample of a stream of floats (Vitter's algorithm R, vectorised per chunk).

    Stored as float32 while that loses nothing (half the memory of float64): while every value is a
    float32 exactly (counts and other integers), or is recovered exactly by rounding its float32 to
    ``DECIMALS`` places (the scores are stored rounded to 4 places). The first value that is neither
    turns the buffer into float64 for good, so ``sample()`` always returns the exact values seen."""

    DECIMALS = 4

    def __init__(self, size: int = SAMPLE, seed: int = 0):
        self.size = size
        self.buf = np.empty(size, dtype=np.float32)
        self.mode = "exact"  # "exact": float32 values as they are; "round": rounded to DECIMALS; "f64"
        self.n = 0  # values seen (non-missing)
        self.rng = np.random.default_rng(seed)

    def _fit_storage(self, values: np.ndarray) -> None:
        """Move to the least compact mode that still stores ``values`` exactly."""
        if self.mode == "f64" or not values.size:
            return
        v32 = values.astype(np.float32).astype(np.float64)
        if self.mode == "exact" and np.array_equal(v32, values, equal_nan=True):
            return
        if np.array_equal(np.round(v32, self.DECIMALS), values, equal_nan=True):
            if self.mode == "exact":
                held = self.buf[: min(self.n, self.size)].astype(np.float64)
                if np.array_equal(np.round(held, self.DECIMALS), held, equal_nan=True):
                    self.mode = "round"
                    return
            else:
                return
        held = self.sample()
        self.buf = np.empty(self.size, dtype=np.float64)
        self.buf[: held.size] = held
        self.mode = "f64"

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values, dtype=np.float64)
        self._fit_storage(values)
        take = min(max(self.size - self.n, 0), values.size)
        if take:
            self.buf[self.n:self.n + take] = values[:take]
        rest = values[take:]
        if rest.size:
            pos, slots = replacement_slots(self.n + take, rest.size, self.size, self.rng)
            self.buf[slots] = rest[pos]  # later values win ties, as in the sequential algorithm
        self.n += values.size

    def sample(self) -> np.ndarray:
        held = self.buf[: min(self.n, self.size)]
        if self.mode == "f64":
            return held
        held = held.astype(np.float64)
        return np.round(held, self.DECIMALS) if self.mode == "round" else held


class PriorFitter:
    def __init__(self, features: Iterable[str] | None = None, sample: int = SAMPLE, seed: int = 0):
        self.only = set(features) if features is not None else None
        self.sample = sample
        self.seed = seed
        self.res: dict[str, Reservoir] = {}
        self.missing: dict[str, int] = {}
        self.moments: dict[str, list[float]] = {}  # count, sum, sum of squares, min, max
        self.records = 0

    def add_columns(self, cols: dict[str, np.ndarray]) -> None:
        for name, col in cols.items():
            if self.only is not None and name not in self.only:
                continue
            col = np.asarray(col, dtype=np.float64)
            ok = ~np.isnan(col)
            self.missing[name] = self.missing.get(name, 0) + int((~ok).sum())
            v = col[ok]
            if name not in self.res:
                self.res[name] = Reservoir(self.sample, self.seed + len(self.res))
                self.moments[name] = [0, 0.0, 0.0, np.inf, -np.inf]
            self.res[name].add(v)
            if v.size:
                m = self.moments[name]
                m[0] += v.size
                m[1] += float(v.sum())
                m[2] += float((v * v).sum())
                m[3] = min(m[3], float(v.min()))
                m[4] = max(m[4], float(v.max()))

    def finish(self, source: str = "pool") -> dict[str, Any]:
        feats = {}
        for name, r in sorted(self.res.items()):
            feats[name] = summarise(r.sample(), self.moments[name], self.missing.get(name, 0))
        return {"version": 1, "source": source, "features": feats}


def summarise(sample: np.ndarray, moments: list[float], missing: int) -> dict[str, Any]:
    n = int(moments[0])
    if n == 0 or sample.size == 0:
        return {"count": 0, "missing": missing}
    mean = moments[1] / n
    var = max(moments[2] / n - mean * mean, 0.0)
    med = float(np.median(sample))
    mad = float(np.median(np.abs(sample - med)))
    meanad = float(np.mean(np.abs(sample - med)))
    if mad > 0:
        scale = 1.4826 * mad
    elif meanad > 0:
        scale = 1.2533 * meanad
    else:
        scale = 1.0
    return {
        "count": n,
        "missing": missing,
        "mean": mean,
        "std": var ** 0.5,
        "min": moments[3],
        "max": moments[4],
        "median": med,
        "mad": mad,
        "scale": scale,
        "quantiles": [round(q, 6) for q in np.quantile(sample, GRID).tolist()],  # Python floats: 3x faster
    }


def quantile(prior: dict[str, Any], q: float) -> float:
    grid = prior.get("quantiles")
    if not grid:
        return float("nan")
    return float(np.interp(q, GRID, grid))


def robust_z(prior: dict[str, Any], values: np.ndarray) -> np.ndarray:
    return (np.asarray(values, dtype=np.float64) - prior["median"]) / prior["scale"]
