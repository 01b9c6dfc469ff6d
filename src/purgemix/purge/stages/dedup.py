"""``purge-dedup``: exact and near-duplicate removal as a FitMapStage.

A shard-parallel ``prepare`` hashes every record (exact key, MinHash signature, the keep-by feature) into
a small array file; the fit reads those arrays for every record of every input file and decides the
duplicate groups (``purge.dedup.Deduplicator``); the shards then drop the non-kept members with
``duplicate_of``. It runs first, so neither the features nor the priors pay for (or are skewed by) the
copies of a record. A duplicate is dropped before it is scored, so its line in the dropped list has no
``scores``."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from ...core.record import Record
from ...core.stage import FitMapStage, LinesResult, Result, register_stage
from .. import PREFIX
from ..dedup.groups import Deduplicator, sorted_unique
from .dropped import COUNTS_SUFFIX, DROPPED_SUFFIX, dropped_row, dropped_side

SKETCH_SUFFIX = "sketch.npz"


@register_stage
class DedupStage(FitMapStage):
    name = "purge-dedup"
    section = "purge.dedup"
    version = "3"  # 3: all-pairs buckets and recall-first banding (more near duplicates found)
    reads = ("messages",)
    writes = ()
    TABLE_MIN = 1000  # more dropped records than this: the decision table goes to a file

    def __init__(self, threshold: float = 0.7, num_perm: int = 128, ngram: int = 3, near: bool = True,
                 keep_by: str = "response.words:max", workdir: str | None = None, tokenizer: str = "regex"):
        self.threshold, self.num_perm, self.ngram, self.near, self.keep_by = threshold, num_perm, ngram, near, keep_by
        self.tokenizer = tokenizer  # for a keep-by feature counted in tokens
        # Where the decision table goes when there is one: the state then names the file instead of holding
        # the table, so it is not copied to every shard task (not part of the fingerprint).
        self.workdir = workdir

    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "num_perm": self.num_perm, "ngram": self.ngram, "near": self.near,
                "keep_by": self.keep_by, "tokenizer": self.tokenizer}

    def _keep_feature(self) -> str | None:
        f = self.keep_by.partition(":")[0]
        return None if f == "first" else f

    def keep_values(self, records: list[Record]) -> np.ndarray | None:
        """The keep-by feature of each record: its stored score when every record has one (scored
        upstream), else computed here by the one scorer that produces it."""
        f = self._keep_feature()
        if f is None:
            return None
        from ...core.numbers import as_float_or_nan
        from ..features.base import feature_catalog, feature_column

        key = PREFIX + f
        if records and all(key in (r.get("scores") or {}) for r in records):
            return np.array([as_float_or_nan(r["scores"][key]) for r in records], dtype=np.float64)
        catalog = feature_catalog()
        if f not in catalog:
            raise ValueError(f"keep_by: unknown feature '{f}'; available: {', '.join(sorted(catalog))}")
        if not records:
            return np.zeros(0)
        col = feature_column(records, f, self.tokenizer)
        return np.round(np.asarray(col, dtype=np.float64), 4)

    def _sketch(self, records: list[Record]) -> dict[str, Any]:
        """Exact keys, signatures and their mask (near only), source codes with their names and the keep-by
        feature of a batch of records."""
        from ..dedup.minhash import MinHasher, band_keys_t, optimal_bands, sketch_records

        exact, sig, has = sketch_records(records, MinHasher(self.num_perm, self.ngram) if self.near else None)
        out: dict[str, Any] = {"exact": exact}
        if self.near:
            out["sig"], out["has"] = sig, has
            # the LSH band keys too, here in the worker rather than in the driver's fit
            out["bandkeys"] = band_keys_t(sig, *optimal_bands(self.threshold, self.num_perm))
        names: dict[str, int] = {}
        out["src"] = np.fromiter((names.setdefault(r.get("source", ""), len(names)) for r in records),
                                 dtype=np.int32, count=len(records))
        out["src_names"] = list(names)
        keep = self.keep_values(records)
        if keep is not None:
            out["keep"] = keep
        return out

    def _add(self, d: Deduplicator, sk: Any) -> None:
        """Add one batch's sketch (``_sketch`` or a prepared file) to the deduplicator."""
        names = sk["src_names"]
        remap = np.array([d._source_codes.setdefault(nm, len(d._source_codes)) for nm in names] or [0],
                         dtype=np.int32)
        near = (sk["sig"], sk["has"]) if self.near else (None, None)
        d.add_arrays(sk["exact"], *near, sk["keep"] if self._keep_feature() else None, remap[sk["src"]],
                     sk.get("bandkeys"))

    def prepare(self, records: list[Record], id_hashes: np.ndarray | None = None) -> dict[str, bytes]:
        """One shard's sketch as an uncompressed .npz: ``_sketch`` plus the 64-bit id hashes (``id_hashes``
        when the caller has them), the ids (JSON) and the settings it was made with."""
        import io

        import orjson

        from ...core.ids import hash_ids

        arrays = self._sketch(records)
        ids = [r["id"] for r in records]
        arrays.update(idhash=hash_ids(ids) if id_hashes is None else id_hashes,
                      ids=np.frombuffer(orjson.dumps(ids), dtype=np.uint8),
                      src_names=np.frombuffer(orjson.dumps(arrays["src_names"]), dtype=np.uint8),
                      params=np.array(self._settings(), dtype=np.int64))
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return {SKETCH_SUFFIX: buf.getvalue()}

    def _settings(self) -> list[int]:
        from ..dedup.minhash import optimal_bands

        return [self.num_perm, self.ngram, int(self.near), int(self._keep_feature() is not None),
                *optimal_bands(self.threshold, self.num_perm)]

    def fit_dir(self, prev: Any, own: Any = None) -> Any:
        """The fit from the prepared sketch files (``prepare``) in the stage's own folder when every shard
        has one made with these settings; otherwise from the records. The decision table goes to
        ``workdir``, by default the stage's own folder."""
        import orjson

        if own is not None and not self.workdir:
            self.workdir = str(own.path)
        n_shards = prev.info()["shards"]
        paths = [own.path / f"{own.shard_name(i)}.prep.{SKETCH_SUFFIX}" for i in range(n_shards)] if own else []
        if own is None or not all(p.exists() for p in paths):
            return self.fit(prev.iter_records())
        d = Deduplicator(self.threshold, self.num_perm, self.ngram, self.near, self.keep_by, spill_dir=self.workdir)
        from ...core.ids import id_hash

        # a prepare pass that ran inside the ingest tasks saw the ids before the ingest's renames
        renames = [prev.renames(i) for i in range(n_shards)]
        sizes, idhash = [], []
        for p, ren in zip(paths, renames):
            with np.load(p) as z:
                if z["params"].tolist() != self._settings():
                    return self.fit(prev.iter_records())
                sk = {k: z[k] for k in z.files if k not in ("ids", "src_names")}
                sk["src_names"] = orjson.loads(z["src_names"].tobytes())
                self._add(d, sk)
                sizes.append(len(z["exact"]))
                h = z["idhash"]
                if ren:
                    h = h.copy()
                    for pos, new_id in ren.items():
                        h[pos] = id_hash(new_id)
                idhash.append(h)
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

        def ids_at(pos: np.ndarray) -> list[str]:
            """Ids at the given global positions, reading only the shards that hold one."""
            out: list[str] = [""] * len(pos)
            shard = np.searchsorted(offsets, pos, side="right") - 1
            for s in sorted_unique(shard).tolist():
                with np.load(paths[s]) as z:
                    ids = orjson.loads(z["ids"].tobytes())
                for at, new_id in renames[s].items():
                    ids[at] = new_id
                for j in np.nonzero(shard == s)[0].tolist():
                    out[j] = ids[int(pos[j] - offsets[s])]
            return out

        res = d.decide_arrays()
        all_hashes = np.concatenate(idhash) if idhash else None
        del idhash
        state = self._state(d, res, ids_at, (lambda pos: pos) if all_hashes is None else all_hashes.__getitem__)
        del d, res, all_hashes
        _release_memory()
        return state

    def fit(self, batches: Iterable[list[Record]]) -> Any:
        d = Deduplicator(self.threshold, self.num_perm, self.ngram, self.near, self.keep_by, spill_dir=self.workdir)
        for b in batches:
            if b:
                d.ids.extend(r["id"] for r in b)
                self._add(d, self._sketch(b))
        if not self.workdir:
            return d.decide()
        from ...core.ids import hash_ids

        return self._state(d, d.decide_arrays(), lambda pos: [d.ids[i] for i in pos.tolist()],
                           lambda pos: hash_ids(d.ids[i] for i in pos.tolist()))

    def _state(self, d: Deduplicator, res: dict[str, Any], ids_at, hashes_at) -> Any:
        if res["dropped"].size <= self.TABLE_MIN:
            names = {v: k for k, v in d._source_codes.items()}
            dropped, kept = ids_at(res["dropped"]), ids_at(res["kept"])
            drop = {i: [k, "exact-duplicate" if e else "near-duplicate", names[int(d._src[kp])]]
                    for i, k, kp, e in zip(dropped, kept, res["kept"].tolist(), res["exact"].tolist())}
            return {"drop": drop, "stats": res["stats"]}
        # a large table: sorted 64-bit hashes of the dropped ids, the slot of their kept id, exact or near
        import hashlib
        from pathlib import Path

        kept_pos, slot = np.unique(res["kept"], return_inverse=True)
        hashes = np.asarray(hashes_at(res["dropped"]), dtype=np.int64)
        o = np.argsort(hashes, kind="stable")
        kept_ids = np.array(ids_at(kept_pos))
        Path(self.workdir).mkdir(parents=True, exist_ok=True)
        digest = hashlib.blake2b(hashes[o].tobytes() + slot[o].tobytes(), digest_size=8).hexdigest()
        path = Path(self.workdir) / f"dedup-{digest}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, hashes=hashes[o], slot=slot[o].astype(np.int64), exact=res["exact"][o], kept_ids=kept_ids)
        tmp.replace(path)
        return {"drop_file": str(path.resolve()), "stats": res["stats"]}

    def process(self, records: list[Record], state: Any) -> Result:
        res = Result()
        hits = _lookup(state, [r["id"] for r in records])
        for r, hit in zip(records, hits):
            if hit is None:
                res.records.append(r)
            else:
                res.drop(r, "purge", hit[1], rules=[hit[1]], duplicate_of=hit[0])
                res.events[-1]["record"] = r
        return dropped_side(res)

    def process_lines(self, lines: list[bytes], ids: list[str], hashes: np.ndarray, state: Any) -> LinesResult:
        """``process`` on the records' JSON lines: the decision needs only the ids (``hashes``: their 64-bit
        hashes), a dropped record's line in ``STEM.dropped.jsonl`` is its stored line with the ``purge``
        object appended, and only the records the report shows as examples are decoded."""
        import orjson
        import zstandard

        from ..report import EXAMPLES, ReportCounts

        res = LinesResult()
        counts = ReportCounts()
        rows = []
        tails: dict[str, bytes] = {}  # reason -> the purge object's bytes up to the kept id
        for i, hit in enumerate(_lookup(state, ids, hashes)):
            if hit is None:
                res.keep.append(i)
                continue
            kept, reason = hit[0], hit[1]
            e = {"id": ids[i], "outcome": "dropped", "stage": "purge", "reason": reason, "rules": [reason],
                 "duplicate_of": kept, "record": None}
            res.carried[len(res.events)] = i
            res.events.append(e)
            line = lines[i]
            # the record is decoded only while the report still lacks examples of this reason
            counts.add({**e, "record": orjson.loads(line)} if len(counts.examples.get(reason, ())) < EXAMPLES else e)
            if len(line) > 2 and line.endswith(b"}") and b'"purge":' not in line:  # no "purge" key anywhere
                tail = tails.get(reason)
                if tail is None:
                    tail = tails[reason] = b',"purge":' + orjson.dumps({"reason": reason, "rules": [reason],
                                                                        "duplicate_of": ""})[:-3]
                rows.append(b"".join((line[:-1], tail, orjson.dumps(kept), b"}}\n")))
            else:
                rows.append(orjson.dumps(dropped_row({**e, "record": orjson.loads(line)}),
                                         option=orjson.OPT_APPEND_NEWLINE))
        res.side[DROPPED_SUFFIX] = zstandard.ZstdCompressor(level=1).compress(b"".join(rows))
        res.side[COUNTS_SUFFIX] = orjson.dumps(counts.to_json())
        return res


