"""The run directory: manifest, per-stage shards written atomically, and their events.

Layout::

    RUN/manifest.json                 config, its hash, input fingerprints, versions, per-stage counts
    RUN/stages/NN-<stage>/stage.json  the stage's fingerprint (a mismatch clears the folder)
    RUN/stages/NN-<stage>/state.json  fitted state of a FitMapStage
    RUN/stages/NN-<stage>/S.records.jsonl.zst, S.events.jsonl, S.done.json (written last)
    RUN/stages/NN-<stage>/S.scores.bin.zst, S.events.scores.bin.zst   columnar ``scores`` (see below)
    RUN/stages/NN-<stage>/S.events.records.jsonl.zst  the records that events carry (``"record":null`` in the
                                                      event line), so events can be read without them
    RUN/stages/NN-<stage>/done.json   the whole stage is complete, with its counters
    RUN/quarantine.jsonl              bad input rows: file, line, reason, raw text
    RUN/ledger.json                   the balance of the last check

A shard is complete exactly when its ``done.json`` exists; it is written after the records and
events files have been atomically moved into place, so a SIGKILL at any point leaves either a
complete shard or one that is redone from scratch.

Scores are stored by column: when every record of a shard has a ``scores`` dict with the same keys
in the same order (what a scoring stage writes: 85 numbers a record), the values go to
``S.scores.bin.zst`` (int64 / float64 columns, anything else as a JSON list) and the record's JSON
keeps ``"scores":null`` in its place; ``read_records`` puts the dict back, so readers see exactly
the records that were written (NaN and infinities read back as ``None``, as through JSON). The same
holds for the records that events carry (``S.events.scores.bin.zst``). Writing and parsing 85 keys
a record as JSON was most of the cost of passing scored records between stages.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

import orjson
import zstandard

from .record import Record
from .runlock import RunLock


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str))


def read_json(path: Path) -> Any:
    return orjson.loads(path.read_bytes())


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows)


_ZSTD_LEVEL = 1  # intermediate shards: speed over size

_SCORES = "scores.bin.zst"
_EVENT_SCORES = "events.scores.bin.zst"
_EVENT_RECORDS = "events.records.jsonl.zst"


def _uniform_scores(dicts: list[Any]) -> tuple[str, ...] | None:
    """The common key order of a list of ``scores`` dicts, or None when they differ (or are empty)."""
    if not dicts or type(dicts[0]) is not dict or not dicts[0]:
        return None
    keys = tuple(dicts[0])
    n = len(keys)
    for d in dicts:
        if type(d) is not dict or len(d) != n or tuple(d) != keys:
            return None
    return keys


def _encode_columns(dicts: list[dict], keys: tuple[str, ...], extra: dict[str, Any] | None = None) -> bytes:
    """Columns of the given dicts (all with ``keys``) as one zstd blob (``_encode``)."""
    return _encode(keys, list(zip(*[tuple(d.values()) for d in dicts])), len(dicts), extra)


def _encode(keys: Sequence[str], cols: Sequence[Any], n: int, extra: dict[str, Any] | None = None) -> bytes:
    """Columns as one zstd blob: a JSON header line, then the columns' bytes. Integer columns are int64,
    float columns (None allowed) float64 with NaN for None, anything else (strings, bools, mixed types) a
    JSON list. A column may be a numpy array: integer and float arrays are stored as they are (a float
    reads back as the Python float, NaN and infinities as None), others as their ``tolist()``."""
    import numpy as np

    kinds, parts = [], []
    nan = float("nan")
    for col in cols:
        data = None
        if isinstance(col, np.ndarray):
            if col.dtype.kind in "iu" and (col.size == 0 or (col.min() >= -2**63 and col.max() < 2**63)):
                data, kind = col.astype(np.int64).tobytes(), "i8"
            elif col.dtype.kind == "f":
                arr = col.astype(np.float64)  # a copy
                arr[~np.isfinite(arr)] = nan
                data, kind = arr.tobytes(), "f8"
            else:
                col = col.tolist()
        if data is not None:
            pass
        elif (types := set(map(type, col))) == {int}:
            try:
                data, kind = np.array(col, dtype=np.int64).tobytes(), "i8"
            except OverflowError:
                data = None
        elif float in types and types <= {float, type(None)}:
            arr = np.array([nan if v is None else v for v in col] if type(None) in types else col, dtype=np.float64)
            arr[~np.isfinite(arr)] = nan  # JSON has no NaN or infinity: they read back as null
            data, kind = arr.tobytes(), "f8"
        if data is None:
            data, kind = orjson.dumps(list(col)), "json"
        kinds.append([kind, len(data)])
        parts.append(data)
    header = orjson.dumps({"keys": list(keys), "n": n, "cols": kinds, **(extra or {})})
    return zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(header + b"\n" + b"".join(parts))


def _decode_columns(blob: bytes, arrays: bool = False) -> tuple[dict[str, Any], list]:
    import numpy as np

    raw = zstandard.ZstdDecompressor().decompress(blob)
    cut = raw.index(b"\n")
    header = orjson.loads(raw[:cut])
    view = memoryview(raw)[cut + 1:]
    cols, at = [], 0
    for kind, size in header["cols"]:
        chunk = view[at:at + size]
        at += size
        if kind == "json":
            cols.append(orjson.loads(chunk))
            continue
        arr = np.frombuffer(chunk, dtype=np.int64 if kind == "i8" else np.float64)
        cols.append(arr if arrays else _column_values(arr, kind))
    return header, cols


def _column_values(arr, kind: str) -> list:
    """A stored numeric column as the values a JSON round trip gives (NaN as None)."""
    import numpy as np

    values = arr.tolist()
    if kind == "f8" and np.isnan(arr).any():
        values = [None if v != v else v for v in values]
    return values


def _runs(records: list[dict]) -> list[list]:
    """The records' ``source`` values as [value, count] runs (a shard usually holds one or two sources)."""
    runs: list[list] = []
    for r in records:
        src = r.get("source", "")
        if runs and runs[-1][0] == src:
            runs[-1][1] += 1
        else:
            runs.append([src, 1])
    return runs


