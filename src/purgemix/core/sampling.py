"""Reservoir sampling (Vitter's algorithm R): a uniform, seeded sample of at most ``k`` items from a stream
of unknown length, in bounded memory.

``Reservoir``         one item at a time (the run report's examples).
``ColumnReservoir``   a batch of columns at a time, the same rows of every column (the rules' hit-rate
                      estimate).
``replacement_slots`` the vectorised draw for a batch, shared with ``purge.priors.Reservoir`` (which
                      stores one float column compactly).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Reservoir:
    """A uniform sample of at most ``k`` items from a stream (seeded: the same run, the same sample)."""

    def __init__(self, k: int, seed: int = 0):
        self.k, self.seen, self.items = k, 0, []
        self.rng = np.random.default_rng(seed)

    def add(self, item: Any) -> None:
        self.seen += 1
        if len(self.items) < self.k:
            self.items.append(item)
        else:
            j = int(self.rng.integers(0, self.seen))
            if j < self.k:
                self.items[j] = item


def replacement_slots(seen: int, count: int, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Algorithm R for ``count`` new items arriving after ``seen`` (>= ``size``) others: the positions of
    those that enter the sample and the slots they take, in arrival order (so assigning them in this order
    lets a later item win a slot drawn twice, as the sequential algorithm does)."""
    idx = np.arange(seen, seen + count)
    j = (rng.random(count) * (idx + 1)).astype(np.int64)
    pos = np.nonzero(j < size)[0]
    return pos, j[pos]


class ColumnReservoir:
    """A uniform sample of ``size`` rows, filled a batch of columns at a time: the same rows of every
    column, any value type. The caller passes the generator, so one seeded stream can serve a whole fit."""

    def __init__(self, size: int, names: list[str]):
        self.size, self.seen = size, 0
        self.cols: dict[str, list] = {f: [] for f in names}

    def add(self, rows: dict[str, Any], n: int, rng: np.random.Generator) -> None:
        take = max(0, min(n, self.size - self.seen))  # while the sample is not full: every row
        for f, col in self.cols.items():
            col.extend(list(rows[f][:take]))
        if take < n:
            pos, slots = replacement_slots(self.seen + take, n - take, self.size, rng)
            rows_at, slots = (pos + take).tolist(), slots.tolist()
            for f, col in self.cols.items():
                src = rows[f]
                for r, s_ in zip(rows_at, slots):  # in arrival order: a later row wins a slot drawn twice
                    col[s_] = src[r]
        self.seen += n

    def items(self):
        return self.cols.items()