def _release_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps large freed blocks, so the driver's resident
    size after the dedup fit would otherwise stay at the fit's peak for the rest of the run)."""
    from ...executors.malloc import libc_function

    trim = libc_function("malloc_trim")
    if trim is not None:
        trim(0)


_TABLES: dict[str, Any] = {}


def _lookup(state: dict[str, Any], ids: list[str], hashes: np.ndarray | None = None
            ) -> list[tuple[str, str] | None]:
    """(kept id, reason) for each id the dedup decided to drop, None for the others. A large table (a file,
    loaded once per worker process) is searched for the whole shard at once, by the ids' 64-bit hashes
    (``hashes`` when the caller has them, e.g. from the ingest's ``.ids.npy``)."""
    if "drop" in state:
        return [state["drop"].get(i) for i in ids]
    path = state["drop_file"]
    if path not in _TABLES:
        _TABLES.clear()
        with np.load(path) as z:
            _TABLES[path] = z["hashes"], z["slot"], z["exact"], z["kept_ids"]
    table, slot, exact, kept = _TABLES[path]
    from ...core.ids import hash_ids

    out: list[tuple[str, str] | None] = [None] * len(ids)
    if not ids or not table.size:
        return out
    h = hash_ids(ids) if hashes is None else hashes
    j = np.minimum(np.searchsorted(table, h), table.size - 1)
    for i in np.nonzero(table[j] == h)[0].tolist():
        k = int(j[i])
        out[i] = str(kept[slot[k]]), "exact-duplicate" if exact[k] else "near-duplicate"
    return out
