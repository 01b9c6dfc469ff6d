"""Duplicate groups across every input file of a run: ``Deduplicator`` streams sketches in, then decides.

Candidate pairs that share an LSH band are verified with the signatures (estimated Jaccard >= t), which
are kept in temporary files so memory stays flat. A duplicate group (connected components of exact and
verified near pairs) keeps its best member by a configurable feature (default: most response words; ties:
first seen); the others are dropped with ``duplicate_of`` = the kept id.
"""

from __future__ import annotations

import bisect
import os
import tempfile
from typing import Any, Iterable, Sequence

import numpy as np

from ...core.numbers import as_float_or_nan
from ...core.record import Record
from .minhash import MinHasher, band_keys_t, optimal_bands, sketch_records

SIG_GROUP = 8  # signature columns per temporary file (see Deduplicator._verify)
BUCKET_ALL_PAIRS = 32  # buckets up to this size pair every two members; larger ones first-and-chain


def _bucket_pairs(pos: np.ndarray, starts: np.ndarray, sizes: np.ndarray, n: int) -> np.ndarray:
    """Pair keys ``a * n + b`` (a < b) of the members of each bucket: ``pos[starts[k]:starts[k] + sizes[k]]``,
    sorted ascending within a bucket."""
    out = []
    for m in np.unique(sizes[(sizes > 1) & (sizes <= BUCKET_ALL_PAIRS)]).tolist():
        block = pos[starts[sizes == m][:, None] + np.arange(m)]  # one row per bucket of m members
        i, j = np.triu_indices(m, 1)
        out.append(block[:, i].ravel() * n + block[:, j].ravel())
    for s0, m in zip(starts[sizes > BUCKET_ALL_PAIRS].tolist(), sizes[sizes > BUCKET_ALL_PAIRS].tolist()):
        members = pos[s0:s0 + m]
        out.append(members[0] * n + members[1:])  # with the first member
        out.append(members[:-1] * n + members[1:])  # and with the one before it
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def sorted_unique(x: np.ndarray) -> np.ndarray:
    """``np.unique`` by sorting: numpy 2.x's hash-table ``np.unique`` takes seconds on a few million
    64-bit keys (3 s against 0.02 s for 2M random int64)."""
    s = np.sort(np.asarray(x).ravel())
    if s.size < 2:
        return s
    return s[np.concatenate([[True], s[1:] != s[:-1]])]


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes given edges ``a[i] - b[i]``: the component's
    lowest node (numpy hooking and pointer jumping: every round hooks each edge's larger root under the
    smaller one, then flattens the trees, until both ends of every edge share a root)."""
    dt = np.int32 if n < 2**31 else np.int64
    parent = np.arange(n, dtype=dt)
    a = np.asarray(a, dtype=dt)
    b = np.asarray(b, dtype=dt)
    while a.size:
        ra, rb = parent[a], parent[b]
        diff = ra != rb
        if not diff.any():
            break
        a, b, ra, rb = a[diff], b[diff], ra[diff], rb[diff]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:
            pp = parent[parent]
            if np.array_equal(pp, parent):
                break
            parent = pp
    return parent.astype(np.int64)


class IdList:
    """The ids of the records added, compactly: each batch's ids as one UTF-8 blob with end offsets (about
    the id's length plus 8 bytes per record, against some 60 bytes more for a list of str)."""

    def __init__(self) -> None:
        self._blobs: list[bytes] = []
        self._ends: list[np.ndarray] = []
        self._first: list[int] = [0]

    def extend(self, ids: Iterable[str]) -> None:
        enc = [i.encode() for i in ids]
        if not enc:
            return
        self._blobs.append(b"".join(enc))
        self._ends.append(np.cumsum(np.fromiter(map(len, enc), dtype=np.int64, count=len(enc))))
        self._first.append(self._first[-1] + len(enc))

    def __len__(self) -> int:
        return self._first[-1]

    def __getitem__(self, i: int) -> str:
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        b = bisect.bisect_right(self._first, i) - 1
        k = i - self._first[b]
        ends = self._ends[b]
        return self._blobs[b][int(ends[k - 1]) if k else 0:int(ends[k])].decode()

    def __iter__(self):
        for blob, ends in zip(self._blobs, self._ends):
            start = 0
            for end in ends.tolist():
                yield blob[start:end].decode()
                start = end

    def take(self, positions: Sequence[int] | np.ndarray) -> list[str]:
        """The ids at many positions at once (grouped by batch)."""
        pos = np.asarray(positions, dtype=np.int64)
        out: list[str] = [""] * pos.size
        if not pos.size:
            return out
        if pos.min() < 0 or pos.max() >= len(self):
            raise IndexError("position out of range")
        batch = np.searchsorted(self._first, pos, side="right") - 1
        order = np.argsort(batch, kind="stable")
        bounds = np.searchsorted(batch[order], np.arange(len(self._blobs) + 1))
        for b in range(len(self._blobs)):
            sel = order[bounds[b]:bounds[b + 1]]
            if not sel.size:
                continue
            k = pos[sel] - self._first[b]
            ends = self._ends[b]
            starts = np.where(k > 0, ends[np.maximum(k - 1, 0)], 0)
            blob = self._blobs[b]
            for j, s0, e0 in zip(sel.tolist(), starts.tolist(), ends[k].tolist()):
                out[j] = blob[s0:e0].decode()
        return out


