"""Ingest: raw rows of an input file -> validated canonical records, bad rows -> quarantine.

The driver reads the file (cheap) and cuts it into shards of raw rows at fixed row counts, so
shard boundaries are the same on every run and every executor; the parsing, validation and
conversion of a shard runs in a worker (``ingest_shard``).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..io.readers import Oversized, RawRow, decode_json_line
from .ids import id_hash, isin_sorted
from .shapes import Converter, RecordError

STAGE = "ingest"


def _raw_text(payload: Any) -> dict[str, str]:
    """Keep the bad row itself, so quarantine loses nothing (base64 when not UTF-8)."""
    if payload is None:
        return {}
    if isinstance(payload, Oversized):  # too big to keep whole: its start, size and hash
        return {"raw_prefix": payload.prefix.decode("utf-8", "replace"), "raw_bytes": payload.size,
                "raw_blake2b": payload.blake2b}
    if isinstance(payload, bytes):
        try:
            return {"raw": payload.decode("utf-8").rstrip("\n")}
        except UnicodeDecodeError:
            return {"raw_base64": base64.b64encode(payload).decode("ascii")}
    import orjson

    try:
        return {"raw": orjson.dumps(payload, default=str).decode()}
    except TypeError:
        return {"raw": repr(payload)}


def ingest_shard(
    rows: list[RawRow],
    *,
    source_name: str,
    unit: str,
    mapping: dict[str, str],
    shape: str | None,
) -> tuple[list[dict], list[dict], dict[str, Any], np.ndarray]:
    convert = Converter(source_name, mapping, shape)
    records: list[dict] = []
    events: list[dict] = []
    for row, payload, error in rows:
        obj = payload
        if error is None and isinstance(payload, bytes):
            obj, error = decode_json_line(payload)
        if error is None:
            try:
                record = convert(obj)
            except RecordError as e:
                error = str(e)
            else:
                record["lineage"].setdefault("ref", f"{source_name}:{row}")
                records.append(record)
                continue
        events.append(
            {
                "outcome": "quarantined",
                "stage": STAGE,
                "source": source_name,
                unit: row,
                "ref": f"{source_name}:{row}",
                "reason": error,
                **_raw_text(payload),
            }
        )
    counters = {"in": len(rows), "out": len(records), "quarantined": len(events)}
    hashes = np.fromiter((id_hash(r["id"]) for r in records), dtype=np.int64, count=len(records))
    return records, events, counters, hashes


class IdRegistry:
    """Makes ids unique across a run with 8 bytes per record (a sorted int64 array, not a set of
    strings): the n-th repeat of an id gets the suffix ``.n``. Order-dependent, hence applied in
    shard order by the driver, so ids are the same on every run and executor."""

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.int64)
        self._repeats: dict[int, int] = {}

    def _remember(self, new: np.ndarray) -> None:
        """Add sorted hashes not seen before. Two sorted runs: a stable sort (timsort) merges them in linear
        time; np.union1d would re-unique the whole array on every shard (quadratic over a run)."""
        if len(new):
            self._seen = np.sort(np.concatenate([self._seen, new]), kind="stable")

    def _has(self, h: int) -> bool:
        j = int(np.searchsorted(self._seen, h))
        return j < len(self._seen) and int(self._seen[j]) == h

    def assign(self, ids: list[str], hashes: np.ndarray) -> dict[str, str]:
        renames: dict[str, str] = {}
        if len(hashes) == 0:
            return renames
        seen_before = isin_sorted(hashes, self._seen)
        uniq, first, counts = np.unique(hashes, return_index=True, return_counts=True)
        repeated_inside = np.zeros(len(hashes), bool)
        if (counts > 1).any():
            first_set = set(first.tolist())
            dup_hashes = set(uniq[counts > 1].tolist())
            repeated_inside = np.fromiter(
                ((h in dup_hashes and i not in first_set) for i, h in enumerate(hashes.tolist())), bool, len(hashes)
            )
        # An id is renamed when an earlier record (this shard or before) has it, as an original id or as a new
        # name; a new name must be one no earlier record has. Only ids before a record count, so the result
        # does not depend on the shard size: ids x, x, x.1 become x, x.1, x.1.1 (never two x.1).
        flagged = seen_before | repeated_inside
        if not flagged.any():  # the common shard: no id repeats, so no new name (and no name to collide with)
            self._remember(uniq[~isin_sorted(uniq, self._seen)])
            return renames
        first_at = dict(zip(uniq.tolist(), first.tolist()))  # where each original id first appears here
        given: set[int] = set()  # the new names of this shard
        for i, h in enumerate(hashes.tolist()):
            if not flagged[i] and h not in given:
                continue
            n = self._repeats.get(h, 0)
            while True:
                n += 1
                candidate = f"{ids[i]}.{n}"
                ch = id_hash(candidate)
                if ch not in given and first_at.get(ch, len(hashes)) >= i and not self._has(ch):
                    break
            self._repeats[h] = n
            given.add(ch)
            renames[str(i)] = candidate
        new = uniq[~isin_sorted(uniq, self._seen)]
        if given:  # a later id equal to a new name is renamed in its turn
            new = np.union1d(new, np.fromiter(given, np.int64, len(given)))
        self._remember(new)
        return renames
