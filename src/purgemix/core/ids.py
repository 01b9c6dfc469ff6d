"""64-bit id hashes: how the ledger, the run directory and the dedup name records compactly.

They live apart from the ledger so that the run directory, which stores them beside each shard, and the
ledger, which reads run directories, do not import each other.
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import numpy as np


def id_hash(record_id: str) -> int:
    """64-bit key of an id (collisions: ~1 in 10^7 for 10^6 ids squared over 2^64 — negligible)."""
    return int.from_bytes(hashlib.blake2b(str(record_id).encode(), digest_size=8).digest(), "little", signed=True)


def hash_ids(ids: Iterable[str]) -> np.ndarray:
    return np.fromiter((id_hash(i) for i in ids), dtype=np.int64)


def isin_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """Which of ``values`` are in the sorted array ``sorted_set`` (one binary search each)."""
    if len(sorted_set) == 0 or len(values) == 0:
        return np.zeros(len(values), dtype=bool)
    pos = np.searchsorted(sorted_set, values)
    pos[pos >= len(sorted_set)] = 0
    return sorted_set[pos] == values
