"""The evaluation suite contract: a registered unit that scores one model and returns per-prompt values.

A suite never averages on its own: it returns, for every metric, one value per prompt (``SuiteResult``),
so every figure can carry a bootstrap confidence interval over prompts, and a difference between two
models can be tested on the same prompts (a paired bootstrap).

    @register_suite
    class MySuite(Suite):
        name = "my-suite"
        version = "1"

        def params(self): ...                       # what decides the result (part of the cache key)
        def run(self, model) -> SuiteResult: ...    # model: an LLM (generate) and/or a LogProbScorer (score)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

SUITES: dict[str, type[Suite]] = {}

RESAMPLES = 1000  # bootstrap resamples: the CI bounds move by well under 0.01 for more
ALPHA = 0.05  # 95% intervals
SUITE_MODULES = {"ifeval": "ifeval", "nll": "nll", "judge": "judge"}  # suite name -> module


def register_suite(cls: type[Suite]) -> type[Suite]:
    if not getattr(cls, "name", None):
        raise TypeError(f"{cls.__qualname__} needs a name")
    SUITES[cls.name] = cls
    return cls


class Suite:
    name: str = ""
    version: str = "1"
    # what a model must offer: "generate" (an LLM) and/or "score" (a LogProbScorer)
    needs: tuple[str, ...] = ()

    def params(self) -> dict[str, Any]:
        return {}

    def fingerprint(self) -> str:
        """The key of this suite's result for one model: name, version and params."""
        from ..core.pipeline import config_hash

        return config_hash({"suite": self.name, "version": self.version, "params": self.params()})

    def run(self, model: Any) -> SuiteResult:
        raise NotImplementedError


@dataclass
class SuiteResult:
    suite: str
    metrics: dict[str, list[float]]  # metric -> one value per prompt (NaN: not scored, left out)
    details: list[dict[str, Any]] = field(default_factory=list)  # per prompt: what the model said, checks
    lower_is_better: tuple[str, ...] = ()  # metrics where a smaller value is better (NLL)
    info: dict[str, Any] = field(default_factory=dict)

    def summary(self, seed: int = 0) -> dict[str, dict[str, float]]:
        return {m: bootstrap_ci(v, seed=seed) for m, v in self.metrics.items()}

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "metrics": self.metrics, "details": self.details,
                "lower_is_better": list(self.lower_is_better), "info": self.info}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SuiteResult:
        return cls(d["suite"], d["metrics"], d.get("details", []), tuple(d.get("lower_is_better", ())),
                   d.get("info", {}))


def _clean(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    return a[np.isfinite(a)]


def bootstrap_ci(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0,
                 alpha: float = ALPHA) -> dict[str, float]:
    """Mean of the finite values and its percentile bootstrap interval over prompts (seeded)."""
    a = _clean(values)
    if not a.size:
        return {"mean": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, a.size, size=(resamples, a.size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return {"mean": float(a.mean()), "lo": float(lo), "hi": float(hi), "n": int(a.size)}


def paired_difference_ci(values: Sequence[float], baseline: Sequence[float], *, resamples: int = RESAMPLES,
                         seed: int = 0, alpha: float = ALPHA) -> dict[str, float]:
    """``values - baseline`` on the same prompts (both finite), with a paired bootstrap interval: the
    difference is significant at 1 - alpha when the interval excludes 0."""
    a, b = np.asarray(values, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired values need the same prompts ({a.shape} vs {b.shape})")
    ok = np.isfinite(a) & np.isfinite(b)
    return bootstrap_ci(a[ok] - b[ok], resamples=resamples, seed=seed, alpha=alpha)


def load_suite(name: str, **options: Any) -> Suite:
    """A registered suite by name (``ifeval``, ``nll``, ``judge``), built with ``options``."""
    import importlib

    if name in SUITE_MODULES:  # importing the module registers its suite
        importlib.import_module(f"{__package__}.{SUITE_MODULES[name]}")
    if name not in SUITES:
        raise KeyError(f"unknown suite '{name}'; available: {', '.join(sorted(SUITES))}")
    return SUITES[name](**options)