class Deduplicator:
    """Streams batches of records in, then decides which ones duplicate which."""

    def __init__(self, threshold: float = 0.7, num_perm: int = 128, ngram: int = 3, near: bool = True,
                 keep_by: str = "response.words:max", seed: int = 1, spill_dir: str | None = None):
        self.threshold, self.near = threshold, near
        self.hasher = MinHasher(num_perm, ngram, seed)
        self.bands, self.rows = optimal_bands(threshold, num_perm)
        self.keep_feature, _, mode = keep_by.partition(":")
        self.keep_max = mode != "min"
        self.ids = IdList()
        self.sources: list[np.ndarray] = []
        self._source_codes: dict[str, int] = {}
        self.exact: list[np.ndarray] = []
        self.has: list[np.ndarray] = []
        self.keep: list[np.ndarray] = []
        # What grows with the number of records stays on disk until ``decide``, in anonymous temporary files
        # (under ``spill_dir``, e.g. the run's stage directory; default: the system's temporary directory):
        # the band keys, one file per band, read back one band at a time; the signatures, one file per group
        # of SIG_GROUP columns, so that the check of the candidate pairs reads one group at a time
        # sequentially (a memory map read at random positions made most of the file resident: 500 MB at 1M
        # records). In memory: 21 bytes per record (exact key, keep-by value, source code, mask).
        self.spill_dir = spill_dir
        self._groups = [(c, min(c + SIG_GROUP, num_perm)) for c in range(0, num_perm, SIG_GROUP)]
        self._tmps: list = []
        self._band_tmps: list = []
        if near:
            if spill_dir:
                os.makedirs(spill_dir, exist_ok=True)
            self._tmps = [self._tempfile() for _ in self._groups]
            self._band_tmps = [self._tempfile() for _ in range(self.bands)]
        self.n = 0

    def _tempfile(self):
        return tempfile.TemporaryFile(prefix="purgemix-minhash-", dir=self.spill_dir)

    def add(self, records: Sequence[Record]) -> None:
        if not records:
            return
        exact, sig, has = sketch_records(records, self.hasher if self.near else None)
        self.ids.extend(r["id"] for r in records)
        codes = self._source_codes
        src = np.fromiter((codes.setdefault(r.get("source", ""), len(codes)) for r in records),
                          dtype=np.int32, count=len(records))
        if self.keep_feature == "first":
            keep = None
        else:
            key = "purge." + self.keep_feature
            keep = np.array([as_float_or_nan(r["scores"].get(key)) for r in records], dtype=np.float64)
        self.add_arrays(exact, sig, has, keep, src)

    def add_arrays(self, exact: np.ndarray, sig: np.ndarray | None, has: np.ndarray | None,
                   keep: np.ndarray | None, sources: np.ndarray, band_keys: np.ndarray | None = None) -> None:
        """Add a batch given as arrays: exact keys, signatures and their mask (``near`` only), the raw
        keep-by feature values (None for ``first``) and source codes (``self._source_codes``); ``band_keys``:
        the signatures' ``band_keys_t`` when the caller computed them already (e.g. in a worker)."""
        n = len(exact)
        self.sources.append(np.asarray(sources, dtype=np.int32))
        self.exact.append(np.asarray(exact, dtype=np.int64))
        if keep is None:
            self.keep.append(np.zeros(n))
        else:
            v = np.asarray(keep, dtype=np.float64)
            self.keep.append(np.nan_to_num(v if self.keep_max else -v, nan=-np.inf))
        if self.near:
            sig = np.asarray(sig, dtype=np.uint32)
            for f, (c0, c1) in zip(self._tmps, self._groups):
                f.write(np.ascontiguousarray(sig[:, c0:c1]).tobytes())
            keys = band_keys_t(sig, self.bands, self.rows) if band_keys is None else band_keys
            for f, col in zip(self._band_tmps, keys):
                f.write(col.tobytes())
            self.has.append(np.asarray(has, dtype=bool))
        self.n += n

    def candidate_pairs(self, representative: np.ndarray | None = None) -> np.ndarray:
        """Distinct (a, b) position pairs, a < b, that share a band bucket: every pair of members of a bucket
        (up to ``BUCKET_ALL_PAIRS`` members; a larger bucket pairs each member with its first member and
        with the member before it), band by band (sorted, int32 while positions fit).

        Pairing all members, not only each with the bucket's first one, is what keeps transitive groups
        whole: when the first member is a false-positive neighbour of two true duplicates, pairing with it
        alone never compares the two. ``representative``: the records that enter the LSH at all (the first
        of each exact-duplicate set; the others join their group through the exact edges)."""
        n = self.n
        has = np.concatenate(self.has) if self.has else np.zeros(0, dtype=bool)
        if representative is not None:
            has &= representative
        live = np.flatnonzero(has).astype(np.uint64)
        del has
        keys = np.zeros(0, dtype=np.int64)
        low = np.uint64(0xFFFFFFFF)
        for bi in range(self.bands):
            f = self._band_tmps[bi]
            f.flush()
            f.seek(0)
            # band key in the high half, position in the low half: one sort orders the buckets, and the
            # members of each bucket by position
            v = np.fromfile(f, dtype=np.uint32, count=n)[live.astype(np.intp)].astype(np.uint64) << np.uint64(32)
            v |= live
            v.sort()
            hi = v >> np.uint64(32)
            run_start = np.empty(v.size, dtype=bool)
            run_start[:1] = True
            np.not_equal(hi[1:], hi[:-1], out=run_start[1:])
            del hi
            if run_start.all():
                continue
            pos = (v & low).astype(np.int64)
            del v
            starts = np.flatnonzero(run_start)
            sizes = np.diff(np.append(starts, pos.size))
            del run_start
            new = [_bucket_pairs(pos, starts, sizes, n)]
            del pos, starts, sizes
            # merged band by band, so memory holds the distinct pairs, not one copy per band
            both = np.concatenate([keys, *new])
            del keys, new
            both.sort()
            keep = np.empty(both.size, dtype=bool)
            keep[:1] = True
            np.not_equal(both[1:], both[:-1], out=keep[1:])
            keys = both[keep]
            del both, keep
        for f in self._band_tmps:
            f.close()
        self._band_tmps = []
        # 32-bit positions while they fit: half the memory for pairs and edges
        pa = np.empty((keys.size, 2), dtype=np.int32 if n < 2**31 else np.int64)
        pa[:, 0] = keys // n
        pa[:, 1] = keys % n
        return pa

    def _verify(self, pa: np.ndarray) -> np.ndarray:
        """Estimated Jaccard >= threshold for each candidate pair (equal signature values / num_perm),
        reading the signatures one column group at a time."""
        eq = np.zeros(len(pa), dtype=np.uint8 if self.hasher.num_perm < 256 else np.int32)
        step = 1 << 16
        for f, (c0, c1) in zip(self._tmps, self._groups):
            f.flush()
            f.seek(0)
            cols = np.fromfile(f, dtype=np.uint32, count=self.n * (c1 - c0)).reshape(self.n, c1 - c0)
            for s in range(0, len(pa), step):
                a, b = pa[s:s + step, 0], pa[s:s + step, 1]
                eq[s:s + step] += (cols[a] == cols[b]).sum(axis=1, dtype=eq.dtype)
            del cols
        # the same test as eq / num_perm >= threshold, read from a table of the possible counts
        return (np.arange(self.hasher.num_perm + 1) / self.hasher.num_perm >= self.threshold)[eq]

    def _close(self) -> None:
        for f in self._tmps + self._band_tmps:
            f.close()
        self._tmps, self._band_tmps = [], []

    def decide(self) -> dict[str, Any]:
        """``{"drop": {dropped id: [kept id, reason, kept source]}, "stats": {...}}``."""
        res = self.decide_arrays()
        names = {v: k for k, v in self._source_codes.items()}
        dropped, kept = self.ids.take(res["dropped"]), self.ids.take(res["kept"])
        drop = {i: [k, "exact-duplicate" if e else "near-duplicate", names[int(self._src[kp])]]
                for i, k, kp, e in zip(dropped, kept, res["kept"].tolist(), res["exact"].tolist())}
        return {"drop": drop, "stats": res["stats"]}

    def decide_arrays(self) -> dict[str, Any]:
        """Positions of the dropped records, of the member each one duplicates, and whether that is an
        exact duplicate (numpy arrays: a few bytes per record, whatever the number of duplicates)."""
        n = self.n
        stats = {"records": n, "bands": self.bands, "rows": self.rows, "candidate_pairs": 0, "verified_pairs": 0,
                 "groups": 0, "dropped": 0, "exact": 0, "near": 0, "cross_source": 0}
        empty = np.zeros(0, dtype=np.int64)
        self._src = np.concatenate(self.sources) if self.sources else np.zeros(0, dtype=np.int32)
        if n == 0:
            return {"dropped": empty, "kept": empty, "exact": np.zeros(0, dtype=bool), "stats": stats}
        pos_t = np.int32 if n < 2**31 else np.int64
        exact = np.concatenate(self.exact)
        order = np.argsort(exact, kind="stable").astype(pos_t)
        eq = np.flatnonzero(exact[order[1:]] == exact[order[:-1]])
        ea, eb = order[eq], order[eq + 1]
        del order, eq
        if self.near:
            first_of_exact = np.ones(n, dtype=bool)
            srt = np.argsort(exact, kind="stable")
            first_of_exact[srt[1:][exact[srt[1:]] == exact[srt[:-1]]]] = False
            del srt
            pa = self.candidate_pairs(first_of_exact)
            if pa.size:
                stats["candidate_pairs"] = len(pa)
                ok = self._verify(pa)
                ea, eb = np.concatenate([ea, pa[ok, 0]]), np.concatenate([eb, pa[ok, 1]])
                stats["verified_pairs"] = int(ok.sum())
                del ok
            del pa
        self._close()
        roots = components(n, ea, eb)
        del ea, eb
        keep = np.concatenate(self.keep)
        counts = np.bincount(roots, minlength=n)
        multi = np.flatnonzero(counts > 1)
        if not multi.size:
            return {"dropped": empty, "kept": empty, "exact": np.zeros(0, dtype=bool), "stats": stats}
        members = np.flatnonzero(counts[roots] > 1)
        del counts
        # best member per group: highest keep score, then earliest position
        o = np.lexsort((members, -keep[members], roots[members]))
        ordered = members[o]
        grp = roots[ordered]
        is_first = np.concatenate([[True], grp[1:] != grp[:-1]])
        kept_of = ordered[np.maximum.accumulate(np.where(is_first, np.arange(ordered.size), 0))]
        di, ki = ordered[~is_first], kept_of[~is_first]
        ex = exact[di] == exact[ki]
        stats.update({"groups": int(multi.size), "dropped": int(di.size), "exact": int(ex.sum()),
                      "near": int((~ex).sum()), "cross_source": int((self._src[di] != self._src[ki]).sum())})
        return {"dropped": di, "kept": ki, "exact": ex, "stats": stats}


def find_duplicates(batches: Iterable[Sequence[Record]], **kw) -> dict[str, Any]:
    d = Deduplicator(**kw)
    for b in batches:
        d.add(b)
    return d.decide()
