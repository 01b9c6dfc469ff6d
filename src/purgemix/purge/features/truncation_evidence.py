"""Truncation evidence: ``end_evidence``, a likelihood ratio fitted to the pool, and ``columns``, the
truncation columns of a batch (the structural flags, the evidence, and the flags it overrules).

A pool is the batch of records scored together, one shard of one input file. A cut falls at a random
place in a text, so the word it leaves last is distributed like the words at random positions (a cut
at a word boundary) or like the prefixes of those words (a cut in the middle of a word). A complete
answer ends on a word distributed like the words that end sentences and lines in the pool. The log
ratio of the two,

    log P(last word, previous word | a complete ending) / P(... | a random cut),

is smoothed (bigram -> word -> the word's last two letters -> the pool rate) and left out the
response's own ending, plus the pool-fitted log odds of how long the last sentence is against the
sentences before it (a cut leaves part of a sentence). An answer that ends on an enumeration of short
items ends on an item, so the word may instead be one that ends the items of the pool's enumerations
("..., Dune, Star Wars"). It is added to the log of how often answers of the same shape (prose,
multi-line prose, list, long or short single line) end without punctuation in the pool: in a pool of
human answers that often stop without a full stop, an open ending costs little; in a pool that almost
always ends with punctuation, it is evidence in itself. Those rates leave out the answers the
structural checks (``truncation_flags``) judge cut and, as a weight, the cuts they miss
(``caught_share``: how many random cuts of the pool's own answers the checks catch). The result is the
log Bayes factor "complete" against "cut here" of an open-ended answer (NaN when the answer ends
closed, is code, a letter closing or shorter than four words): strongly negative values mean the
answer stops on words that the pool almost never ends on.

Separate from the flags because it is fitted: it reads the whole pool at once.
"""

from __future__ import annotations

import bisect
import math
import re
import zlib
from collections import Counter
from itertools import chain
from typing import Sequence

import numpy as np

from .truncation_flags import LIST_ITEM, MIN_WORDS, NO_ASK, TERMINAL, WORD, Asked, asked, detailed_flags

# a sentence end or a line end: the text before each one ends a sentence, a line or a list item
_ENDING = re.compile(r"[.!?]+[\"')\]*]*(?=\s|$)|[ \t]*\n")


def _endings(lower: str) -> list[tuple[str, str]]:
    """(previous word, last word) before every sentence or line end of a lower-cased text."""
    out = []
    segs = _ENDING.split(lower)
    for seg in segs[:-1]:
        ws = WORD.findall(seg[-40:])
        if ws:
            out.append((ws[-2] if len(ws) > 1 else "", ws[-1]))
    return out


OPEN_WEIGHT = 0.5  # the last word of an answer without final punctuation counts as half an ending
SMOOTH = 3.0  # pseudo-counts of the backoff estimate
LOCAL = 0.5  # weight of the answer's own words and its prompt's in the word and fragment probabilities
UNSEEN = 0.05  # pseudo-count of a word the pool has never seen (a fragment is judged by its completions)
SHAPES = ("prose", "prose-lines", "list", "long", "short", "code")
FINE_PRIOR = 4.0  # pseudo-count of the coarse shape's open rate in a fine shape's rate
SOFT_LIMIT = -1.5  # a last-word check (function word, fragment ...) is overruled at or above this evidence
SOFT_MIN_POOL = 100  # ... in a pool of at least this many answers (a smaller one is too small to judge)
CUT_SAMPLE = 600  # answers cut at random to measure how many cuts the structural checks catch
CUT_SAMPLE_MIN = 50  # ... at least this many (a smaller pool keeps the explained cuts only out of its rates)
MISSED_CAP = 0.8  # at most this share of a shape's open answers is taken for missed cuts


# a sentence end that is no initial ("George W. Bush") nor abbreviation ("Dr. Simone Whitmore")
_FULL_SENTENCE_END = re.compile(r"[.!?](?<!\b[A-Z]\.)(?<!\b(?i:mr|ms|dr|st|jr|sr|vs|mt|ft|no|co)\.)"
                                r"(?<!\b(?i:mrs|etc|inc|ltd|vol)\.)(?<!\b(?i:approx)\.)(?=\s|$)")


_CODE_MARK = re.compile(r"[=;{}<>]|\(\)|//|\w\.\w+\(")


