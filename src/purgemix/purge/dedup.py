"""Exact and near-duplicate detection (MinHash-LSH), across every input file of a run.

Both work on the normalised words of the instruction, input and response: the lower-cased \\w+
tokens, so case, punctuation and spacing changes still match. Nothing creates a Python object per
word: ASCII text is lower-cased and its non-word bytes blanked by one ``bytes.translate`` (other text
goes through the regex), and the words of a whole batch are hashed at once in numpy (a polynomial
hash of each word's bytes from prefix sums, mixed with its length).

Exact: a 64-bit hash of the sequence of word hashes (the same prefix-sum polynomial one level up).

Near: word n-gram shingles (default 3 words), each hashed from its word hashes, a ``num_perm``-value
MinHash (shingle hash h, permutation i: the high 32 bits of ``a_i * h + b_i`` mod 2^64, minimum over
the shingles; documents of similar shingle counts go through one (docs, shingles, permutations)
product at a time), split into ``b`` bands of ``r`` rows. ``b`` and ``r`` come from the target
Jaccard threshold t by minimising the weighted false-positive area below t plus the false-negative
area above it of the LSH S-curve ``1 - (1 - s^r)^b`` (as datasketch does). Candidate pairs that share
a band are verified with the signatures (estimated Jaccard >= t), which are kept in temporary files so
memory stays flat.

A duplicate group (connected components of exact and verified near pairs) keeps its best member by a
configurable feature (default: most response words; ties: first seen), the others are dropped with
``duplicate_of`` = the kept id.
"""

from __future__ import annotations

import bisect
import functools
import os
import re
import tempfile
import unicodedata
from typing import Any, Iterable, Sequence

import numpy as np

from ..core.record import Record, input_of, instruction_of, response_of

_NORM = re.compile(r"[\W_]+")
_WORD = re.compile(r"\w+")
_MASK32 = np.uint64(0xFFFFFFFF)
SIG_GROUP = 8  # signature columns per temporary file (see Deduplicator._verify)


@functools.lru_cache(maxsize=64)
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


def _dedup_text(r: Record) -> str:
    """The first user and first assistant turn: the same words as ``record_text`` (the user turn is the
    instruction and the input joined by a separator without word characters)."""
    user = resp = None
    for m in r["messages"]:
        role = m["role"]
        if role == "user":
            if user is None:
                user = m["content"]
        elif role == "assistant" and resp is None:
            resp = m["content"]
    return f"{user or ''}\n{resp or ''}"


def words_of(texts: Sequence[str]) -> list[list[str]]:
    """Lower-cased \\w+ tokens: the normalised form both exact and near dedup work on."""
    return [_WORD.findall(t.lower()) for t in texts]


# bytes.translate table for ASCII text: letters lower-cased, digits and "_" kept (the ASCII \\w
# characters), everything else a space, so ``split()`` of the result is ``_WORD.findall(text.lower())``
_ASCII_WORDS = bytes(c + 32 if 65 <= c <= 90 else c if (97 <= c <= 122 or 48 <= c <= 57 or c == 95) else 32
                     for c in range(256))


def word_bytes(texts: Sequence[str]) -> list[bytes]:
    """Each text as UTF-8 bytes in which the words of ``words_of`` are the runs of non-space bytes
    (ASCII text: one C-level translate; other text: the regex words joined by spaces)."""
    out = []
    for t in texts:
        if t.isascii():
            out.append(t.encode().translate(_ASCII_WORDS))
        else:
            out.append(" ".join(_WORD.findall(t.lower())).encode())
    return out


def join_words(words: Sequence[list[str]]) -> list[bytes]:
    """Already split words (``words_of``) in the form of ``word_bytes``."""
    return [" ".join(ws).encode() for ws in words]


# Word hashes: a polynomial hash of the word's bytes in base _Q modulo 2^64, computed for all the words of a
# chunk at once from prefix sums (c_j * _Q^j summed up to each byte, the difference over a word scaled back
# by _Q^-start), then mixed with the word's length by a 64-bit finaliser.
_Q = 0x100000001B3 * 0x9E3779B97F4A7C15 % 2**64 | 1
_P = pow(_Q, -1, 2**64)
_CHUNK = 1 << 20  # bytes per chunk (docs are never split; a longer doc is a chunk of its own)
_POW: list[np.ndarray] = []


