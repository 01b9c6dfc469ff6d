"""The ``repetition`` scorer: duplicate lines and word n-grams, and the longest repeated word sequence.

Its own module because the n-gram statistics are the purge's heaviest vectorised code (hashed
n-grams of the whole batch, one sort per n).
"""

from __future__ import annotations

import numpy as np

from .base import ALL, Batch, Feature, scorer

_M = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F), np.uint64(0x165667B19E3779F9),
      np.uint64(0xD6E8FEB86659FD93))


def _ngram_stats(words: list[list[str]]) -> dict[str, np.ndarray]:
    """Duplicate word n-gram fractions for a whole batch at once: words are hashed, n-grams become
    64-bit keys mixed with their document index, and one sort finds the repeats of every document."""
    from itertools import chain

    n = len(words)
    lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=n)
    total = int(lens.sum())
    out = {f"dup_{k}gram_frac": np.zeros(n) for k in (2, 3, 4)}
    out["top_2gram_char_frac"] = np.zeros(n)
    out["longest_repeat_ratio"] = np.zeros(n)
    if total == 0:
        return out
    flat = list(chain.from_iterable(words))
    h = np.fromiter(map(hash, flat), dtype=np.int64, count=total).view(np.uint64)
    wl = np.fromiter(map(len, flat), dtype=np.int64, count=total)
    doc = np.repeat(np.arange(n, dtype=np.int64), lens)
    starts = np.cumsum(lens) - lens
    pos = np.arange(total, dtype=np.int64) - starts[doc]
    doc_chars = np.bincount(doc, weights=wl, minlength=n)
    dmix = doc.astype(np.uint64) * _M[3]
    with np.errstate(over="ignore"):
        for k in (2, 3, 4):
            valid = np.nonzero(pos <= (lens[doc] - k))[0]
            if valid.size == 0:
                continue
            key = dmix[valid].copy()
            for j in range(k):
                key ^= h[valid + j] * _M[j]
                key = (key << np.uint64(7)) | (key >> np.uint64(57))
            # unstable sort (several times faster); where the earliest member of a run of equal keys
            # matters (the one that is not a repeat), it is taken as the run's smallest position
            order = np.argsort(key, kind="quicksort")
            ks = key[order]
            ds = doc[valid][order]
            same = ks[1:] == ks[:-1]
            dup = np.bincount(ds[1:][same], minlength=n)
            grams = np.maximum(lens - k + 1, 0)
            out[f"dup_{k}gram_frac"] = np.divide(dup, grams, out=np.zeros(n), where=grams > 1)
            if k == 3 or not same.any():
                continue
            run_start = np.concatenate([[True], ~same])
            starts_idx = np.nonzero(run_start)[0]
            first = np.minimum.reduceat(order, starts_idx)  # earliest position of each run
            if k == 4:
                # longest run of consecutive 4-gram positions that repeat an earlier 4-gram: a repeated
                # word sequence of L words gives L - 3 such positions
                counts = np.diff(np.append(starts_idx, order.size))
                rep = np.zeros(valid.size, dtype=bool)
                rep[order[np.repeat(counts, counts) >= 2]] = True
                rep[first] = False
                dv = doc[valid]
                brk = ~rep | np.concatenate([[True], dv[1:] != dv[:-1]])
                seg = np.cumsum(brk)
                runs = np.bincount(seg[rep], minlength=seg[-1] + 1)
                longest = np.zeros(n)
                np.maximum.at(longest, dv[rep], runs[seg[rep]].astype(np.float64))
                out["longest_repeat_ratio"] = np.divide(np.where(longest > 0, longest + 3, 0), lens,
                                                        out=np.zeros(n), where=lens > 0)
            if k == 2:
                # runs of equal keys: count x characters of each repeated 2-gram, max per document
                counts = np.diff(np.append(starts_idx, order.size))
                gram_chars = wl[valid[first]] + wl[valid[first] + 1]
                share = np.where(counts >= 2, counts * gram_chars, 0).astype(np.float64)
                top = np.zeros(n)
                np.maximum.at(top, ds[run_start], share)
                out["top_2gram_char_frac"] = np.divide(top, doc_chars, out=np.zeros(n), where=doc_chars > 0)
    return out


@scorer("repetition", "1", ALL, {
    "dup_line_frac": Feature("(non-empty lines - distinct lines) / non-empty lines", "high"),
    "dup_2gram_frac": Feature("(word 2-grams - distinct word 2-grams) / word 2-grams", "high"),
    "dup_3gram_frac": Feature("(word 3-grams - distinct) / word 3-grams", "high"),
    "dup_4gram_frac": Feature("(word 4-grams - distinct) / word 4-grams", "high"),
    "top_2gram_char_frac": Feature("largest count x characters of a repeated word 2-gram / word characters "
                                   "(0 when no 2-gram repeats)", "high"),
    "longest_repeat_ratio": Feature("(longest run of consecutive word 4-grams that repeat an earlier one + 3) / "
                                    "words: the longest repeated word sequence (>= 4 words), as a share",
                                    "high"),
})
def _repetition(b: Batch, role: str):
    lines = b.lines(role)
    dl = np.fromiter(((len(x) - len(set(x))) / len(x) if len(x) > 1 else 0.0 for x in lines),
                     dtype=np.float64, count=b.n)
    return {"dup_line_frac": dl, **_ngram_stats(b.words(role))}
