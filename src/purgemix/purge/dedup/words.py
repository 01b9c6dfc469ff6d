"""The normalised words of a record and their 64-bit hashes, for exact and near dedup alike.

The words are the lower-cased \\w+ tokens of the first user and first assistant turn, so case,
punctuation and spacing changes still match. Nothing creates a Python object per word: ASCII text is
lower-cased and its non-word bytes blanked by one ``bytes.translate`` (other text goes through the regex),
and the words of a whole batch are hashed at once in numpy (a polynomial hash of each word's bytes from
prefix sums, mixed with its length). The exact key of a text is the same prefix-sum polynomial one level
up, over its word hashes.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from ...core.record import Record

_WORD = re.compile(r"\w+")


def dedup_text(r: Record) -> str:
    """The first user and first assistant turn: the instruction, input and
    response (the user turn is the instruction and the input joined by a separator without word characters)."""
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
