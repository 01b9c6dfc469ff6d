"""Reservoir sampling: a uniform, seeded sample of at most ``k`` items from a stream of unknown length.
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
