"""What a worker runs for one shard: a map stage's transform (or two fused), a fit stage's prepare pass, ingest,
export, and the per-shard counters the driver sums. Every function here takes folder paths and an index, reads its
inputs from disk and writes its outputs atomically before it returns, so any executor (in-process, a process pool,
Ray) can run it and a killed task leaves nothing half-written.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from .ids import hash_ids
from .ingest import ingest_shard
from .record import Record
from .rundir import StageDir, atomic_write_bytes, atomic_write_json
from .shapes import RecordError, export
from .stage import FitMapStage, MapStage, Result, Stage


def process_shard(stage: Stage, in_dir: str, out_dir: str, index: int, state: Any = None) -> dict[str, Any]:
    """Worker side of a map stage: read one shard, transform, write atomically."""
    t0 = time.perf_counter()
    src = StageDir(Path(in_dir))
    by_lines = _apply_lines(stage, src, StageDir(Path(out_dir)), index, state, t0, decode=False)
    if by_lines is not None:
        return by_lines[0]
    by_column = stage.process_columns if isinstance(stage, (MapStage, FitMapStage)) else None
    records = src.read_records(index, scores=by_column is None)
    raw = src.read_columns(index) if by_column is not None and records else None
    if raw is not None:
        result: Result = by_column(records, raw, state)
        return write_result(result, len(records), StageDir(Path(out_dir)), index, t0)
    if by_column is not None and records:
        records = src.read_records(index)  # the shard stores its scores inline
    return _apply(stage, records, StageDir(Path(out_dir)), index, state, t0)[0]


def _apply_lines(stage: Stage, src: StageDir, dst: StageDir, index: int, state: Any, t0: float,
                 decode: bool = True) -> tuple[dict[str, Any], list[Record]] | None:
    """``_apply`` by ``process_lines`` (a stage that drops records by id and changes none): kept and dropped
    records are stored as the lines they were read as, and only the kept ones are decoded (returned for a
    fused next stage). None when the stage has no such hook or the shard stores scores by column."""
    by_lines = stage.process_lines if isinstance(stage, (MapStage, FitMapStage)) else None
    lines = src.read_lines(index) if by_lines is not None else None
    if lines is None:
        return None
    ids = src.read_ids(index)
    hashes = src.read_id_hashes(index, ids)
    res = by_lines(lines, ids, hashes, state)
    kept_lines = [lines[i] for i in res.keep]
    counters = _shard_counters(len(lines), kept_lines, res.events, res.side, dst, index, t0)
    dst.write_shard_lines(index, kept_lines, res.events, {e: lines[i] for e, i in res.carried.items()}, counters)
    return counters, [orjson.loads(x) for x in kept_lines] if decode else []


def _apply(stage: Stage, records: list[Record], dst: StageDir, index: int, state: Any, t0: float
           ) -> tuple[dict[str, Any], list[Record]]:
    result = stage.process(records) if state is None else stage.process(records, state)
    return write_result(result, len(records), dst, index, t0), result.records


def write_result(result: Result, n_in: int, dst: StageDir, index: int, t0: float) -> dict[str, Any]:
    counters = _shard_counters(n_in, result.records, result.events, result.side, dst, index, t0)
    dst.write_shard(index, result.records, result.events, counters, columns=result.columns)
    return counters


def _shard_counters(n_in: int, records: list, events: list[dict], side: dict[str, bytes], dst: StageDir,
                    index: int, t0: float) -> dict[str, Any]:
    """A processed shard's counters (with its seconds); its side files are written on the way (before the
    shard, whose done marker comes last)."""
    counters = count_result(n_in, Result(records=records, events=events))
    counters["seconds"] = round(time.perf_counter() - t0, 4)
    for suffix, data in side.items():
        atomic_write_bytes(dst.path / f"{dst.shard_name(index)}.{suffix}", data)
    return counters


def process_pair(stage: Stage, then: MapStage, in_dir: str, mid_dir: str, out_dir: str, index: int,
                  state: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Worker side of two consecutive stages fused per shard (the second one a plain map): the first stage's
    records go on to the second in memory instead of through a barrier and a second read. Each stage still
    writes its own shard, so resuming, the ledger and reports see two ordinary stages."""
    mid, out = StageDir(Path(mid_dir)), StageDir(Path(out_dir))
    records = None
    if mid.is_done(index):
        first = mid.done_info(index)
    elif stage.process_columns is not None:
        first = process_shard(stage, in_dir, mid_dir, index, state)
    else:
        t0 = time.perf_counter()
        src = StageDir(Path(in_dir))
        by_lines = _apply_lines(stage, src, mid, index, state, t0)
        first, records = by_lines if by_lines is not None else \
            _apply(stage, src.read_records(index), mid, index, state, t0)
    if out.is_done(index):
        return first, out.done_info(index)
    if records is None or then.process_columns is not None:
        return first, process_shard(then, mid_dir, out_dir, index)
    return first, _apply(then, records, out, index, None, time.perf_counter())[0]


