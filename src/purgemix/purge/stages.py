"""The purge as pipeline stages: ``purge-dedup`` -> ``purge-scores`` -> ``purge-rules``.

``purge-dedup``   FitMapStage: a shard-parallel ``prepare`` hashes every record (exact key, MinHash
                  signature, the keep-by feature) into a small array file; the fit reads those arrays for
                  every record of every input file and decides the duplicate groups; the shards then drop
                  the non-kept members with ``duplicate_of``. It runs first, so neither the features nor
                  the priors pay for (or are skewed by) the copies of a record.
``purge-scores``  MapStage, shard-parallel: writes every feature into ``scores["purge.<feature>"]``.
                  Its fingerprint depends on the scorers and the tokenizer only, never on the rules,
                  so changing rules (re-thresholding) reuses the stored scores.
``purge-rules``   FitMapStage: the fit computes the priors (or takes reference priors) and resolves
                  every rule's threshold; the shards drop each record that fires any rule, with the
                  first rule as the reason and every rule that fired in ``rules``.

Drop events carry the record itself (``record``), so the dropped records can be written out with
their reasons without another pass over the data. A duplicate is dropped before it is scored, so its
line in the dropped list has no ``scores``.
"""

from __future__ import annotations

import sys
from typing import Any, Iterable

import numpy as np

from ..core.record import Record
from ..core.stage import FitMapStage, LinesResult, MapStage, Result, register_stage
from . import PREFIX
from .dedup import Deduplicator, sorted_unique
from .features import SCORERS, Batch, score_batch
from .priors import PriorFitter
from .rules import RuleSet, columns, load_rules

ROW_SAMPLE = 20_000  # records kept (as feature rows) during the fit to estimate how often rules fire


@register_stage
class ScoreStage(MapStage):
    name = "purge-scores"
    section = "purge.scores"
    version = "2"
    reads = ("messages", "meta._input")
    writes = ("scores.purge.*",)

    def __init__(self, scorers: list[str] | None = None, tokenizer: str = "regex"):
        self.scorers = list(scorers) if scorers else list(SCORERS)
        self.tokenizer = tokenizer

    def params(self) -> dict[str, Any]:
        return {"scorers": {n: SCORERS[n].version for n in self.scorers}, "tokenizer": self.tokenizer}

    def process(self, records: list[Record]) -> Result:
        if not records:
            return Result(records=records)
        cols = score_batch(Batch(records, tokenizer=self.tokenizer), self.scorers)
        return Result(records=records, columns=_write_scores(records, cols))


def _write_scores(records: list[Record], cols: dict[str, Any]) -> dict[str, Any] | None:
    """Write the features into each record's ``scores`` (floats rounded to 4 decimals, NaN as None). Returns
    the same values by column (``Result.columns``) when the records had no scores before, else None."""
    keys, values, stored = [], [], {}
    for k, col in cols.items():
        keys.append(PREFIX + k)
        if isinstance(col, list):
            values.append(col)
            stored[PREFIX + k] = col
            continue
        arr = np.asarray(col)
        if arr.dtype.kind in "iub":
            values.append(arr.tolist())
            stored[PREFIX + k] = arr
        else:
            arr = np.round(arr.astype(np.float64), 4)
            values.append([None if v != v else v for v in arr.tolist()])
            stored[PREFIX + k] = arr
    fresh = True
    for r, row in zip(records, zip(*values)):
        s = r.get("scores")
        if s is None:
            s = r["scores"] = {}
        elif s:
            fresh = False
        s.update(zip(keys, row))
    return stored if fresh and len(set(keys)) == len(keys) else None


SKETCH_SUFFIX = "sketch.npz"


