"""Exact and near-duplicate detection (MinHash-LSH), across every input file of a run.

Exact: BLAKE2b of the normalised instruction, input and response (lower-cased, only the \\w+ words
kept, joined by single spaces), so case, punctuation and spacing changes still match.

Near: word n-gram shingles (default 3 words) of the same text, a ``num_perm``-value MinHash computed
with numpy (shingle hash h, permutation i: the high 32 bits of ``a_i * h + b_i`` mod 2^64, minimum
over the shingles), split into ``b`` bands of ``r`` rows. ``b`` and ``r`` come from the target
Jaccard threshold t by minimising the weighted false-positive area below t plus the false-negative
area above it of the LSH S-curve ``1 - (1 - s^r)^b`` (as datasketch does). Candidate pairs that share
a band are verified with the signatures (estimated Jaccard >= t), which are kept in a temporary
memory-mapped file so memory stays flat.

A duplicate group (connected components of exact and verified near pairs) keeps its best member by a
configurable feature (default: most response words; ties: first seen), the others are dropped with
``duplicate_of`` = the kept id.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import unicodedata
import zlib
from itertools import chain
from typing import Any, Iterable, Sequence

import numpy as np

from ..record import Record, input_of, instruction_of, response_of

_NORM = re.compile(r"[\W_]+")
_WORD = re.compile(r"\w+")
_MASK32 = np.uint64(0xFFFFFFFF)
SIG_GROUP = 16  # signature columns per temporary file (see Deduplicator._verify)


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) minimising the weighted FP + FN area of the LSH S-curve around ``threshold``."""
    xs = np.linspace(0, 1, 201)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            p = 1 - (1 - xs ** r) ** b
            lo, hi = xs <= threshold, xs >= threshold
            fp = np.trapezoid(p[lo], xs[lo]) if lo.sum() > 1 else 0.0
            fn = np.trapezoid(1 - p[hi], xs[hi]) if hi.sum() > 1 else 0.0
            err = fp_weight * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (b, r), err
    return best


def normalise(text: str) -> str:
    return " ".join(_NORM.sub(" ", unicodedata.normalize("NFKC", text).lower()).split())


def record_text(r: Record) -> str:
    return f"{instruction_of(r)}\n{input_of(r)}\n{response_of(r)}"