def _code_shaped(texts: Sequence[str], code_task: Sequence[bool], codeish: np.ndarray) -> np.ndarray:
    """The answers whose shape is ``code``: code by ``detailed_flags`` (a fence, code lines), or answers to a code task
    with code marks ("arr.sort() // Java"); an answer to a prompt that only mentions a "program" is text."""
    return np.array([bool(k) or (bool(c) and _CODE_MARK.search(t) is not None)
                     for t, c, k in zip(texts, code_task, codeish.tolist())], dtype=bool)


def _items(line: str) -> list[str]:
    """The items of an enumeration line: separated by commas, the last ones also by "and" / "or"."""
    segs = line.split(", ")
    tail = segs.pop()
    if " and " in tail or " or " in tail:
        segs.extend(p for p in tail.replace(" or ", " and ").split(" and ") if p)
    else:
        segs.append(tail)
    return segs


def _enum_tail(t: str) -> bool:
    """The answer ends on an enumeration of short items: its last line holds at least three items separated by
    commas (the last ones also by "and" / "or"), the earlier ones of at most three words (median), the last of at
    most four."""
    line = t.rstrip().rsplit("\n", 1)[-1]
    if line.count(", ") < 2:
        return False
    items = _items(line)
    last = items[-1].split()
    if len(items) < 3 or len(last) - (last[:1] in (["and"], ["or"])) > 4:
        return False
    lens = sorted(s.count(" ") for s in items[:-1])
    return lens[len(lens) // 2] <= 2


def _item_ends(lower: Sequence[str]) -> Counter:
    """Counts of the last word of every item (at most five words) of the pool's enumeration lines (lines with at
    least two commas): the words that end an item of a list, as opposed to a sentence."""
    c: Counter = Counter()
    for lo in lower:
        if lo.count(", ") < 2:
            continue
        for line in lo.split("\n"):
            if line.count(", ") < 2:
                continue
            for seg in _items(line):
                if seg.count(" ") <= 4:
                    w = seg.rsplit(None, 1)[-1] if seg.strip() else ""
                    if not w.isalnum():
                        ws = WORD.findall(w)
                        w = ws[-1] if ws else ""
                    if w:
                        c[w] += 1
    return c


def shape(text: str, codeish: bool = False, fine: bool = False) -> str:
    """The answer's shape, judged without its final punctuation. ``fine`` adds the writer's habit: for
    prose, how many sentences end before the last one (``prose/1``, ``prose/2``, ``prose/3`` for three or
    more); for multi-line answers, whether the earlier lines end with punctuation (``list/closed``,
    ``list/mixed``, ``list/open``; header lines that end on a colon do not count)."""
    t = text.rstrip().rstrip(".!?)]}\"'\u201d\u2019>`*;|% \t\n")
    if codeish or "```" in t:
        return "code"
    last_line = t.rsplit("\n", 1)[-1]
    multi = "\n" in t
    ends = len(_FULL_SENTENCE_END.findall(t))
    if ends and not (multi and LIST_ITEM.match(last_line)):
        s = "prose-lines" if multi else "prose"
    elif multi:
        s = "list"
    else:
        s = "long" if t.count(" ") >= 11 else "short"
        return f"{s}/{'enum' if t.count(',') >= 2 else 'plain'}" if fine else s
    if not fine:
        return s
    if s == "prose":
        return f"prose/{min(ends, 3)}"
    marks = [ln[-1] in TERMINAL for ln in (x.rstrip() for x in t.split("\n")[:-1]) if ln and ln[-1] != ":"]
    return f"{s}/{'closed' if marks and all(marks) else 'mixed' if any(marks) else 'open'}"


_AFTER_END = re.compile(r"[\"')\]*]*(?:[.!?]+(?:\s|$)|[ \t]*(?:\n|$))")
_AFTER_MARK = re.compile(r"[\"')\]*]*[,;:]")
ECHO_SAMPLE = 4000  # answers sampled to fit the prompt-echo odds


def _prompt_match(w: str, prompt: str) -> int:
    """Where the word ``w`` stands in the (lower-cased) prompt: 3 before a sentence or line end, 2 before a
    comma, semicolon or colon, 1 elsewhere, 0 absent (as a whole word)."""
    if not w or not prompt:
        return 0
    best = 0
    n = len(w)
    k = prompt.find(w)
    while k >= 0:
        e = k + n
        if (k == 0 or not (prompt[k - 1].isalnum() or prompt[k - 1] == "_")) and \
                (e >= len(prompt) or not (prompt[e].isalnum() or prompt[e] == "_")):
            if _AFTER_END.match(prompt, e):
                return 3
            best = max(best, 2 if _AFTER_MARK.match(prompt, e) else 1)
        k = prompt.find(w, k + 1)
    return best


def _prompt_echo_odds(words: Sequence[list[str]], prompts: Sequence[str]) -> np.ndarray:
    """Log odds "complete" against "cut" of each ``_prompt_match`` class, fitted to the pool: the classes
    of the answers' last words (complete answers, most of the pool) against those of the word a random
    cut would leave in the same answers (a word at a random position, or half the time a prefix of it).
    Answers to classification and extraction prompts end on the item that ends the prompt's list or
    sentence far more often than a random word of them does."""
    n = len(words)
    idx = range(n) if n <= ECHO_SAMPLE else np.linspace(0, n - 1, ECHO_SAMPLE).astype(np.int64).tolist()
    done = np.ones(4)
    cut = np.ones(4)
    for i in idx:
        ws = words[i]
        if len(ws) < 2 or not prompts[i]:
            continue
        done[_prompt_match(ws[-1], prompts[i])] += 1
        h = zlib.crc32(ws[-1].encode()) + i  # deterministic pseudo-random position
        w = ws[h % (len(ws) - 1)]
        if h & 1 and len(w) > 1:
            w = w[: 1 + (h >> 1) % (len(w) - 1)]
        cut[_prompt_match(w, prompts[i])] += 1
    return np.log(done / done.sum()) - np.log(cut / cut.sum())


# a sentence end or a line break: the segments whose lengths the last one is compared with
_SEGMENT_END = re.compile(r"(?<=[a-z0-9)\"'\u201d%])[.!?]+[\"')\]\u201d\u2019]*\s+|\s*\n\s*")
RATIO_EDGES = (0.25, 0.5, 0.75, 1.0, 1.5)  # bins of the last sentence's length against the earlier ones'
RATIO_SAMPLE = 1000  # answers sampled to fit the odds of those bins
RATIO_TAIL = 600  # characters read from the end of an answer (the last sentences)


def _last_ratio(t: str) -> int:
    """The bin (0 .. len(RATIO_EDGES)) of the last sentence's (or line's) length in words against the median
    length of the (at most five) sentences or lines before it; -1 when there is none before it."""
    t = t.rstrip()
    segs = [s for s in _SEGMENT_END.split(t[-RATIO_TAIL:]) if s]
    if len(t) > RATIO_TAIL:
        segs = segs[1:]  # the first one may be cut by the slice
    if len(segs) < 2:
        return -1
    prev = sorted(len(s.split()) for s in segs[-6:-1])
    return bisect.bisect_right(RATIO_EDGES, len(segs[-1].split()) / max(prev[len(prev) // 2], 1))


def _ratio_odds(texts: Sequence[str], keep: np.ndarray) -> np.ndarray:
    """Log odds "complete" against "cut" of each ``_last_ratio`` bin, fitted to the pool: the bins of the answers'
    own last sentences (without their final punctuation) against those of what a cut at a pseudo-random character
    leaves. A cut stops a sentence part way, so its last sentence is shorter than the writer's others."""
    n = len(texts)
    idx = range(n) if n <= RATIO_SAMPLE else np.linspace(0, n - 1, RATIO_SAMPLE).astype(np.int64).tolist()
    done = np.ones(len(RATIO_EDGES) + 1)
    cut = np.ones(len(RATIO_EDGES) + 1)
    for i in idx:
        t = texts[i].rstrip()
        if not keep[i] or len(t) < 20:
            continue
        b = _last_ratio(t.rstrip(".!?)]}\"'\u201d\u2019>`*;|%"))
        if b >= 0:
            done[b] += 1
        b = _last_ratio(t[: 1 + zlib.crc32(t.encode()) % (len(t) - 1)])
        if b >= 0:
            cut[b] += 1
    odds = np.log(done / done.sum()) - np.log(cut / cut.sum())
    # a cut only shortens a sentence: a last sentence of three quarters of the others' length or more is no
    # evidence of one (in a pool of uniform answers such lengths may be rare among the complete ones)
    odds[3:] = np.maximum(odds[3:], 0.0)
    return odds


def _hash_pairs(words: list[list[str]]) -> np.ndarray:
    """64-bit keys of every adjacent word pair inside each response."""
    flat = list(chain.from_iterable(words))
    if len(flat) < 2:
        return np.zeros(0, dtype=np.uint64)
    h = np.fromiter(map(hash, flat), dtype=np.int64, count=len(flat)).view(np.uint64)
    lens = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    first = np.cumsum(lens) - lens  # the first word of each response cannot close a pair
    ok = np.ones(len(flat), dtype=bool)
    ok[first[lens > 0]] = False
    with np.errstate(over="ignore"):
        keys = h[:-1] * np.uint64(0x9E3779B97F4A7C15) ^ h[1:] * np.uint64(0xC2B2AE3D27D4EB4F)
    return keys[ok[1:]]


def _pair_key(a: str, b: str) -> int:
    with np.errstate(over="ignore"):
        return int(np.uint64(np.int64(hash(a)).view(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
                   ^ np.uint64(np.int64(hash(b)).view(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)))


def _shape_ids(fine: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Integer ids of each answer's fine shape and of its coarse shape."""
    fi: dict[str, int] = {}
    ci: dict[str, int] = {}
    f = np.fromiter((fi.setdefault(s, len(fi)) for s in fine), dtype=np.int64, count=len(fine))
    coarse_of = np.array([ci.setdefault(s.split("/")[0], len(ci)) for s in fi], dtype=np.int64)
    return f, coarse_of[f] if len(f) else f


def _log_open_rates(fine_id: np.ndarray, coarse_id: np.ndarray, opened: np.ndarray, weight: np.ndarray
                     ) -> np.ndarray:
    """log of the share of open endings among the answers of each answer's fine shape, each answer counted
    with its ``weight`` (its probability of being complete), backed off to its coarse shape (``FINE_PRIOR``
    pseudo-counts, the coarse rate with add-one smoothing); each answer is left out of its own rate."""
    k = weight
    o = weight * opened
    tot_f = np.bincount(fine_id, k)[fine_id] - k
    opn_f = np.bincount(fine_id, o)[fine_id] - o
    tot_c = np.bincount(coarse_id, k)[coarse_id] - k
    opn_c = np.bincount(coarse_id, o)[coarse_id] - o
    rc = (opn_c + 1.0) / (tot_c + 2.0)
    return np.log((opn_f + FINE_PRIOR * rc) / (tot_f + FINE_PRIOR))


def _less_missed_cuts(fine_id: np.ndarray, opened: np.ndarray, keep: np.ndarray, ratio: float) -> np.ndarray:
    """Weights of the answers in the open rates: 0 for the explained cuts, and for the other open answers of a
    shape 1 - missed / open, where missed = ratio * (explained cuts of the shape), at most MISSED_CAP of them."""
    k = np.bincount(fine_id, keep & opened)
    x = np.bincount(fine_id, ~keep)
    share = np.minimum(ratio * x / np.maximum(k, 1.0), MISSED_CAP)
    w = keep.astype(np.float64)
    sel = keep & opened
    w[sel] -= share[fine_id[sel]]
    return w


def caught_share(texts: Sequence[str], code_task: Sequence[bool], vocab: dict[str, int],
                 asks: Sequence[Asked] | None = None) -> float | None:
    """The share of random cuts that the structural checks (``detailed_flags``) catch in this pool: answers of the pool
    cut at a pseudo-random character (half of the time moved back to the word boundary before it) and left
    open. None when the pool has too few answers to cut."""
    long_ = [i for i, t in enumerate(texts) if t.count(" ") >= 3 * MIN_WORDS]
    if len(long_) < CUT_SAMPLE_MIN:
        return None
    step = -(-len(long_) // CUT_SAMPLE)  # at most CUT_SAMPLE of them, spread over the pool
    hit = tried = 0
    for i in long_[::step]:
        t = texts[i].rstrip()
        h = zlib.crc32(t.encode())
        start = len(" ".join(t.split(" ", MIN_WORDS)[:MIN_WORDS]))
        cut = start + h % max(1, len(t) - start)
        if h & (1 << 20):
            cut = max(t.rfind(" ", 0, cut), start)
        f = detailed_flags(t[:cut].rstrip(), code_task[i], vocab, asks[i] if asks is not None else NO_ASK)
        if not f[0] or not f[6] and not f[4]:
            continue  # left closed, or code: no open ending to judge
        tried += 1
        hit += f[4]
    return hit / tried if tried >= CUT_SAMPLE_MIN else None


def end_evidence(texts: Sequence[str], lower: Sequence[str], words: Sequence[list[str]],
                 candidate: np.ndarray, codeish: np.ndarray,
                 prompt_words: Sequence[list[str]] | None = None, vocab: dict[str, int] | None = None,
                 explained: np.ndarray | None = None, prompts: Sequence[str] | None = None,
                 caught: float | None = None) -> np.ndarray:
    """Log Bayes factor "a complete ending" against "cut here" for every candidate (open, prose or list)
    response of the batch; NaN for the others. ``words``: lower-cased ``\\w+`` words of each response;
    ``prompt_words``: those of its instruction and input (a fragment that starts a word of the prompt is
    a cut word); ``vocab``: word counts over the whole batch, prompts included, without each response's
    last word (a word the prompts use is a word, not a fragment, even if no answer uses it); ``explained``:
    answers already judged cut by the structural checks, left out of the open-ending rates (they would
    make an open ending look usual in the very shapes where cuts are common)."""
    n = len(texts)
    out = np.full(n, np.nan)
    cand = np.nonzero(candidate)[0]
    if cand.size == 0:
        return out
    # how often answers of each shape end open in this pool: the fine shape (the writer's habit) backs off
    # to the coarse one; the answer judged is left out of its own rate
    fine = [shape(t, bool(c), True) if t.strip() else "" for t, c in zip(texts, codeish)]
    opened = np.array([bool(t) and t[-1] not in TERMINAL for t in (x.rstrip() for x in texts)], dtype=bool)
    keep = np.ones(n, dtype=bool) if explained is None else ~np.asarray(explained, dtype=bool)
    fine_id, coarse_id = _shape_ids(fine)

    # word counts at any position and before an ending (sentence or line end)
    anyc: Counter = Counter(chain.from_iterable(words))
    endc: Counter = Counter()
    pend: Counter = Counter()
    for lo, ws, o in zip(lower, words, opened.tolist()):
        pairs = _endings(lo)
        endc.update(p[1] for p in pairs)
        pend.update(p for p in pairs if p[0])
        if o and ws:
            endc[ws[-1]] += OPEN_WEIGHT
            if len(ws) > 1:
                pend[(ws[-2], ws[-1])] += OPEN_WEIGHT
    itemc = _item_ends(lower)
    n_any = sum(anyc.values())
    n_end = sum(endc.values())
    if not n_any or not n_end:
        return out
    base = n_end / n_any
    base_item = (sum(itemc.values()) or 1) / n_any
    suf_any: Counter = Counter()
    suf_end: Counter = Counter()
    for w, c in anyc.items():
        suf_any[w[-2:]] += c
    for w, c in endc.items():
        suf_end[w[-2:]] += c
    known = sorted(anyc)
    cum = np.concatenate([[0.0], np.cumsum(np.fromiter((anyc[w] for w in known), dtype=np.float64,
                                                       count=len(known)))])
    n_mid = float(sum(c * (len(w) - 1) for w, c in anyc.items() if len(w) > 1)) or 1.0

    # adjacent pairs: counted only for the candidates' last two words
    queries = {}
    for i in cand.tolist():
        ws = words[i]
        if len(ws) >= 2:
            queries[i] = _pair_key(ws[-2], ws[-1])
    pair_count: dict[int, int] = {}
    if queries:
        keys = _hash_pairs(list(words))
        q = np.unique(np.fromiter(queries.values(), dtype=np.uint64, count=len(queries)))
        hit = keys[np.isin(keys, q)]
        u, c = np.unique(hit, return_counts=True)
        pair_count = dict(zip(u.tolist(), c.tolist()))

    echo = _prompt_echo_odds(words, prompts) if prompts is not None else None
    ratio = _ratio_odds(texts, keep)
    words_term = np.zeros(n)
    for i in cand.tolist():
        ws = words[i]
        if len(ws) < 1:
            words_term[i] = np.nan
            continue
        w = ws[-1]
        own = OPEN_WEIGHT if opened[i] else 0.0
        se, sa = suf_end.get(w[-2:], 0), suf_any.get(w[-2:], 0)
        p = (se + 5 * base) / (sa + 5)
        e, c = max(endc.get(w, 0) - own, 0.0), max(anyc.get(w, 0) - 1, 0)
        p = (e + SMOOTH * p) / (c + SMOOTH)  # P(an ending follows | w)
        if len(ws) >= 2:
            e2 = max(pend.get((ws[-2], w), 0) - own, 0.0)
            c2 = max(pair_count.get(queries.get(i, -1), 0) - 1, 0)
            p = (e2 + SMOOTH * p) / (c2 + SMOOTH)  # P(an ending follows | previous word, w)
        if _enum_tail(texts[i]):
            # an enumeration ends on an item: the word may be one that ends the pool's list items ("..., Star
            # Wars", "New Zealand") rather than its sentences (the answer's own last item left out)
            pi = (max(itemc.get(w, 0) - 1, 0) + SMOOTH * base_item) / (c + SMOOTH)
            p = max(p / base, pi / base_item) * base
        p_word = (max(c, vocab.get(w, 0) if vocab is not None else 0) + UNSEEN) / n_any
        lo_ = bisect.bisect_right(known, w)
        hi_ = bisect.bisect_left(known, w + "\U0010ffff")
        completions = cum[hi_] - cum[lo_]
        p_mid = completions / n_mid
        # mixed with the answer's own words and its prompt's: a cut inside a word leaves a prefix of a word
        # that this answer uses (or copies from its prompt) far more often than the pool at large does
        local = ws[:-1] + (prompt_words[i] if prompt_words is not None else [])
        if local:
            joined = " " + " ".join(local) + " "
            same = joined.count(" " + w + " ")
            longer = joined.count(" " + w) - same
            mid_pos = len(joined) - 2 * len(local) - 1 or 1
            p_word = (1 - LOCAL) * p_word + LOCAL * same / len(local)
            p_mid = (1 - LOCAL) * p_mid + LOCAL * longer / mid_pos
        p_complete = p / base * p_word  # P(the last word is w | an ending)
        p_cut = 0.5 * p_word + 0.5 * p_mid  # half of the cuts fall between words, half inside one
        words_term[i] = math.log(p_complete / p_cut)
        if echo is not None:
            words_term[i] += echo[_prompt_match(w, prompts[i])]
        b = _last_ratio(texts[i])
        if b >= 0:
            words_term[i] += ratio[b]  # a last sentence much shorter than the writer's others was cut short
    # the open rates are those of complete answers: besides the answers the structural checks explain, the
    # pool holds the cuts they miss, about explained * (1 - caught) / caught of them in each shape; they are
    # taken out of the shape's open answers (as a uniform weight), or the cuts in a pool would make open
    # endings look usual in the very shapes where they are common
    weight = keep.astype(np.float64)
    if caught is not None and 0.0 < caught < 1.0 and explained is not None:
        weight = _less_missed_cuts(fine_id, opened, keep, (1.0 - caught) / caught)
    rate = _log_open_rates(fine_id, coarse_id, opened, weight)
    out[cand] = words_term[cand] + rate[cand]
    return out


def columns(texts: Sequence[str], lower: Sequence[str], words: Sequence[list[str]], code_task: Sequence[bool],
            vocab: dict[str, int], prompt_words: Sequence[list[str]] | None = None,
            prompts: Sequence[str] | None = None, instructions: Sequence[str] | None = None,
            inputs: Sequence[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The truncation columns of a batch: the ``flags`` (an int array, one row per response) and
    ``end_evidence``. A ``truncated`` flag that rests only on the last word or line is dropped when the
    pool's evidence says that answers here do end like this (``end_evidence >= SOFT_LIMIT``: a list of
    song titles that ends on "Let it be", a table whose lines all end on "Stand On"), in a pool of at least
    ``SOFT_MIN_POOL`` answers. ``instructions``, ``inputs``: the prompts as written, for what they ask the answers
    to cover (``asked``)."""
    n = len(texts)
    if instructions is None:
        asks = [NO_ASK] * n
    else:
        asks = [asked(i, c) for i, c in zip(instructions, inputs if inputs is not None else [""] * n)]
    f = np.array([detailed_flags(t, c, vocab, a) for t, c, a in zip(texts, code_task, asks)],
                 dtype=np.int64).reshape(n, 9)
    ev = end_evidence(texts, lower, words, f[:, 6], _code_shaped(texts, code_task, f[:, 8]), prompt_words, vocab,
                      explained=f[:, 4] == 1, prompts=prompts, caught=caught_share(texts, code_task, vocab, asks))
    with np.errstate(invalid="ignore"):
        overruled = (f[:, 7] == 1) & (ev >= SOFT_LIMIT)
    if n >= SOFT_MIN_POOL:
        f[overruled, 4] = 0
    return f[:, :7], ev