@register_stage
class DedupStage(FitMapStage):
    name = "purge-dedup"
    section = "purge.dedup"
    version = "2"
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
        from .dedup import _num
        from .features import feature_catalog, feature_column

        key = PREFIX + f
        if records and all(key in (r.get("scores") or {}) for r in records):
            return np.array([_num(r["scores"][key]) for r in records], dtype=np.float64)
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
        from .dedup import MinHasher, _band_keys_t, optimal_bands, sketch_records

        exact, sig, has = sketch_records(records, MinHasher(self.num_perm, self.ngram) if self.near else None)
        out: dict[str, Any] = {"exact": exact}
        if self.near:
            out["sig"], out["has"] = sig, has
            # the LSH band keys too, here in the worker rather than in the driver's fit
            out["bandkeys"] = _band_keys_t(sig, *optimal_bands(self.threshold, self.num_perm))
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

        from ..core.ids import hash_ids

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
        from .dedup import optimal_bands

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
        from ..core.ids import id_hash

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
        state = self._state(d, res, ids_at, lambda pos: np.concatenate(idhash)[pos] if idhash else pos)
        del d, res, idhash
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
        from ..core.ids import hash_ids

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
        return _dropped_side(res)

    def process_lines(self, lines: list[bytes], ids: list[str], hashes: np.ndarray, state: Any) -> LinesResult:
        """``process`` on the records' JSON lines: the decision needs only the ids (``hashes``: their 64-bit
        hashes), a dropped record's line in ``STEM.dropped.jsonl`` is its stored line with the ``purge``
        object appended, and only the records the report shows as examples are decoded."""
        import orjson
        import zstandard

        from .report import EXAMPLES, ReportCounts

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


def _dropped_side(res: Result) -> Result:
    """Render the shard's dropped records as their ``STEM.dropped.jsonl`` lines in the worker (a side file),
    and count them for the report (another), so the driver only concatenates bytes and adds up counts
    instead of decoding and re-encoding every dropped record."""
    import orjson
    import zstandard

    from .report import ReportCounts

    counts = ReportCounts()
    rows = []
    for e in res.events:
        if e.get("outcome") == "dropped":
            rows.append(orjson.dumps(dropped_row(e), option=orjson.OPT_APPEND_NEWLINE))
            counts.add(e)
    res.side[DROPPED_SUFFIX] = zstandard.ZstdCompressor(level=1).compress(b"".join(rows))
    res.side[COUNTS_SUFFIX] = orjson.dumps(counts.to_json())
    return res


def _release_memory() -> None:
    """Give freed heap memory back to the OS (glibc keeps large freed blocks, so the driver's resident
    size after the dedup fit would otherwise stay at the fit's peak for the rest of the run)."""
    from ..executors.malloc import libc_function

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
    from ..core.ids import hash_ids

    out: list[tuple[str, str] | None] = [None] * len(ids)
    if not ids or not table.size:
        return out
    h = hash_ids(ids) if hashes is None else hashes
    j = np.minimum(np.searchsorted(table, h), table.size - 1)
    for i in np.nonzero(table[j] == h)[0].tolist():
        k = int(j[i])
        out[i] = str(kept[slot[k]]), "exact-duplicate" if exact[k] else "near-duplicate"
    return out


class _Reservoir:
    """A uniform sample of ``size`` rows (algorithm R), filled a batch of columns at a time: the same rows
    of every column, any value type (``priors.Reservoir`` samples one float column)."""

    def __init__(self, size: int, names: list[str]):
        self.size, self.seen = size, 0
        self.cols: dict[str, list] = {f: [] for f in names}

    def add(self, rows: dict[str, Any], n: int, rng: np.random.Generator) -> None:
        take = max(0, min(n, self.size - self.seen))  # while the sample is not full: every row
        for f, col in self.cols.items():
            col.extend(list(rows[f][:take]))
        if take < n:
            from .priors import replacement_slots

            pos, slots = replacement_slots(self.seen + take, n - take, self.size, rng)
            rows_at, slots = (pos + take).tolist(), slots.tolist()
            for f, col in self.cols.items():
                src = rows[f]
                for r, s_ in zip(rows_at, slots):  # in arrival order: a later row wins a slot drawn twice
                    col[s_] = src[r]
        self.seen += n

    def items(self):
        return self.cols.items()