def _powers(m: int) -> tuple[np.ndarray, np.ndarray]:
    """_Q^j and _Q^-j mod 2^64 for j < m (cached up to _CHUNK)."""
    if _POW and _POW[0].size >= m:
        return _POW[0], _POW[1]
    size = max(m, _CHUNK)
    q = np.full(size, _Q, dtype=np.uint64)
    q[0] = 1
    p = np.full(size, _P, dtype=np.uint64)
    p[0] = 1
    q, p = np.cumprod(q, dtype=np.uint64), np.cumprod(p, dtype=np.uint64)
    if size == _CHUNK:
        _POW[:] = [q, p]
    return q, p


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, in place."""
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


def _segment_hash(values: np.ndarray, start: np.ndarray, end: np.ndarray, salt: int) -> np.ndarray:
    """Mixed polynomial hash (base _Q) of ``values[start[i]:end[i]]`` for every i (uint64)."""
    q, p = _powers(values.size + 1)
    pre = np.zeros(values.size + 1, dtype=np.uint64)
    np.cumsum(values * q[: values.size], out=pre[1:])
    h = (pre[end] - pre[start]) * p[start]
    h ^= (end - start).astype(np.uint64) * np.uint64(salt)
    return _mix(h)


def hash_words(docs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(word hashes of all documents, flat uint64; words per document; exact key per document) of
    documents in the form of ``word_bytes``. The exact key hashes the sequence of word hashes (with the
    number of words), so two documents with the same normalised words share it."""
    n = len(docs)
    dlen = np.fromiter(map(len, docs), dtype=np.int64, count=n)
    lens = np.zeros(n, dtype=np.int64)
    exact = np.zeros(n, dtype=np.uint64)
    parts: list[np.ndarray] = []
    ends = np.cumsum(dlen + 1)  # where each doc and its separator end in the joined bytes
    i = 0
    with np.errstate(over="ignore"):
        while i < n:
            # docs [i, j) with at most _CHUNK bytes (at least one doc)
            before = int(ends[i - 1]) if i else 0
            j = max(i + 1, int(np.searchsorted(ends, before + _CHUNK, side="right")))
            buf = np.frombuffer(b" ".join(docs[i:j]) + b" ", dtype=np.uint8)
            word = buf != 32
            edge = np.flatnonzero(word[1:] != word[:-1]) + 1
            if word[0]:
                edge = np.concatenate([[0], edge])
            ws, we = edge[0::2], edge[1::2]
            wh = _segment_hash(buf.astype(np.uint64), ws, we, 0xC2B2AE3D27D4EB4F)
            # first word of each doc: docs start after the separators of the previous ones
            dstart = np.cumsum(dlen[i:j] + 1) - (dlen[i:j] + 1)
            first = np.searchsorted(ws, dstart)
            last = np.append(first[1:], ws.size)
            lens[i:j] = last - first
            exact[i:j] = _segment_hash(wh, first, last, 0x165667B19E3779F9)
            parts.append(wh)
            i = j
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    return flat, lens, exact.view(np.int64)


