"""MinHash signatures of word n-gram shingles and their LSH bands.

Shingles of ``ngram`` words (default 3), each hashed from its word hashes; a ``num_perm``-value MinHash
(shingle hash h, permutation i: the high 32 bits of ``a_i * h + b_i`` mod 2^64, minimum over the
shingles; documents of similar shingle counts go through one (docs, shingles, permutations) product at a
time), split into ``b`` bands of ``r`` rows. ``b`` and ``r`` come from the target Jaccard threshold t: the least
false-positive area below t among the bandings that make a pair at t a candidate with probability 0.95
(``optimal_bands``).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from ...core.record import Record
from .words import dedup_text, hash_words, join_words, word_bytes

RECALL_AT_THRESHOLD = 0.95  # chance that a pair exactly at the threshold shares a band


def candidate_probability(s: float | np.ndarray, bands: int, rows: int):
    """The LSH S-curve: the chance that a pair of Jaccard ``s`` shares at least one of ``bands`` bands."""
    return 1 - (1 - np.asarray(s, dtype=float) ** rows) ** bands


@functools.lru_cache(maxsize=64)
def optimal_bands(threshold: float, num_perm: int, recall: float = RECALL_AT_THRESHOLD) -> tuple[int, int]:
    """(bands, rows): of the bandings that make a pair at exactly ``threshold`` a candidate with probability
    ``recall`` or more, the one with the least false-positive area below the threshold.

    A false positive costs only its verification (every candidate pair is checked against the signatures);
    a false negative is a duplicate kept. The former rule (least FP + FN area, as datasketch does) chose
    9 x 13 at 0.8, which finds a pair at J = 0.8 with probability 0.40 (16 x 8: 0.95). When no banding
    reaches ``recall``, the one with the highest probability at the threshold."""
    xs = np.linspace(0, threshold, 101)
    best, best_key = (1, num_perm), (float("inf"), float("inf"))
    for r in range(1, num_perm + 1):
        b = num_perm // r  # for a given row count, every permutation used: the most bands
        p_t = float(candidate_probability(threshold, b, r))
        fp = float(np.trapezoid(candidate_probability(xs, b, r), xs))
        key = (0.0, fp) if p_t >= recall else (1.0, -p_t)
        if key < best_key:
            best, best_key = (b, r), key
    return best


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
    return band_keys_t(sig, bands, rows).T


def band_keys_t(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
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


def sketch_records(records: Sequence[Record], hasher: MinHasher | None) -> tuple[np.ndarray, Any, Any]:
    """Exact keys of the records' texts and, with a hasher, their MinHash signatures and mask (else None)."""
    docs = word_bytes([dedup_text(r) for r in records])
    if hasher is None:
        return hash_words(docs)[2], None, None
    return hasher.sketch_docs(docs)