@register_stage
class RuleStage(FitMapStage):
    name = "purge-rules"
    section = "purge.rules"
    names_run_dir = False  # other rules reuse the stored scores and duplicate decisions (same run directory)
    version = "1"
    reads = ("scores.purge.*",)
    writes = ()

    def __init__(self, rules: RuleSet | None = None, priors: dict[str, Any] | None = None):
        self.rules = rules or load_rules()
        self.reference = priors  # fitted elsewhere (a reference dataset); else fitted on this pool

    def params(self) -> dict[str, Any]:
        return {"rules": self.rules.text, "auto_z": self.rules.auto_z,
                "reference": None if self.reference is None else _digest(self.reference)}

    def fit(self, batches: Iterable[list[Record]]) -> Any:
        numeric, needed = self._features()

        def parts():
            for b in batches:
                if b:
                    cols = columns(b, numeric)
                    cat = columns(b, [f for f in needed if f not in cols])
                    yield len(b), cols, {f: (cols[f] if f in cols else cat[f]) for f in needed}, \
                        [r.get("source", "") for r in b]

        return self._fit(parts())

    def fit_dir(self, prev: Any, own: Any = None) -> Any:
        """The fit from the previous stage's score columns (``StageDir.read_columns``): no record's scores are
        decoded. Falls back to ``fit`` when a shard stores its scores inline."""
        n_shards = prev.info()["shards"]
        if not all(prev.done_info(i)["out"] == 0 or prev.read_columns(i) is not None for i in range(n_shards)):
            return self.fit(prev.iter_records())
        from .features import feature_catalog

        numeric, needed = self._features()
        catalog = feature_catalog()

        def column(raw: dict[str, Any], f: str, n: int) -> np.ndarray:
            return _feature_column(raw, f, n, catalog)

        def parts():
            for i in range(n_shards):
                got = prev.read_columns_and_sources(i)
                if got is None:
                    continue
                raw, sources = got
                n = len(sources)
                cols = {f: column(raw, f, n) for f in numeric}
                yield n, cols, {f: (cols[f] if f in cols else column(raw, f, n)) for f in needed}, sources

        return self._fit(parts())

    def _features(self) -> tuple[list[str], list[str]]:
        from .features import feature_catalog

        numeric = [f for f, (_, spec) in feature_catalog().items() if spec.kind != "category"]
        return numeric, self.rules.features()

    def _fit(self, parts: Iterable[tuple[int, dict[str, np.ndarray], dict[str, Any], list[str]]]) -> Any:
        """The fit over (records, numeric columns, the rules' feature columns, sources) per batch."""
        from .features import feature_catalog

        catalog = feature_catalog()
        numeric, needed = self._features()
        fitter = PriorFitter(numeric)
        sample = _Reservoir(ROW_SAMPLE, needed + ["__source__"])
        pool_feats = self.rules.pool_features()
        by_source: dict[str, dict[str, list[float]]] = {f: {} for f in pool_feats}
        seen = 0
        rng = np.random.default_rng(0)
        for n, cols, rows, sources in parts:
            fitter.add_columns(cols)
            rows["__source__"] = sources
            if pool_feats:
                src_arr = np.array(sources, dtype=object)
                for src in set(sources):
                    mask = src_arr == src
                    for f in pool_feats:
                        v = cols[f][mask]
                        v = v[~np.isnan(v)]
                        acc = by_source[f].setdefault(src, [0.0, 0])
                        acc[0] += float(v.sum())
                        acc[1] += int(v.size)
            # keep a uniform row sample (reservoir) to estimate each rule's hit rate before dropping
            sample.add(rows, n, rng)
            seen += n
        pool = fitter.finish("pool")
        priors = self.reference if self.reference is not None else pool
        self.rules.resolve(priors["features"])
        if self.reference is None:
            for r in self.rules.active:
                for c in r.conditions():
                    if c.pool:
                        c.resolve_sources({src: a[0] / a[1] for src, a in by_source[c.feature].items() if a[1]})
        warnings = []
        estimate = {}
        if seen and needed:
            scols = {f: np.array(v, dtype=object if f == "__source__" or catalog[f][1].kind == "category"
                                 else np.float64) for f, v in sample.items()}
            fired = self.rules.evaluate(scols)
            for k, r in enumerate(self.rules.active):
                frac = float(fired[:, k].mean())
                estimate[r.name] = frac
                if frac >= 0.999:
                    warnings.append(f"rule '{r.name}' ({r.describe()}) would drop every record")
                elif frac >= 0.5:
                    warnings.append(f"rule '{r.name}' ({r.describe()}) would drop {frac:.0%} of the records")
            allfrac = float(fired.any(axis=1).mean()) if fired.size else 0.0
            if allfrac >= 0.999 and not any("every record" in w for w in warnings):
                warnings.append("the rules together would drop every record")
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
        return {"priors": priors, "pool_priors": pool if self.reference is not None else None,
                "rules": self.rules.thresholds(), "estimated_hit_rate": estimate, "warnings": warnings,
                "records": seen}

    def process(self, records: list[Record], state: Any) -> Result:
        res = Result()
        if not records:
            return res
        fired = self._judge(records, columns(records, self.rules.features()), state, res)
        res.records = [r for r, f in zip(records, fired.tolist()) if not f]
        return _dropped_side(res)

    def process_columns(self, records: list[Record], raw: dict[str, Any], state: Any) -> Result:
        """``process`` for a shard whose scores are stored by column: the rules read the columns, the kept
        records pass on with their columns (never turned into per-record dicts and back) and only the
        dropped records get their ``scores`` back for the dropped list."""
        from .features import feature_catalog

        res = Result()
        n = len(records)
        if not n:
            return res
        catalog = feature_catalog()
        cols = {f: _feature_column(raw, f, n, catalog) for f in self.rules.features()}
        fired = self._judge(records, cols, state, res, lambda i: _score_row(raw, i))
        keep = np.nonzero(~fired)[0]
        res.records = [records[i] for i in keep.tolist()]
        res.columns = {k: (c[keep] if isinstance(c, np.ndarray) else [c[i] for i in keep.tolist()])
                       for k, c in raw.items()}
        return _dropped_side(res)

    def _judge(self, records: list[Record], cols: dict[str, Any], state: Any, res: Result,
               scores_of: Any = None) -> np.ndarray:
        """Evaluate the fitted rules on a batch's feature columns and add a drop event, carrying the record
        (given its ``scores`` by ``scores_of(i)`` when they are stored by column), for each record that fires
        any rule. Returns the mask of those records."""
        _apply_thresholds(self.rules, state["rules"])
        cols["__source__"] = np.array([r.get("source", "") for r in records], dtype=object)
        fired = self.rules.evaluate(cols)
        names = [r.name for r in self.rules.active]
        feats = [r.features() for r in self.rules.active]
        any_fired = fired.any(axis=1) if fired.size else np.zeros(len(records), dtype=bool)
        for i in np.nonzero(any_fired)[0].tolist():
            r = records[i]
            if scores_of is not None:
                r["scores"] = scores_of(i)
            hit = np.nonzero(fired[i])[0].tolist()
            values = {f: _plain(cols[f][i]) for k in hit for f in feats[k]}
            res.drop(r, "purge", names[hit[0]], rules=[names[k] for k in hit], values=values)
            res.events[-1]["record"] = r
        return any_fired