def _attach(records: list[dict], keys: list[str], cols: list[list]) -> None:
    from itertools import repeat

    for r, scores in zip(records, map(dict, map(zip, repeat(keys), zip(*cols)))):
        r["scores"] = scores


class StageDir:
    """One stage's folder of shards."""

    def __init__(self, path: Path):
        self.path = path

    def shard_name(self, index: int) -> str:
        return f"{index:06d}"

    def is_done(self, index: int) -> bool:
        return (self.path / f"{self.shard_name(index)}.done.json").exists()

    def done_info(self, index: int) -> dict[str, Any]:
        return read_json(self.path / f"{self.shard_name(index)}.done.json")

    def write_shard(self, index: int, records: list[Record], events: list[dict], counters: dict,
                    columns: dict[str, Any] | None = None) -> None:
        """``columns``: the records' ``scores`` by column when the caller has them (``Result.columns``), so
        they need not be collected from the records again."""
        name = self.shard_name(index)
        if columns and records:
            keys = tuple(columns)
            atomic_write_bytes(self.path / f"{name}.{_SCORES}", _encode(keys, list(columns.values()), len(records),
                                                                        {"sources": _runs(records)}))
        else:
            keys = _uniform_scores([r.get("scores") for r in records])
            if keys:
                atomic_write_bytes(self.path / f"{name}.{_SCORES}",
                                   _encode_columns([r["scores"] for r in records], keys, {"sources": _runs(records)}))
        if keys:
            records = [{**r, "scores": None} for r in records]
        else:
            (self.path / f"{name}.{_SCORES}").unlink(missing_ok=True)  # left by an interrupted earlier attempt
        atomic_write_bytes(
            self.path / f"{name}.records.jsonl.zst",
            zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(_jsonl(records)),
        )
        pos = [i for i, e in enumerate(events) if type(e.get("record")) is dict and e["record"].get("scores")]
        keys = _uniform_scores([events[i]["record"]["scores"] for i in pos])
        if keys:
            atomic_write_bytes(self.path / f"{name}.{_EVENT_SCORES}",
                               _encode_columns([events[i]["record"]["scores"] for i in pos], keys, {"pos": pos}))
            events = list(events)
            for i in pos:
                events[i] = {**events[i], "record": {**events[i]["record"], "scores": None}}
        else:
            (self.path / f"{name}.{_EVENT_SCORES}").unlink(missing_ok=True)
        # the records that events carry go to their own file (first line: their event positions), so readers
        # that need only the events (counts, the ledger) do not parse them
        pos = [i for i, e in enumerate(events) if type(e.get("record")) is dict]
        if pos:
            lines = [orjson.dumps({"pos": pos})] + [orjson.dumps(events[i]["record"]) for i in pos]
            atomic_write_bytes(self.path / f"{name}.{_EVENT_RECORDS}",
                               zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(b"\n".join(lines)))
            events = list(events)
            for i in pos:
                events[i] = {**events[i], "record": None}
        else:
            (self.path / f"{name}.{_EVENT_RECORDS}").unlink(missing_ok=True)
        atomic_write_bytes(self.path / f"{name}.events.jsonl", _jsonl(events))
        atomic_write_json(self.path / f"{name}.done.json", counters)

    def write_shard_lines(self, index: int, lines: list[bytes], events: list[dict], carried: dict[int, bytes],
                          counters: dict) -> None:
        """``write_shard`` for records given as their JSON lines (``lines``; ``carried``: event position -> the
        line of the record that event carries, whose ``record`` is None in ``events``). The lines are stored
        as they are; their scores stay inline (the readers give back the same records either way)."""
        name = self.shard_name(index)
        for stale in (_SCORES, _EVENT_SCORES):
            (self.path / f"{name}.{stale}").unlink(missing_ok=True)  # left by an interrupted earlier attempt
        atomic_write_bytes(self.path / f"{name}.records.jsonl.zst",
                           zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(b"".join(x + b"\n" for x in lines)))
        if carried:
            pos = sorted(carried)
            body = b"\n".join([orjson.dumps({"pos": pos})] + [carried[i] for i in pos])
            atomic_write_bytes(self.path / f"{name}.{_EVENT_RECORDS}",
                               zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(body))
        else:
            (self.path / f"{name}.{_EVENT_RECORDS}").unlink(missing_ok=True)
        atomic_write_bytes(self.path / f"{name}.events.jsonl", _jsonl(events))
        atomic_write_json(self.path / f"{name}.done.json", counters)

    def read_lines(self, index: int) -> list[bytes] | None:
        """The shard's records as their stored JSON lines, ids renamed; None when the shard stores scores by
        column (its lines are not whole records)."""
        name = self.shard_name(index)
        if (self.path / f"{name}.{_SCORES}").exists():
            return None
        data = (self.path / f"{name}.records.jsonl.zst").read_bytes()
        lines = (zstandard.ZstdDecompressor().decompress(data) if data else b"").splitlines()
        renames = self.path / f"{name}.renames.json"
        if renames.exists():
            for pos, new_id in read_json(renames).items():
                r = orjson.loads(lines[int(pos)])
                r["id"] = new_id
                lines[int(pos)] = orjson.dumps(r)
        return lines

    def read_records(self, index: int, scores: bool = True, rows: slice | None = None) -> list[Record]:
        """The shard's records (``rows``: only those positions, e.g. one part of a large shard; the others
        are not decoded); ``scores=False`` leaves ``scores`` as ``None`` where the shard stores them by column
        (for readers that take them from ``read_columns``)."""
        data = (self.path / f"{self.shard_name(index)}.records.jsonl.zst").read_bytes()
        raw = zstandard.ZstdDecompressor().decompress(data) if data else b""
        lines = raw.splitlines()
        start = 0
        if rows is not None:
            start = rows.indices(len(lines))[0]
            lines = lines[rows]
        records = [orjson.loads(line) for line in lines]
        columns = self.path / f"{self.shard_name(index)}.{_SCORES}"
        if scores and records and columns.exists():
            header, cols = _decode_columns(columns.read_bytes(), arrays=rows is not None)
            if rows is not None:
                cols = [c[rows] if isinstance(c, list) else _column_values(c[rows], kind)
                        for c, (kind, _) in zip(cols, header["cols"])]
            _attach(records, header["keys"], cols)
        renames = self.path / f"{self.shard_name(index)}.renames.json"
        if renames.exists():
            mapping = read_json(renames)
            for pos, new_id in mapping.items():
                if 0 <= int(pos) - start < len(records):
                    records[int(pos) - start]["id"] = new_id
        return records

    def read_ids(self, index: int, renamed: bool = True) -> list[str]:
        """Ids of one shard without parsing whole records (the ledger check reads only these);
        ``renamed=False``: as written, before the ingest's renames."""
        listed = self.path / f"{self.shard_name(index)}.ids.json"  # the ingest writes its ids beside the records
        ids = orjson.loads(listed.read_bytes()) if listed.exists() else self._scan_ids(index, renamed)
        renames = self.path / f"{self.shard_name(index)}.renames.json"
        if renamed and renames.exists():
            for pos, new_id in read_json(renames).items():
                ids[int(pos)] = new_id
        return ids

    def _scan_ids(self, index: int, renamed: bool) -> list[str]:
        data = (self.path / f"{self.shard_name(index)}.records.jsonl.zst").read_bytes()
        raw = zstandard.ZstdDecompressor().decompress(data) if data else b""
        ids = []
        for line in raw.splitlines():
            # Records are written id-first; fall back to a full parse for anything unusual.
            end = line.find(b'"', 7) if line.startswith(b'{"id":"') else -1
            if end > 0 and b"\\" not in line[7:end]:
                ids.append(line[7:end].decode())
            else:
                ids.append(orjson.loads(line)["id"] if not renamed else str(orjson.loads(line)["id"]))
        return ids

    def renames(self, index: int) -> dict[int, str]:
        """Position -> new id for the records of an ingest shard whose id repeated an earlier one (the
        driver renames them after the shard is written; ``read_records`` applies them)."""
        path = self.path / f"{self.shard_name(index)}.renames.json"
        return {int(k): v for k, v in read_json(path).items()} if path.exists() else {}

    def read_id_hashes(self, index: int, ids: list[str] | None = None):
        """64-bit hashes of a shard's ids: from the ingest's ``.ids.npy`` when present (renamed
        positions re-hashed), else computed from the ids (``ids``: the caller's ``read_ids``, if it has them)."""
        import numpy as np

        from .ids import hash_ids, id_hash

        stored = self.path / f"{self.shard_name(index)}.ids.npy"
        if not stored.exists():
            return hash_ids(self.read_ids(index) if ids is None else ids)
        hashes = np.load(stored)
        renames = self.path / f"{self.shard_name(index)}.renames.json"
        if renames.exists():
            for pos, new_id in read_json(renames).items():
                hashes[int(pos)] = id_hash(new_id)
        return hashes

    def read_columns(self, index: int) -> dict[str, Any] | None:
        """The shard records' scores by column (key -> int64 / float64 array with NaN for None, or a list),
        or None when the shard stores them inline."""
        got = self.read_columns_and_sources(index)
        return None if got is None else got[0]

    def read_columns_and_sources(self, index: int) -> tuple[dict[str, Any], list[str]] | None:
        """``read_columns`` and the records' ``source`` values (kept beside the columns, so that a reader of
        scores by source need not parse the records), or None when the shard stores its scores inline."""
        import numpy as np

        path = self.path / f"{self.shard_name(index)}.{_SCORES}"
        if not path.exists():
            return None
        header, cols = _decode_columns(path.read_bytes(), arrays=True)
        columns = {k: (c if isinstance(c, list) else np.asarray(c)) for k, c in zip(header["keys"], cols)}
        if "sources" in header:
            sources = [name for name, count in header["sources"] for _ in range(count)]
        else:  # written before the sources were kept with the columns
            sources = [r.get("source", "") for r in self.read_records(index, scores=False)]
        return columns, sources

    def read_events(self, index: int, scores: bool = True, records: bool = True) -> list[dict]:
        """The shard's events. Cheaper reads for callers that need less: ``records=False`` leaves the
        ``record`` an event carries as ``None``; ``scores=False`` leaves that record's ``scores`` as ``None``
        where the shard stores them by column."""
        path = self.path / f"{self.shard_name(index)}.events.jsonl"
        events = [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
        carried = self.path / f"{self.shard_name(index)}.{_EVENT_RECORDS}"
        if not records or not events:
            return events
        if carried.exists():
            lines = zstandard.ZstdDecompressor().decompress(carried.read_bytes()).split(b"\n")
            for i, line in zip(orjson.loads(lines[0])["pos"], lines[1:]):
                if i < len(events):
                    events[i]["record"] = orjson.loads(line)
        columns = self.path / f"{self.shard_name(index)}.{_EVENT_SCORES}"
        if scores and columns.exists():
            header, cols = _decode_columns(columns.read_bytes())
            _attach([events[i]["record"] for i in header["pos"] if i < len(events)], header["keys"], cols)
        return events

    def shard_indices(self) -> list[int]:
        return sorted(int(p.name.split(".")[0]) for p in self.path.glob("*.done.json") if p.name[0].isdigit())

    @property
    def complete(self) -> bool:
        return (self.path / "done.json").exists()

    def mark_complete(self, info: dict[str, Any]) -> None:
        atomic_write_json(self.path / "done.json", info)

    def info(self) -> dict[str, Any]:
        return read_json(self.path / "done.json")

    def iter_records(self) -> Iterator[list[Record]]:
        for i in range(self.info()["shards"]):
            yield self.read_records(i)

    def iter_events(self, scores: bool = True, records: bool = True) -> Iterator[dict]:
        for i in range(self.info()["shards"]):
            yield from self.read_events(i, scores, records)

    def prepare(self, fingerprint: str, force: bool = False) -> None:
        """Make the folder match the stage's fingerprint: keep it (resume) or clear it."""
        marker = self.path / "stage.json"
        if self.path.exists() and (force or not marker.exists() or read_json(marker).get("fingerprint") != fingerprint):
            shutil.rmtree(self.path)
        if not marker.exists():
            atomic_write_json(marker, {"fingerprint": fingerprint})


class RunDir:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock: RunLock | None = None

    def lock(self) -> None:
        """Take the run directory for this process, or raise ``RunDirBusy`` at once (``core/runlock.py``)."""
        self._lock = RunLock(self.path / ".lock")
        self._lock.acquire()

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """``lock()`` for the duration of a block, released however the block ends."""
        self.lock()
        try:
            yield
        finally:
            self.unlock()

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def stage(self, position: int, name: str) -> StageDir:
        return StageDir(self.path / "stages" / f"{position:02d}-{name}")

    def stage_dirs(self) -> list[StageDir]:
        root = self.path / "stages"
        return [StageDir(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.exists() else []

    def keep_stages(self, names: set[str]) -> None:
        """Remove the stage folders not named in ``names``: left by a run of this folder with other stages,
        they are no part of this run, and the ledger would count them as its incomplete stages."""
        for sd in self.stage_dirs():
            if sd.path.name not in names:
                shutil.rmtree(sd.path)

    def manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path) if self.manifest_path.exists() else {}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        from .secrets import redact_obj

        atomic_write_json(self.manifest_path, redact_obj(manifest))  # specs and argv may hold a key


def package_versions() -> dict[str, str]:
    """The versions the manifest records: Python, purgemix and the packages that decide the outputs."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"python": platform.python_version(), "purgemix": __version__}
    for name in ("orjson", "pyarrow", "numpy", "zstandard", "ray", "datasets", "torch", "transformers"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
