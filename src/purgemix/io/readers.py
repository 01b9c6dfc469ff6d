"""Streaming readers: every supported file becomes a stream of raw rows with positions.

A raw row is ``(row, payload, error)``: ``row`` is the 1-based line (JSONL, CSV), item (JSON
list) or row (Parquet, HF) number; ``payload`` is the decoded object, or the raw ``bytes`` of a
JSONL line (decoded later, in a worker, so that parsing runs in parallel); ``error`` is the
reason the row is unusable, or ``None``. Memory stays flat: files are read in batches.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import orjson

RawRow = tuple[int, Any, str | None]

FORMATS = ("jsonl", "json", "parquet", "csv", "hf")
COMPRESSIONS = {".gz": "gzip", ".gzip": "gzip", ".zst": "zstd", ".zstd": "zstd", ".bz2": "bz2"}
BOM = b"\xef\xbb\xbf"  # a UTF-8 byte-order mark, which some editors put at the start of any text file
_ESCAPED = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of an invalid UTF-8 byte
_SMALL_JSON = 256 * 1024 * 1024  # JSON lists below this size are parsed in one go (faster than streaming)


RAW_PREFIX = 4096  # bytes of an oversized row kept in its quarantine row


@dataclass(frozen=True)
class Oversized:
    """What the quarantine keeps of a row over ``--max-record-bytes``: its first bytes, its size and a hash
    (enough to find it in the file and tell it from others, without storing megabytes per bad row)."""

    prefix: bytes
    size: int
    blake2b: str

    @classmethod
    def of(cls, raw: bytes) -> "Oversized":
        import hashlib

        return cls(raw[:RAW_PREFIX], len(raw), hashlib.blake2b(raw, digest_size=16).hexdigest())


class SourceError(Exception):
    """The input cannot be read at all (missing, wrong kind, unknown format): one clear line."""


def _stream_errors() -> tuple[type[BaseException], ...]:
    """What a damaged compressed file raises mid-read: a truncated gzip/bz2/zstd stream is an ``EOFError``
    (which click would turn into a bare "Aborted."), corrupt data an ``OSError``, ``zlib.error`` or
    ``ZstdError``."""
    import zstandard

    return EOFError, OSError, zlib.error, zstandard.ZstdError


def _damaged(after: int, unit: str, e: BaseException) -> str:
    what = str(e) or type(e).__name__
    crc = "CRC" in what or "crc" in what
    return (f"compressed file is truncated or corrupt after {unit} {after} ({what}); the {unit}s before it were "
            f"read, the rest of the file is unreadable"
            + ("; gzip checks its CRC only at the end of a member, so the last lines read may hold damaged text"
               if crc else ""))


class _ZstdFrames(io.RawIOBase):
    """Decompressed bytes of a zstd file (one frame or several), raising ``EOFError`` when the file ends
    inside a frame: ``zstandard``'s own reader then returns a silent end of file, and a truncated file
    would lose its tail with no error."""

    def __init__(self, path: Path):
        import zstandard

        self._f = open(path, "rb")
        self._dctx = zstandard.ZstdDecompressor()
        self._obj = self._dctx.decompressobj()
        self._pending, self._pos = b"", 0
        self._started = False

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while self._pos >= len(self._pending):
            chunk = self._f.read(1 << 20)
            if not chunk:
                if self._started and not self._obj.eof:
                    raise EOFError("the zstd stream ends inside a frame")
                return 0
            out = []
            while chunk:
                if self._obj.eof:  # the next frame
                    self._obj = self._dctx.decompressobj()
                self._started = True
                out.append(self._obj.decompress(chunk))
                chunk = self._obj.unused_data if self._obj.eof else b""
            self._pending, self._pos = b"".join(out), 0
        n = min(len(b), len(self._pending) - self._pos)
        b[:n] = self._pending[self._pos:self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._f.close()
        super().close()


def compression_of(path: Path) -> str | None:
    return COMPRESSIONS.get(path.suffix.lower())


def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


_UNSET = object()


def open_binary(path: Path, mode: str = "rb", compression: str | None | object = _UNSET):
    """Open a file for binary reading or writing, (de)compressing by its suffix or ``compression``."""
    comp = compression_of(path) if compression is _UNSET else compression
    if comp == "gzip":
        return gzip.open(path, mode)
    if comp == "bz2":
        return bz2.open(path, mode)
    if comp == "zstd":
        import zstandard

        if "r" in mode:
            return io.BufferedReader(_ZstdFrames(path), buffer_size=1 << 20)  # line iteration
        return zstandard.open(path, "wb", cctx=zstandard.ZstdCompressor(level=3))
    return open(path, mode)


def detect_format(path: Path) -> str:
    if path.is_dir():
        if (path / "state.json").exists() and (path / "dataset_info.json").exists():
            return "hf"
        if (path / "dataset_dict.json").exists():
            raise SourceError(
                f"{path}: is a Hugging Face DatasetDict folder; pass one split's folder, e.g. {path}/train"
            )
        raise SourceError(f"{path}: is a directory but not a Hugging Face datasets folder (no state.json)")
    suffix = _base_suffix(path)
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".parquet":
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix == ".json":
        # `.json` files are often JSON Lines in disguise: sniff the first non-blank byte.
        try:
            with open_binary(path) as f:
                head = f.read(4096)
        except _stream_errors():
            head = b""
        head = head.removeprefix(BOM).lstrip()  # a byte-order mark is not the first character
        return "json" if head[:1] == b"[" else "jsonl"
    raise SourceError(
        f"{path}: unknown format '{suffix or path.name}'; supported: .jsonl .json .parquet .csv"
        " (optionally .gz/.bz2/.zst) or a Hugging Face save_to_disk folder; pass --format to force one"
    )


@dataclass
class Source:
    path: Path
    format: str
    max_record_bytes: int = 1 << 20

    @classmethod
    def open(cls, path: str | os.PathLike, fmt: str | None = None, max_record_bytes: int = 1 << 20) -> "Source":
        if isinstance(path, str) and path.startswith("builtin:"):  # a dataset shipped in a package
            from .builtin import BuiltinError, builtin_path

            try:
                path = builtin_path(path)
            except BuiltinError as e:
                raise SourceError(str(e)) from None
        p = Path(path)
        if not p.exists():
            raise SourceError(f"{p}: no such file or directory")
        if fmt is not None and fmt not in FORMATS:
            raise SourceError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
        if fmt is None:
            fmt = detect_format(p)
        elif fmt == "hf" and not p.is_dir():
            raise SourceError(f"{p}: --format hf needs a Hugging Face save_to_disk folder")
        elif fmt != "hf" and p.is_dir():
            raise SourceError(f"{p}: is a directory, not a {fmt} file")
        return cls(p, fmt, max_record_bytes)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def unit(self) -> str:
        return {"jsonl": "line", "csv": "line", "json": "item"}.get(self.format, "row")

    def rows(self) -> Iterator[RawRow]:
        reader = getattr(self, f"_rows_{self.format}")
        yield from reader()

    def batches(self, size: int) -> Iterator[list[RawRow]]:
        batch: list[RawRow] = []
        for row in self.rows():
            batch.append(row)
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    # -- formats --------------------------------------------------------------------------------

    def _rows_jsonl(self) -> Iterator[RawRow]:
        limit = self.max_record_bytes
        lineno = 0
        with open_binary(self.path) as f:
            try:
                for lineno, line in enumerate(f, 1):
                    if lineno == 1:
                        line = line.removeprefix(BOM)
                    if len(line) > limit:
                        yield (lineno, Oversized.of(line),
                               f"record of {len(line):,} bytes exceeds --max-record-bytes {limit:,}")
                        continue
                    if not line.strip():
                        continue  # blank lines are not records
                    yield lineno, line, None
            except _stream_errors() as e:
                yield lineno + 1, None, _damaged(lineno, "line", e)

    def _rows_json(self) -> Iterator[RawRow]:
        if compression_of(self.path) is None and self.path.stat().st_size < _SMALL_JSON:
            raw = self.path.read_bytes().removeprefix(BOM)
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError as e:
                if raw.lstrip()[:1] != b"[":
                    yield 1, None, f"file is not valid JSON: {e}"
                    return
                # one bad item must not take the good ones with it: parse item by item
                from .json_items import recover_items

                for i, obj, error in recover_items(raw):
                    yield self._sized(i, obj) if error is None else (i, None, error)
                return
            if not isinstance(data, list):
                yield 1, None, f"JSON file holds a {type(data).__name__}, expected a list of records"
                return
            for i, obj in enumerate(data, 1):
                yield self._sized(i, obj)
            return
        import ijson

        with open_binary(self.path) as f:
            i = 0
            try:
                if f.peek(3)[:3] == BOM:
                    f.read(3)
                for i, obj in enumerate(ijson.items(f, "item", use_float=True), 1):
                    yield self._sized(i, obj)
            except (ijson.JSONError, UnicodeDecodeError) as e:
                yield i + 1, None, f"malformed JSON after item {i}; the rest of the file is unreadable: {e}"
            except _stream_errors() as e:
                yield i + 1, None, _damaged(i, "item", e)

    def _sized(self, i: int, obj: Any) -> RawRow:
        """The row, or its ``Oversized`` summary with the reason when it is over ``--max-record-bytes``."""
        limit = self.max_record_bytes
        if limit and isinstance(obj, dict) and _too_big(obj, limit):
            raw = orjson.dumps(obj, default=str)
            return i, Oversized.of(raw), f"record of {len(raw):,} bytes exceeds --max-record-bytes {limit:,}"
        return i, obj, None

    def _rows_parquet(self) -> Iterator[RawRow]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        row = 0
        try:  # a corrupt file is one quarantined row (and the rows before the damage), never a traceback
            pf = pq.ParquetFile(self.path)
            for batch in pf.iter_batches(batch_size=8192):
                for obj in batch.to_pylist():
                    row += 1
                    yield row, obj, None
        except (pa.ArrowException, OSError) as e:
            where = f"after row {row}" if row else "in its metadata"
            yield row + 1, None, f"corrupt Parquet file {where} ({type(e).__name__}: {e}); the rest is unreadable"

    def _rows_hf(self) -> Iterator[RawRow]:
        import pyarrow as pa

        state = orjson.loads((self.path / "state.json").read_bytes())
        files = [self.path / f["filename"] for f in state.get("_data_files", [])]
        if not files:
            raise SourceError(f"{self.path}: state.json lists no data files")
        row = 0
        for file in files:
            with pa.memory_map(str(file)) as mm:
                reader = pa.ipc.open_stream(mm)
                for batch in reader:
                    for obj in batch.to_pylist():
                        row += 1
                        yield row, obj, None

    def _rows_csv(self) -> Iterator[RawRow]:
        delimiter = "\t" if _base_suffix(self.path) == ".tsv" else ","
        with open_binary(self.path) as fb:
            # surrogateescape: an invalid byte becomes a lone surrogate in its own row (quarantined below)
            # instead of a decode error that would end the file, and lose the rows of the chunk before it
            text = io.TextIOWrapper(fb, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = csv.DictReader(text, delimiter=delimiter)
            start = 2
            while True:
                try:
                    obj = next(reader)
                except StopIteration:
                    return
                except _stream_errors() as e:
                    yield start, None, _damaged(start - 1, "line", e)
                    return
                except csv.Error as e:
                    yield start, None, f"malformed CSV: {e}"
                    start = reader.line_num + 1
                    continue
                if None in obj:
                    yield start, None, f"row has {len(obj[None])} more field(s) than the header"
                elif any(isinstance(v, str) and _ESCAPED.search(v) for v in (*obj.values(), *obj.keys())):
                    yield start, None, "invalid UTF-8 byte(s) in this row"
                else:
                    yield start, obj, None
                start = reader.line_num + 1


def source_labels(paths: list[Path]) -> list[str]:
    """How each input is named in lineage refs and quarantine rows: its file name, or, where two inputs share
    a file name (``a/train.jsonl``, ``b/train.jsonl``), the shortest trailing part of the path that tells them
    apart. Inputs with distinct names keep the bare name, so their refs do not change."""
    full = [Path(os.path.abspath(p)).parts for p in paths]
    out = []
    for parts in full:
        k = 1
        while k < len(parts) and sum(1 for o in full if o[-k:] == parts[-k:]) > 1:
            k += 1
        out.append("/".join(parts[-k:]))
    return out


def _too_big(obj: dict[str, Any], limit: int) -> bool:
    # cheap bound first: most records are far below the limit
    return sum(len(v) for v in obj.values() if isinstance(v, str)) > limit or len(orjson.dumps(obj)) > limit


def decode_json_line(line: bytes) -> tuple[Any, str | None]:
    """Parse one JSONL line; returns (object, None) or (None, reason)."""
    try:
        return orjson.loads(line), None
    except orjson.JSONDecodeError as e:
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as u:
            return None, f"invalid UTF-8 at byte {u.start}"
        return None, f"malformed JSON: {e}"


def fingerprint(path: str | os.PathLike) -> dict[str, Any]:
    """Identity of an input for the manifest: size, mtime and a BLAKE2b of the content."""
    import hashlib

    p = Path(path)
    files = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
    h = hashlib.blake2b(digest_size=16)
    size = 0
    for file in files:
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    return {"path": str(p.resolve()), "bytes": size, "blake2b": h.hexdigest()}
