"""What a generation step will cost, measured before it is paid for: a short probe, then extrapolation.

The fuse and distil stages know their work only once the pool is split and clustered: ``G`` groups
(pairs, singles or clusters). Before they start, a seeded sample of ``P`` groups runs through the very
same fuser/distiller (repair cycles, checklist and quality reward included). Every request the probe
sends goes through the request cache, so the real step asks none of them again: the probe is part of
the run, not an extra cost. The estimate is the probe's requests, tokens and time per group times
``G``; the cost follows when ``models.price_in`` / ``price_out`` are set.

Time: when the probe's requests were all sent now, its wall time; when some came from the cache (a
second ``--estimate``), the seconds each answer took when it was made, divided by the backend's
parallel width. ``purgemix run --estimate`` stops after printing it (``EstimateReady``); a normal run
prints it and goes on. The stage's report keeps it next to what the step then actually used.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from ..models.base import Generation, parallel_width


class EstimateReady(Exception):
    """``--estimate``: the probe ran, the estimate is made, nothing more is generated."""

    def __init__(self, estimate: "Estimate"):
        super().__init__(estimate.text())
        self.estimate = estimate


@dataclass
class Estimate:
    stage: str
    model: str
    groups: int
    probe_groups: int
    requests: int
    tokens_in: int
    tokens_out: int
    seconds: float
    basis: str  # "measured" | "cached latencies"
    cost: float | None = None
    probe: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        cost = f", cost {self.cost:.4f}" if self.cost is not None else ""
        return (f"estimate for {self.stage} on {self.model}: {self.groups} groups → about {self.requests:,} requests, "
                f"{self.tokens_in:,} tokens in, {self.tokens_out:,} out, {_duration(self.seconds)}{cost} "
                f"(probe of {self.probe_groups} groups, {self.basis})")


def _duration(s: float) -> str:
    return f"{s:.0f} s" if s < 120 else f"{s / 60:.1f} min" if s < 7200 else f"{s / 3600:.1f} h"


def probe_size(groups: int, width: int) -> int:
    """Enough groups to fill the backend's parallel slots on a large step, half of a small one."""
    if groups <= 0:
        return 0
    return min(groups, max(min(4, groups), min(width, math.ceil(groups / 10))), max(1, math.ceil(groups / 2)))


def run_probe(stage: str, llms: Sequence[Any], run: Callable[[list], Any], items: list, *, seed: int = 0,
              price_in: float = 0.0, price_out: float = 0.0) -> Estimate:
    """Run ``run`` on a seeded sample of ``items`` while counting every answer of ``llms`` (their
    ``CachedLLM.observers``), and extrapolate to all of ``items``."""
    width = parallel_width(llms[0]) if llms else 1
    p = probe_size(len(items), width)
    rng = np.random.default_rng(seed)
    sample = sorted(rng.choice(len(items), size=p, replace=False).tolist()) if p else []
    seen: list[Generation] = []
    watched = [m for m in {id(m): m for m in llms if hasattr(m, "observers")}.values()]
    for m in watched:
        m.observers.append(seen.append)
    t0 = time.perf_counter()
    try:
        if sample:
            run([items[i] for i in sample])
    finally:
        wall = time.perf_counter() - t0
        for m in watched:
            m.observers.remove(seen.append)
    fresh = [g for g in seen if not g.cached]
    if seen and len(fresh) == len(seen):
        probe_s, basis = wall, "measured"
    else:
        probe_s = sum(g.seconds if not g.cached else g.paid_seconds for g in seen) / width
        basis = "cached latencies" if seen else "no requests"
    scale = len(items) / p if p else 0.0
    t_in, t_out = sum(g.tokens_in for g in seen), sum(g.tokens_out for g in seen)
    cost = None
    if price_in or price_out:
        cost = round((t_in * price_in + t_out * price_out) / 1e6 * scale, 6)
    return Estimate(stage=stage, model=str(getattr(llms[0], "name", "?")) if llms else "?", groups=len(items),
                    probe_groups=p, requests=round(len(seen) * scale), tokens_in=round(t_in * scale),
                    tokens_out=round(t_out * scale), seconds=round(probe_s * scale, 1), basis=basis, cost=cost,
                    probe={"requests": len(seen), "fresh": len(fresh), "tokens_in": t_in, "tokens_out": t_out,
                           "seconds": round(probe_s, 2), "width": width})


def probe_stage(stage: Any, items: list, run: Callable[[list], Any], *models: Any) -> None:
    """A generating stage's estimate from a probe of its own groups: kept for its report, printed, and
    with ``stage.estimate_only`` (``purgemix run --estimate``) the end of the run."""
    from ..core.progress import console

    est = run_probe(stage.name, [m for m in (stage.llm, *models) if m is not None], run, items,
                    seed=getattr(stage, "seed", 0), price_in=stage.prices[0], price_out=stage.prices[1])
    stage._estimate = est.as_dict()
    console.print(est.text(), highlight=False)
    if stage.estimate_only:
        raise EstimateReady(est)


def generation_probe(stage: Any, make: Callable[[list], list], rate: bool) -> Callable[[list], None]:
    """What the probe runs for a generating stage: ``make(groups)`` (fuse or distil, outcomes in order), then
    for the accepted ones what the step does next with a model: the quality reward (``rate``: fusion
    scores its new pairs after the fact; distillation already did inside ``make``) and the judge's audit."""

    def run(part: list) -> None:
        from .text import new_record
        from .verdict import audit

        done = [(o, p) for o, p in zip(make(part), part) if o.ok]
        if rate and getattr(stage, "quality", None) is not None and done:
            stage.quality([(o.instruction, o.response) for o, _ in done])
        # the same record ids as the step's, so the judge sees the same prompts (and the step hits the cache)
        audit(stage, [(new_record(o.instruction, o.response, [r["id"] for r in p], stage=stage.name, lineage={}), p)
                      for o, p in done], record=False)

    return run