def words_of(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased \\w+ tokens: the normalised form both exact and near dedup work on."""
    return [_WORD.findall(t.lower()) for t in texts]


def exact_keys(words: Sequence[list[str]]) -> np.ndarray:
    """64-bit BLAKE2b of the normalised text (lower-cased \\w+ tokens joined by single spaces)."""
    out = np.empty(len(words), dtype=np.int64)
    for i, ws in enumerate(words):
        out[i] = int.from_bytes(hashlib.blake2b(" ".join(ws).encode(), digest_size=8).digest(), "little", signed=True)
    return out


class MinHasher:
    def __init__(self, num_perm: int = 128, ngram: int = 3, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.num_perm, self.ngram = num_perm, ngram
        self.a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)

    def shingles(self, words: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Shingle hashes of every document (uint64, flat) and the shingle count per document.
        Word hashes are CRC32 (stable across processes and runs), mixed to 64 bits; a shingle is k
        consecutive words; a document shorter than k words is one shingle of all its words."""
        lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
        total = int(lens.sum())
        n, k = len(words), self.ngram
        glen = np.maximum(lens - k + 1, np.minimum(lens, 1))
        if total == 0:
            return np.zeros(0, dtype=np.uint64), glen
        flat = list(chain.from_iterable(words))
        h = np.fromiter(map(zlib.crc32, map(str.encode, flat)), dtype=np.uint64, count=total)
        # one padding slot after each document so that windows never reach into the next one
        starts = np.cumsum(lens + (k - 1)) - (lens + (k - 1))
        padded = np.zeros(total + n * (k - 1) + k, dtype=np.uint64)
        pos_in = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
        padded[np.repeat(starts, lens) + pos_in] = h + np.uint64(1)
        first = np.repeat(starts, glen) + (np.arange(int(glen.sum())) - np.repeat(np.cumsum(glen) - glen, glen))
        key = np.zeros(first.size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(k):
                key = (key ^ padded[first + j]) * np.uint64(0x94D049BB133111EB)
                key ^= key >> np.uint64(29)
        return key, glen

    def signatures(self, words: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(n, num_perm) uint32 signatures and a mask of documents that have any shingle."""
        key, glen = self.shingles(words)
        n = len(words)
        sig = np.full((n, self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        has = glen > 0
        if key.size == 0:
            return sig, has
        starts = (np.cumsum(glen) - glen)[has]
        with np.errstate(over="ignore"):
            for i in range(self.num_perm):
                v = ((key * self.a[i] + self.b[i]) >> np.uint64(32)).astype(np.uint32)
                sig[has, i] = np.minimum.reduceat(v, starts)
        return sig, has


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint32 keys, one per band of ``rows`` signature values (the high half of a 64-bit mix:
    a chance collision only adds a candidate pair, which the signature check then rejects)."""
    n = sig.shape[0]
    out = np.empty((n, bands), dtype=np.uint32)
    s = sig.astype(np.uint64)
    with np.errstate(over="ignore"):
        for bi in range(bands):
            k = np.full(n, np.uint64(bi) * np.uint64(0x9E3779B97F4A7C15), dtype=np.uint64)
            for j in range(rows):
                k = (k ^ s[:, bi * rows + j]) * np.uint64(0xBF58476D1CE4E5B9)
                k ^= k >> np.uint64(27)
            out[:, bi] = (k >> np.uint64(32)).astype(np.uint32)
    return out


SKETCH_KEY = "_purge_sketch"  # meta key: {"x": exact key, "s": base64 signature, "p": num_perm, "k": ngram}


def sketch(words: Sequence[list[str]], hasher: MinHasher) -> list[dict[str, Any]]:
    """Exact key and MinHash signature of each document, compact enough to travel inside the record."""
    import base64

    exact = exact_keys(words)
    sig, has = hasher.signatures(words)
    out = []
    for i in range(len(words)):
        s = base64.b64encode(sig[i].tobytes()).decode("ascii") if has[i] else ""
        out.append({"x": int(exact[i]), "s": s, "p": hasher.num_perm, "k": hasher.ngram})
    return out


def decode_signatures(encoded: Sequence[str], num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    import base64

    sig = np.full((len(encoded), num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
    has = np.zeros(len(encoded), dtype=bool)
    for i, e in enumerate(encoded):
        if e:
            sig[i] = np.frombuffer(base64.b64decode(e), dtype=np.uint32)
            has[i] = True
    return sig, has


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


class Deduplicator:
    """Streams batches of records in, then decides which ones duplicate which."""

    def __init__(self, threshold: float = 0.7, num_perm: int = 128, ngram: int = 3, near: bool = True,
                 keep_by: str = "response.words:max", seed: int = 1):
        self.threshold, self.near = threshold, near
        self.hasher = MinHasher(num_perm, ngram, seed)
        self.bands, self.rows = optimal_bands(threshold, num_perm)
        self.keep_feature, _, mode = keep_by.partition(":")
        self.keep_max = mode != "min"
        self.ids: list[str] = []
        self.sources: list[np.ndarray] = []
        self._source_codes: dict[str, int] = {}
        self.exact: list[np.ndarray] = []
        self.bkeys: list[np.ndarray] = []
        self.has: list[np.ndarray] = []
        self.keep: list[np.ndarray] = []
        # signatures on disk, one file per group of SIG_GROUP columns: the check of the candidate pairs
        # then reads one group at a time sequentially (a memory map read at random positions made most of
        # the file resident: 500 MB at 1M records)
        self._groups = [(c, min(c + SIG_GROUP, num_perm)) for c in range(0, num_perm, SIG_GROUP)]
        self._tmps = [tempfile.TemporaryFile(prefix="purgemix-minhash-") for _ in self._groups] if near else []
        self.n = 0

    def add(self, records: Sequence[Record]) -> None:
        if not records:
            return
        pre = [r.get("meta", {}).get(SKETCH_KEY) for r in records]
        if all(p is not None and p.get("p") == self.hasher.num_perm and p.get("k") == self.hasher.ngram
               for p in pre):
            # sketched by the scores stage (in parallel): exact key and signature travel in meta
            exact = np.array([p["x"] for p in pre], dtype=np.int64)
            sig, has = decode_signatures([p["s"] for p in pre], self.hasher.num_perm)
        else:
            words = words_of([record_text(r) for r in records])
            exact = exact_keys(words)
            sig, has = self.hasher.signatures(words) if self.near else (None, None)
        self.ids.extend(r["id"] for r in records)
        codes = self._source_codes
        src = np.fromiter((codes.setdefault(r.get("source", ""), len(codes)) for r in records),
                          dtype=np.int32, count=len(records))
        if self.keep_feature == "first":
            keep = None
        else:
            key = "purge." + self.keep_feature
            keep = np.array([_num(r["scores"].get(key)) for r in records], dtype=np.float64)
        self.add_arrays(exact, sig, has, keep, src)

    def add_arrays(self, exact: np.ndarray, sig: np.ndarray | None, has: np.ndarray | None,
                   keep: np.ndarray | None, sources: np.ndarray) -> None:
        """Add a batch given as arrays: exact keys, signatures and their mask (``near`` only), the raw
        keep-by feature values (None for ``first``) and source codes (``self._source_codes``)."""
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
            self.bkeys.append(band_keys(sig[:, : self.bands * self.rows], self.bands, self.rows))
            self.has.append(np.asarray(has, dtype=bool))
        self.n += n

    def _verify(self, pa: np.ndarray) -> np.ndarray:
        """Estimated Jaccard >= threshold for each candidate pair (equal signature values / num_perm),
        reading the signatures one column group at a time."""
        eq = np.zeros(len(pa), dtype=np.int32)
        step = 1 << 18
        for f, (c0, c1) in zip(self._tmps, self._groups):
            f.flush()
            f.seek(0)
            cols = np.fromfile(f, dtype=np.uint32, count=self.n * (c1 - c0)).reshape(self.n, c1 - c0)
            for s in range(0, len(pa), step):
                a, b = pa[s:s + step, 0], pa[s:s + step, 1]
                eq[s:s + step] += (cols[a] == cols[b]).sum(axis=1, dtype=np.int32)
            del cols
        return eq / self.hasher.num_perm >= self.threshold

    def _close(self) -> None:
        for f in self._tmps:
            f.close()
        self._tmps = []

    def decide(self) -> dict[str, Any]:
        """``{"drop": {dropped id: [kept id, reason, kept source]}, "stats": {...}}``."""
        res = self.decide_arrays()
        names = {v: k for k, v in self._source_codes.items()}
        drop = {self.ids[i]: [self.ids[k], "exact-duplicate" if e else "near-duplicate", names[int(self._src[k])]]
                for i, k, e in zip(res["dropped"].tolist(), res["kept"].tolist(), res["exact"].tolist())}
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
        exact = np.concatenate(self.exact)
        order = np.argsort(exact, kind="stable")
        es = exact[order]
        eq = np.nonzero(es[1:] == es[:-1])[0]
        ea, eb = [order[eq]], [order[eq + 1]]
        del order, es
        if self.near:
            has = np.concatenate(self.has)
            live = np.nonzero(has)[0]
            keys = np.zeros(0, dtype=np.int64)
            for bi in range(self.bands):
                col = np.concatenate([b[:, bi] for b in self.bkeys])[live]
                o = np.argsort(col, kind="stable")
                cs = col[o]
                eq = np.nonzero(cs[1:] == cs[:-1])[0]
                if eq.size == 0:
                    continue
                # pair every member of a bucket with the bucket's first member
                run_start = np.concatenate([[True], cs[1:] != cs[:-1]])
                first = np.maximum.accumulate(np.where(run_start, np.arange(cs.size), 0))
                # merged band by band, so memory holds the distinct pairs, not one copy per band
                keys = sorted_unique(np.concatenate([keys, live[o[first[eq + 1]]] * n + live[o[eq + 1]]]))
            self.bkeys = []
            if keys.size:
                # 32-bit positions while they fit: half the memory for pairs and edges
                pa = np.empty((keys.size, 2), dtype=np.int32 if n < 2**31 else np.int64)
                pa[:, 0] = keys // n
                pa[:, 1] = keys % n
                del keys
                stats["candidate_pairs"] = int(len(pa))
                ok = self._verify(pa)
                ea.append(pa[ok, 0])
                eb.append(pa[ok, 1])
                stats["verified_pairs"] = int(ok.sum())
        self._close()
        roots = components(n, np.concatenate(ea), np.concatenate(eb))
        keep = np.concatenate(self.keep)
        multi = np.nonzero(np.bincount(roots, minlength=n) > 1)[0]
        if not multi.size:
            return {"dropped": empty, "kept": empty, "exact": np.zeros(0, dtype=bool), "stats": stats}
        members = np.nonzero(np.isin(roots, multi))[0]
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


def _num(v: Any) -> float:
    if v is None or isinstance(v, str):
        return float("nan")
    return float(v)