def _feature_column(raw: dict[str, Any], f: str, n: int, catalog: dict[str, Any]) -> np.ndarray:
    """Feature ``f`` from a shard's score columns (``StageDir.read_columns``), as ``rules.columns`` gives it
    from records: float64 with NaN for missing, or the values themselves for a category (``catalog``:
    ``features.feature_catalog()``)."""
    from .rules import _num

    v = raw.get(PREFIX + f)
    spec = catalog.get(f)
    if spec is not None and spec[1].kind == "category":
        if v is None:
            return np.array([None] * n, dtype=object)
        if not isinstance(v, list):
            v = [None if x != x else x for x in v.tolist()]
        return np.array(v, dtype=object)
    if v is None:
        return np.full(n, np.nan)
    if isinstance(v, list):
        return np.array([_num(x) for x in v], dtype=np.float64)
    return v.astype(np.float64)


def _score_row(raw: dict[str, Any], i: int) -> dict[str, Any]:
    """Record ``i``'s ``scores`` from the shard's columns, as ``StageDir.read_records`` would attach them."""
    row = {}
    for k, col in raw.items():
        v = col[i]
        if isinstance(col, np.ndarray):
            v = v.item()
            if isinstance(v, float) and v != v:
                v = None
        row[k] = v
    return row


def _apply_thresholds(rules: RuleSet, resolved: list[dict[str, Any]]) -> None:
    """Set the thresholds fitted in the driver (the stage object in a worker was not fitted)."""
    by_name = {r["name"]: r for r in resolved}
    for rule in rules.active:
        conds = by_name[rule.name]["conditions"]
        for c, j in zip(rule.conditions(), conds):
            t = j["threshold"]
            c.threshold = float("nan") if t is None else t


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return None if v != v else round(float(v), 4)
    if isinstance(v, np.integer):
        return int(v)
    return v


def _digest(obj: Any) -> str:
    import hashlib

    import orjson

    return hashlib.blake2b(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()
