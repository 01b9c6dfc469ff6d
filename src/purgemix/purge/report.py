"""The purge report: hits per rule, overlaps between rules, examples, feature histograms with the
thresholds drawn on them (JSON + a self-contained HTML page)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

import numpy as np

from ..core.record import instruction_of, response_of
from .priors import GRID

EXAMPLES = 3
BINS = 40


def build_report(events: Iterable[dict[str, Any]], rules_state: dict[str, Any] | None,
                 dedup_state: dict[str, Any] | None, summary: dict[str, Any]) -> dict[str, Any]:
    acc = ReportCounts()
    for e in events:
        acc.add(e)
    return acc.report(rules_state, dedup_state, summary)


class ReportCounts:
    """The event-dependent part of the report, fed one event at a time (so the caller can write the
    dropped list in the same pass over the events)."""

    def __init__(self):
        self.first: Counter = Counter()
        self.fired: Counter = Counter()
        self.pairs: dict[str, Counter] = defaultdict(Counter)
        self.examples: dict[str, list] = defaultdict(list)

    def add(self, e: dict[str, Any]) -> None:
        if e.get("outcome") != "dropped":
            return
        first, fired, pairs, examples = self.first, self.fired, self.pairs, self.examples
        names = e.get("rules") or [e.get("reason", "?")]
        first[e.get("reason", names[0])] += 1
        for a in names:
            fired[a] += 1
            for b in names:
                if a != b:
                    pairs[a][b] += 1
            if len(examples[a]) < EXAMPLES and e.get("record"):
                r = e["record"]
                ex = {"id": e["id"], "source": r.get("source", ""), "instruction": _clip(instruction_of(r)),
                      "response": _clip(response_of(r)), "rules": names}
                if e.get("values"):
                    ex["values"] = e["values"]
                if e.get("duplicate_of"):
                    ex["duplicate_of"] = e["duplicate_of"]
                examples[a].append(ex)

    def to_json(self) -> dict[str, Any]:
        return {"first": self.first, "fired": self.fired, "pairs": self.pairs, "examples": self.examples}

    def merge(self, part: dict[str, Any]) -> None:
        """Add the counts of a later part of the events (``to_json``, e.g. one shard's, counted by its worker):
        the same result as adding its events here, examples included (the first ``EXAMPLES`` per rule in
        event order)."""
        self.first.update(part["first"])
        self.fired.update(part["fired"])
        for a, c in part["pairs"].items():
            self.pairs[a].update(c)
        for a, exs in part["examples"].items():
            room = EXAMPLES - len(self.examples[a])
            if room > 0:
                self.examples[a].extend(exs[:room])

    def report(self, rules_state: dict[str, Any] | None, dedup_state: dict[str, Any] | None,
               summary: dict[str, Any]) -> dict[str, Any]:
        return _report(self.first, self.fired, self.pairs, self.examples, rules_state, dedup_state, summary)


def _report(first: Counter, fired: Counter, pairs: dict[str, Counter], examples: dict[str, list],
            rules_state: dict[str, Any] | None, dedup_state: dict[str, Any] | None,
            summary: dict[str, Any]) -> dict[str, Any]:
    rules_out = []
    state_rules = (rules_state or {}).get("rules", [])
    est = (rules_state or {}).get("estimated_hit_rate", {})
    for r in state_rules:
        rules_out.append({**r, "dropped_first": first.get(r["name"], 0), "fired": fired.get(r["name"], 0),
                          "estimated_hit_rate": est.get(r["name"])})
    for name in ("exact-duplicate", "near-duplicate"):
        rules_out.append({"name": name, "reason": "duplicate of a kept record (dedup)", "condition": "dedup",
                          "dropped_first": first.get(name, 0), "fired": fired.get(name, 0)})
    priors = (rules_state or {}).get("priors", {}).get("features", {})
    hist = {}
    for r in state_rules:
        for c in r["conditions"]:
            f, t = c["feature"], c["threshold"]
            p = priors.get(f)
            if not p or not p.get("count"):
                continue
            h = hist.setdefault(f, _histogram(p))
            if isinstance(t, (int, float)) and not isinstance(t, bool) and not c.get("pool"):
                h["thresholds"].append({"rule": r["name"], "op": c["op"], "value": t})
    return {
        "summary": {k: summary.get(k) for k in ("read", "written", "dropped", "quarantined", "elapsed_seconds")},
        "dropped_by_reason": dict(first.most_common()),
        "rules": rules_out,
        "overlaps": {a: dict(c.most_common()) for a, c in sorted(pairs.items())},
        "examples": dict(examples),
        "dedup": (dedup_state or {}).get("stats"),
        "priors_source": (rules_state or {}).get("priors", {}).get("source"),
        "warnings": (rules_state or {}).get("warnings", []),
        "histograms": hist,
    }


def _clip(s: str, n: int = 300) -> str:
    return s if len(s) <= n else s[:n] + "…"


def _histogram(prior: dict[str, Any]) -> dict[str, Any]:
    q = np.asarray(prior["quantiles"], dtype=np.float64)
    lo, hi = float(q[1]), float(q[-2])  # 0.1% .. 99.9%
    if hi <= lo:
        lo, hi = float(q[0]), float(q[-1])
    if hi <= lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, BINS + 1)
    # the CDF at the edges, from the quantile grid (count of values <= x)
    uq, idx = np.unique(q, return_index=True)
    last = np.searchsorted(q, uq, side="right") - 1
    cdf = np.interp(edges, uq, GRID[last], left=0.0, right=1.0)
    counts = np.diff(cdf) * prior["count"]
    counts[0] += cdf[0] * prior["count"]
    return {"edges": [round(float(x), 6) for x in edges], "counts": [int(round(c)) for c in counts],
            "median": prior["median"], "count": prior["count"], "thresholds": []}