def prepare_shard(stage: FitMapStage, in_dir: str, out_dir: str, index: int) -> int:
    """Worker side of a fit stage's prepare pass: one shard's records -> the stage's prep files."""
    records = StageDir(Path(in_dir)).read_records(index)
    _write_prepared(stage, records, StageDir(Path(out_dir)), index)
    return len(records)


def _write_prepared(stage: FitMapStage, records: list[Record], dst: StageDir, index: int, id_hashes=None) -> None:
    name = dst.shard_name(index)
    # the records' id hashes when the caller has them (the ingest just computed them)
    files = stage.prepare(records) if id_hashes is None else stage.prepare(records, id_hashes=id_hashes)
    for suffix, data in files.items():
        atomic_write_bytes(dst.path / f"{name}.prep.{suffix}", data)
    atomic_write_json(dst.path / f"{name}.prep.json", {"records": len(records)})


EXPORT_PART = 2500  # records per export task: a shard with many survivors is split between the workers


def export_shard(in_dir: str, index: int, shape: str, part: str, rows: tuple[int, int] | None = None
                  ) -> tuple[str, list[dict], Any, int]:
    """Worker side of export: one shard (``rows``: the records from..to of it) -> its rows in the output shape,
    as JSON Lines in the file ``part`` (which the driver appends to the output without reading it), and the
    events of records that cannot be written in that shape."""
    src = StageDir(Path(in_dir))
    span = slice(*rows) if rows is not None else None
    records = src.read_records(index, rows=span)
    lines, exported, events = [], [], []
    for r in records:
        try:
            lines.append(orjson.dumps(export(r, shape), option=orjson.OPT_APPEND_NEWLINE))
            exported.append(True)
        except RecordError as e:
            exported.append(False)
            events.append({"id": r["id"], "outcome": "dropped", "stage": "export",
                           "reason": f"cannot be written as {shape}", "detail": str(e), "record": r})
    # the written records' ids (renames applied by read_records): one part's, not the whole shard's
    hashes = hash_ids([r["id"] for r, ok in zip(records, exported) if ok])
    Path(part).write_bytes(b"".join(lines))
    return part, events, hashes, len(records)


def ingest_and_write(rows, out_dir: str, index: int, prepare: tuple[FitMapStage, str] | None = None,
                      **kw) -> dict[str, Any]:
    """Worker side of ingest; ``prepare``: (the first stage, its folder) when that stage has a prepare pass,
    which then runs here on the records just ingested instead of reading them back later. Their ids are the
    ids before the driver's renames of repeated ids (``StageDir.renames``); the stage applies those."""
    import numpy as np

    records, events, counters, hashes = ingest_shard(rows, **kw)
    dst = StageDir(Path(out_dir))
    np.save(dst.path / f"{dst.shard_name(index)}.ids.npy", hashes)
    # the ids as text too: the driver needs them for every shard with a repeated id (content-hash ids of
    # duplicate records), and a JSON list reads 40x faster than scanning the compressed records
    atomic_write_bytes(dst.path / f"{dst.shard_name(index)}.ids.json", orjson.dumps([r["id"] for r in records]))
    dst.write_shard(index, records, events, counters)
    if prepare is not None:
        _write_prepared(prepare[0], records, StageDir(Path(prepare[1])), index, id_hashes=hashes)
    return counters


def count_result(n_in: int, result: Result) -> dict[str, Any]:
    outcomes = Counter(e["outcome"] for e in result.events)
    dropped = Counter(e.get("reason", "?") for e in result.events if e["outcome"] == "dropped")
    return {
        "in": n_in,
        "out": len(result.records),
        "dropped": dict(dropped),
        "merged": outcomes.get("merged", 0),
        "rewritten": outcomes.get("rewritten", 0),
        "created": outcomes.get("created", 0),
    }


def sum_counters(items: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for c in items:
        for k, v in c.items():
            if k == "seconds":
                continue
            if isinstance(v, dict):
                agg = total.setdefault(k, {})
                for r, n in v.items():
                    agg[r] = agg.get(r, 0) + n
            elif isinstance(v, (int, float)):
                total[k] = total.get(k, 0) + v
    return total


def done_counters(out_dir: str, index: int) -> dict[str, Any]:
    return StageDir(Path(out_dir)).done_info(index)


def dispatch(fn, a, kw):
    return fn(*a, **kw)
