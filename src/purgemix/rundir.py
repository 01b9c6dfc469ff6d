"""The run directory: manifest, per-stage shards written atomically, and their events.

Layout::

    RUN/manifest.json                 config, its hash, input fingerprints, versions, per-stage counts
    RUN/stages/NN-<stage>/stage.json  the stage's fingerprint (a mismatch clears the folder)
    RUN/stages/NN-<stage>/state.json  fitted state of a FitMapStage
    RUN/stages/NN-<stage>/S.records.jsonl.zst, S.events.jsonl, S.done.json (written last)
    RUN/stages/NN-<stage>/done.json   the whole stage is complete, with its counters
    RUN/quarantine.jsonl              bad input rows: file, line, reason, raw text
    RUN/ledger.json                   the balance of the last check

A shard is complete exactly when its ``done.json`` exists; it is written after the records and
events files have been atomically moved into place, so a SIGKILL at any point leaves either a
complete shard or one that is redone from scratch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import orjson
import zstandard

from .record import Record


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

    def write_shard(self, index: int, records: list[Record], events: list[dict], counters: dict) -> None:
        name = self.shard_name(index)
        atomic_write_bytes(
            self.path / f"{name}.records.jsonl.zst",
            zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(_jsonl(records)),
        )
        atomic_write_bytes(self.path / f"{name}.events.jsonl", _jsonl(events))
        atomic_write_json(self.path / f"{name}.done.json", counters)

    def read_records(self, index: int) -> list[Record]:
        data = (self.path / f"{self.shard_name(index)}.records.jsonl.zst").read_bytes()
        raw = zstandard.ZstdDecompressor().decompress(data) if data else b""
        records = [orjson.loads(line) for line in raw.splitlines()]
        renames = self.path / f"{self.shard_name(index)}.renames.json"
        if renames.exists():
            mapping = read_json(renames)
            for pos, new_id in mapping.items():
                records[int(pos)]["id"] = new_id
        return records

    def read_ids(self, index: int) -> list[str]:
        """Ids of one shard without parsing whole records (the ledger check reads only these)."""
        data = (self.path / f"{self.shard_name(index)}.records.jsonl.zst").read_bytes()
        raw = zstandard.ZstdDecompressor().decompress(data) if data else b""
        ids = []
        for line in raw.splitlines():
            # Records are written id-first; fall back to a full parse for anything unusual.
            end = line.find(b'"', 7) if line.startswith(b'{"id":"') else -1
            if end > 0 and b"\\" not in line[7:end]:
                ids.append(line[7:end].decode())
            else:
                ids.append(str(orjson.loads(line)["id"]))
        renames = self.path / f"{self.shard_name(index)}.renames.json"
        if renames.exists():
            for pos, new_id in read_json(renames).items():
                ids[int(pos)] = new_id
        return ids

    def read_id_hashes(self, index: int):
        """64-bit hashes of a shard's ids: from the ingest's ``.ids.npy`` when present (renamed
        positions re-hashed), else computed from the ids."""
        import numpy as np

        from .ledger import hash_ids, id_hash

        stored = self.path / f"{self.shard_name(index)}.ids.npy"
        if not stored.exists():
            return hash_ids(self.read_ids(index))
        hashes = np.load(stored)
        renames = self.path / f"{self.shard_name(index)}.renames.json"
        if renames.exists():
            for pos, new_id in read_json(renames).items():
                hashes[int(pos)] = id_hash(new_id)
        return hashes

    def read_events(self, index: int) -> list[dict]:
        path = self.path / f"{self.shard_name(index)}.events.jsonl"
        return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []

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

    def iter_events(self) -> Iterator[dict]:
        for i in range(self.info()["shards"]):
            yield from self.read_events(i)

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

    @property
    def manifest_path(self) -> Path:
        return self.path / "manifest.json"

    def stage(self, position: int, name: str) -> StageDir:
        return StageDir(self.path / "stages" / f"{position:02d}-{name}")

    def stage_dirs(self) -> list[StageDir]:
        root = self.path / "stages"
        return [StageDir(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.exists() else []

    def manifest(self) -> dict[str, Any]:
        return read_json(self.manifest_path) if self.manifest_path.exists() else {}

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)
