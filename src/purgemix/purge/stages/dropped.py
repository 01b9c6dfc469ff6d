"""The purge's dropped list, written by the shards: each drop event becomes its line of
``STEM.dropped.jsonl`` (the record with ``purge: {reason, rules, duplicate_of, values}``) in a compressed
side file, with the shard's share of the report's counts in another, so the driver only concatenates bytes
and adds up counts."""

from __future__ import annotations

from typing import Any

from ...core.stage import Result

DROPPED_SUFFIX = "dropped.jsonl.zst"
COUNTS_SUFFIX = "dropped.counts.json"  # the shard's share of the report (``ReportCounts.to_json``)


def dropped_row(event: dict[str, Any]) -> dict[str, Any]:
    """The line of ``STEM.dropped.jsonl`` for a drop event: the record with ``purge: {reason, rules,
    duplicate_of, values}``."""
    r = dict(event.get("record") or {"id": event["id"]})
    info = {"reason": event.get("reason"), "rules": event.get("rules") or [event.get("reason")]}
    for k in ("duplicate_of", "values"):
        if k in event:
            info[k] = event[k]
    r["purge"] = info
    return r


def dropped_side(res: Result) -> Result:
    """Render the shard's dropped records as their ``STEM.dropped.jsonl`` lines in the worker (a side file),
    and count them for the report (another), so the driver only concatenates bytes and adds up counts
    instead of decoding and re-encoding every dropped record."""
    import orjson
    import zstandard

    from ..report import ReportCounts

    counts = ReportCounts()
    rows = []
    for e in res.events:
        if e.get("outcome") == "dropped":
            rows.append(orjson.dumps(dropped_row(e), option=orjson.OPT_APPEND_NEWLINE))
            counts.add(e)
    res.side[DROPPED_SUFFIX] = zstandard.ZstdCompressor(level=1).compress(b"".join(rows))
    res.side[COUNTS_SUFFIX] = orjson.dumps(counts.to_json())
    return res