class MinHasher:
    BLOCK = 2048  # padded shingles per block of documents in ``minhash``

    def __init__(self, num_perm: int = 128, ngram: int = 3, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.num_perm, self.ngram = num_perm, ngram
        self.a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) | np.uint64(1)
        self.b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)

    def shingles_of(self, wh: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Shingle hashes of every document (uint64, flat) and the shingle count per document, from the
        flat word hashes and the words per document: a shingle is k consecutive words; a document
        shorter than k words is one shingle of all its words."""
        n, k = len(lens), self.ngram
        total = int(lens.sum())
        glen = np.maximum(lens - k + 1, np.minimum(lens, 1))
        if total == 0:
            return np.zeros(0, dtype=np.uint64), glen
        # k - 1 zero slots after each document so that windows never reach into the next one
        starts = np.cumsum(lens + (k - 1)) - (lens + (k - 1))
        padded = np.zeros(total + n * (k - 1) + k, dtype=np.uint64)
        pos_in = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
        padded[np.repeat(starts, lens) + pos_in] = wh | np.uint64(1)
        first = np.repeat(starts, glen) + (np.arange(int(glen.sum())) - np.repeat(np.cumsum(glen) - glen, glen))
        key = np.zeros(first.size, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(k):
                key = (key ^ padded[first + j]) * np.uint64(0x94D049BB133111EB)
                key ^= key >> np.uint64(29)
        return key, glen

    def shingles(self, words: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        wh, lens, _ = hash_words(join_words(words))
        return self.shingles_of(wh, lens)

    def minhash(self, key: np.ndarray, glen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(n, num_perm) uint32 signatures (the high 32 bits of min over the shingles of
        ``a_i * h + b_i`` mod 2^64) and a mask of documents that have any shingle. Documents go by
        shingle count into blocks of a few thousand padded shingles (a short document is padded with
        its last shingle, which leaves the minimum as it is): one (docs, width, num_perm) product and a
        minimum over the width per block."""
        n, np_ = len(glen), self.num_perm
        sig = np.full((n, np_), np.iinfo(np.uint32).max, dtype=np.uint32)
        has = glen > 0
        if not has.any():
            return sig, has
        starts = np.cumsum(glen) - glen
        docs = np.flatnonzero(has)
        docs = docs[np.argsort(glen[docs], kind="stable")]
        ln = glen[docs]
        block = self.BLOCK
        buf = np.empty(block * np_, dtype=np.uint64)
        a, b = self.a, self.b
        i = 0
        with np.errstate(over="ignore"):
            while i < docs.size:
                w = int(ln[i])
                if w > block:  # one long document, in slices of the block's size
                    d = int(docs[i])
                    m = np.full(np_, np.iinfo(np.uint64).max, dtype=np.uint64)
                    for s in range(0, w, block):
                        kk = key[starts[d] + s:starts[d] + min(w, s + block)]
                        prod = np.multiply(kk[:, None], a, out=buf[: kk.size * np_].reshape(kk.size, np_))
                        prod += b
                        np.minimum(m, np.minimum.reduce(prod, axis=0), out=m)
                    sig[d] = (m >> np.uint64(32)).astype(np.uint32)
                    i += 1
                    continue
                seg = ln[i:i + block]
                nd = max(1, int(np.searchsorted(np.arange(1, seg.size + 1) * seg, block, side="right")))
                d = docs[i:i + nd]
                w = int(ln[i + nd - 1])
                # (width, docs, permutations): the minimum over the width is an elementwise minimum of
                # contiguous (docs, permutations) slabs
                pos = starts[d] + np.minimum(np.arange(w)[:, None], ln[i:i + nd] - 1)
                prod = np.multiply(key[pos][:, :, None], a, out=buf[: nd * w * np_].reshape(w, nd, np_))
                prod += b
                sig[d] = (np.minimum.reduce(prod, axis=0) >> np.uint64(32)).astype(np.uint32)
                i += nd
        return sig, has

    def signatures(self, words: Sequence[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(n, num_perm) uint32 signatures and a mask of documents that have any shingle."""
        return self.minhash(*self.shingles(words))

    def sketch_docs(self, docs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(exact keys, signatures, mask) of documents in the form of ``word_bytes``."""
        wh, lens, exact = hash_words(docs)
        sig, has = self.minhash(*self.shingles_of(wh, lens))
        return exact, sig, has


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint32 keys, one per band of ``rows`` signature values (the high half of a 64-bit mix:
    a chance collision only adds a candidate pair, which the signature check then rejects)."""
    return _band_keys_t(sig, bands, rows).T


def _band_keys_t(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """``band_keys`` band-major: (bands, n), all bands at once."""
    n = sig.shape[0]
    s = sig[:, : bands * rows].reshape(n, bands, rows).astype(np.uint64)
    k = np.broadcast_to(np.arange(bands, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15), (n, bands)).copy()
    with np.errstate(over="ignore"):
        for j in range(rows):
            k ^= s[:, :, j]
            k *= np.uint64(0xBF58476D1CE4E5B9)
            k ^= k >> np.uint64(27)
    return np.ascontiguousarray((k >> np.uint64(32)).astype(np.uint32).T)


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


def sketch_records(records: Sequence[Record], hasher: MinHasher | None) -> tuple[np.ndarray, Any, Any]:
    """Exact keys of the records' texts and, with a hasher, their MinHash signatures and mask (else None)."""
    docs = word_bytes([_dedup_text(r) for r in records])
    if hasher is None:
        return hash_words(docs)[2], None, None
    return hasher.sketch_docs(docs)


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
            keep = np.array([_num(r["scores"].get(key)) for r in records], dtype=np.float64)
        self.add_arrays(exact, sig, has, keep, src)

    def add_arrays(self, exact: np.ndarray, sig: np.ndarray | None, has: np.ndarray | None,
                   keep: np.ndarray | None, sources: np.ndarray, band_keys: np.ndarray | None = None) -> None:
        """Add a batch given as arrays: exact keys, signatures and their mask (``near`` only), the raw
        keep-by feature values (None for ``first``) and source codes (``self._source_codes``); ``band_keys``:
        the signatures' ``_band_keys_t`` when the caller computed them already (e.g. in a worker)."""
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
            keys = _band_keys_t(sig, self.bands, self.rows) if band_keys is None else band_keys
            for f, col in zip(self._band_tmps, keys):
                f.write(col.tobytes())
            self.has.append(np.asarray(has, dtype=bool))
        self.n += n

    def candidate_pairs(self) -> np.ndarray:
        """Distinct (first, other) position pairs, first < other, that share a band bucket: every member of a
        bucket paired with the bucket's first member, band by band (sorted, int32 while positions fit)."""
        n = self.n
        has = np.concatenate(self.has) if self.has else np.zeros(0, dtype=bool)
        live = np.flatnonzero(has).astype(np.uint64)
        del has
        keys = np.zeros(0, dtype=np.int64)
        low = np.uint64(0xFFFFFFFF)
        for bi in range(self.bands):
            f = self._band_tmps[bi]
            f.flush()
            f.seek(0)
            # band key in the high half, position in the low half: one sort orders the buckets and puts
            # each bucket's first (lowest) position first
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
            v &= low
            starts = np.flatnonzero(run_start)
            # pair every member of a bucket with the bucket's first member
            first = np.repeat(v[starts], np.diff(np.append(starts, v.size)))
            member = ~run_start
            new = first[member].astype(np.int64) * n + v[member].astype(np.int64)
            del v, first, member, starts, run_start
            # merged band by band, so memory holds the distinct pairs, not one copy per band
            both = np.concatenate([keys, new])
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
            pa = self.candidate_pairs()
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


def _num(v: Any) -> float:
    if v is None or isinstance(v, str):
        return float("nan")
    return float(v)
