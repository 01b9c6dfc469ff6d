"""Writers for every supported output format, all atomic: data goes to a temporary file that
replaces the target only when the writer closes cleanly, so a crash never leaves half a file."""

from __future__ import annotations

import csv
import io
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable

import orjson

from .readers import FORMATS, SourceError, _base_suffix, compression_of, open_binary

_DUMP_OPTS = orjson.OPT_APPEND_NEWLINE


def output_format(path: Path, fmt: str | None = None) -> str:
    if fmt is not None:
        if fmt not in FORMATS:
            raise SourceError(f"unknown format '{fmt}'; use one of: {', '.join(FORMATS)}")
        return fmt
    suffix = _base_suffix(path)
    mapping = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
    if suffix in mapping:
        return mapping[suffix]
    if suffix == "" and not path.exists() or path.is_dir():
        return "hf"
    raise SourceError(f"{path}: cannot tell the output format from '{suffix}'; pass --format")


def file_mode() -> int:
    """What ``open()`` would give a new file under the current umask (``mkstemp`` gives 0600 whatever it is)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_writable(path: str | os.PathLike) -> None:
    """Fail now, before any work, when the output ``path`` cannot be written (a read-only folder would
    otherwise be found only after the whole run): ``PermissionError`` naming the folder."""
    folder = Path(path).parent
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(13, "the output folder is not writable", str(folder))


def _remove_stale_temporaries(path: Path) -> None:
    """Temporaries of an earlier writer of ``path`` that was killed (their pid is in the name and gone)."""
    for tmp in path.parent.glob(f".{path.name}.*"):
        if tmp.suffix not in (".tmp", ".spool"):
            continue
        parts = tmp.name[len(path.name) + 2:].split(".")
        pid = int(parts[0]) if parts and parts[0].isdigit() else None
        if pid is None:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:  # another user's live process
            pass


class Writer:
    """Atomic writer; use as a context manager. ``write`` takes an iterable of plain dicts."""

    def __init__(self, path: str | os.PathLike, fmt: str | None = None):
        self.path = Path(path)
        self.format = output_format(self.path, fmt)
        self.count = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(self.path)
        # the pid in the name lets a later writer remove what a killed one left
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.{os.getpid()}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        # Parquet, CSV and HF need the union of all keys before writing: spool rows as JSONL first.
        self._spooled = self.format in ("parquet", "csv", "hf")
        if self._spooled:
            self._spool = self._tmp.with_suffix(".spool")
            self._fh = open(self._spool, "wb")
        else:
            self._spool = self._tmp
            self._fh = open_binary(self._tmp, "wb", compression_of(self.path))
        self._first = True
        if self.format == "json":
            self._fh.write(b"[")

    def write(self, rows: Iterable[dict[str, Any]]) -> None:
        fh = self._fh
        if self.format == "json":
            for row in rows:
                fh.write(b"\n" if self._first else b",\n")
                fh.write(orjson.dumps(row))
                self._first = False
                self.count += 1
        else:
            for row in rows:
                fh.write(orjson.dumps(row, option=_DUMP_OPTS))
                self.count += 1

    def write_jsonl_bytes(self, blob: bytes, count: int) -> None:
        """Append rows already serialised as JSON Lines (one object per line)."""
        if not blob:
            return
        if self.format == "json":
            body = blob.rstrip(b"\n").replace(b"\n", b",\n")  # orjson never emits raw newlines inside a value
            self._fh.write((b"\n" if self._first else b",\n") + body)
            self._first = False
        else:
            self._fh.write(blob)
        self.count += count

    def append_jsonl_file(self, path: str | os.PathLike, count: int) -> None:
        """Append a file of rows already serialised as JSON Lines: copied by the kernel (``sendfile``) when
        the output takes JSON Lines bytes as they are (uncompressed JSONL, or the spool of a two-pass format),
        so the rows never pass through this process."""
        size = os.path.getsize(path)
        if not size:
            return
        plain = self.format != "json" and (self._spooled or compression_of(self.path) is None)
        # file-to-file sendfile is Linux only (elsewhere it needs a socket), as in shutil
        if plain and sys.platform.startswith("linux"):
            self._fh.flush()
            done = 0
            with open(path, "rb") as src:
                try:
                    while done < size:
                        sent = os.sendfile(self._fh.fileno(), src.fileno(), done, size - done)
                        if sent == 0:
                            break
                        done += sent
                except OSError:
                    if done:
                        raise
            if done == size:
                self._fh.seek(0, os.SEEK_END)  # sendfile wrote past the Python file object's position
                self.count += count
                return
            if done:
                raise OSError(f"sendfile copied {done} of {size} bytes of {path}")
        self.write_jsonl_bytes(Path(path).read_bytes(), count)  # nothing copied: through this process

    def close(self) -> None:
        if self.format == "json":
            self._fh.write(b"\n]\n")
        self._fh.close()
        if self._spooled:
            getattr(self, f"_finish_{self.format}")()
            self._spool.unlink(missing_ok=True)
        if self.format == "hf":
            if self.path.exists():
                shutil.rmtree(self.path)
            os.replace(self._tmp_dir, self.path)
            self._tmp.unlink(missing_ok=True)
        else:
            os.chmod(self._tmp, file_mode())
            os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._fh.close()
        for p in (self._tmp, self._spool):
            p.unlink(missing_ok=True)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # -- two-pass formats -------------------------------------------------------------------------

    def _spooled_batches(self, size: int = 8192) -> Iterable[list[dict[str, Any]]]:
        with open(self._spool, "rb") as f:
            batch = []
            for line in f:
                batch.append(orjson.loads(line))
                if len(batch) >= size:
                    yield batch
                    batch = []
            if batch:
                yield batch

    def _arrow_schema(self):
        import pyarrow as pa

        schemas = [pa.Table.from_pylist(b).schema for b in self._spooled_batches()]
        if not schemas:
            return pa.schema([])
        return pa.unify_schemas(schemas, promote_options="permissive")

    def _finish_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = self._arrow_schema()
        with pq.ParquetWriter(self._tmp, schema, compression="zstd") as pw:
            for batch in self._spooled_batches():
                pw.write_table(pa.Table.from_pylist(batch, schema=schema))

    def _finish_csv(self) -> None:
        keys: dict[str, None] = {}
        for batch in self._spooled_batches():
            for row in batch:
                keys.update(dict.fromkeys(row))
        with open_binary(self._tmp, "wb", compression_of(self.path)) as fb:
            text = io.TextIOWrapper(fb, encoding="utf-8", newline="")
            w = csv.DictWriter(text, fieldnames=list(keys))
            w.writeheader()
            for batch in self._spooled_batches():
                w.writerows(
                    {k: (orjson.dumps(v).decode() if isinstance(v, (list, dict)) else v) for k, v in row.items()}
                    for row in batch
                )
            text.flush()
            text.detach()

    def _finish_hf(self) -> None:
        try:
            import datasets
        except ImportError:
            raise SourceError(
                "writing a Hugging Face datasets folder needs the 'datasets' package: pip install 'purgemix[hf]'"
            ) from None
        import pyarrow as pa

        schema = self._arrow_schema()
        table = pa.concat_tables(
            [pa.Table.from_pylist(b, schema=schema) for b in self._spooled_batches()] or [schema.empty_table()]
        )
        self._tmp_dir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        shutil.rmtree(self._tmp_dir)
        datasets.Dataset(table).save_to_disk(str(self._tmp_dir))


def write_rows(path: str | os.PathLike, rows: Iterable[dict[str, Any]], fmt: str | None = None) -> int:
    with Writer(path, fmt) as w:
        w.write(rows)
    return w.count
