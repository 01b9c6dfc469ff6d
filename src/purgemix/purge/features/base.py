"""The scorer registry, the shared per-batch views and the runners that write features into records.

Every scorer is a small registered unit (``Scorer``) with a name, a version and, for each feature
it writes, a formula and a direction (``high`` = larger values are more suspicious, ``low`` =
smaller values are, ``none`` = descriptive). Scorers work on a whole batch at once (``Batch``
caches the per-role views they share), so the per-record Python work is a handful of C-level
string calls. The scorers themselves live one group per module next to this one; this module holds
what they all share and knows none of them.

Features are named ``<role>.<feature>`` (roles: ``instruction``, ``input``, ``response``) or
``pair.<feature>`` for instruction-response features, and stored in ``record["scores"]`` as
``purge.<role>.<feature>``. Language codes are the one non-numeric feature (``*.lang``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ...core.record import Record, input_of, instruction_of, response_of
from .. import PREFIX

ROLES = ("instruction", "input", "response")
ALL = ROLES


# --- the registry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Feature:
    formula: str
    direction: str = "high"  # high | low | none
    kind: str = "float"  # float | int | flag | category


@dataclass
class Scorer:
    name: str
    version: str
    roles: tuple[str, ...]
    features: dict[str, Feature]
    fn: Callable[["Batch", str], dict[str, np.ndarray | list]]
    doc: str = ""

    def qualified(self) -> list[str]:
        return [f"{r}.{f}" for r in self.roles for f in self.features]


# filled by the scorer modules as the package imports them, in the order of the columns they write
SCORERS: dict[str, Scorer] = {}


def scorer(name: str, version: str, roles: Sequence[str], features: dict[str, Feature], doc: str = ""):
    def deco(fn):
        if name in SCORERS:
            raise ValueError(f"scorer '{name}' registered twice")
        SCORERS[name] = Scorer(name, version, tuple(roles), features, fn, doc or (fn.__doc__ or "").strip())
        return fn

    return deco


def feature_catalog(names: Sequence[str] | None = None) -> dict[str, tuple[Scorer, Feature]]:
    """``role.feature`` -> (scorer, feature) for the chosen scorers (default: all)."""
    out = {}
    for s in SCORERS.values():
        if names is not None and s.name not in names:
            continue
        for r in s.roles:
            for f, spec in s.features.items():
                out[f"{r}.{f}"] = (s, spec)
    return out


# features a caller may need alone for every record (the dedup's keep-by runs before the scorers): the
# same function as in their scorer, registered by its module, without computing the rest of the scorer
ALONE: dict[str, Callable[[list[str]], np.ndarray]] = {}


# --- shared per-batch views -------------------------------------------------------------------

_WORD = re.compile(r"\w+")

ROLE_TEXT = {"instruction": instruction_of, "input": input_of, "response": response_of}  # role -> its text


class Batch:
    """Per-role texts of a batch of records and lazily computed views shared by scorers."""

    def __init__(self, records: Sequence[Record] | None = None, texts: dict[str, list[str]] | None = None,
                 tokenizer: str = "regex"):
        if texts is None:
            assert records is not None
            texts = {role: [text_of(r) for r in records] for role, text_of in ROLE_TEXT.items()}
        self.texts = texts
        self.n = len(texts["response"])
        self.tokenizer = tokenizer
        self._cache: dict = {}

    def cached(self, key, fn):
        if key not in self._cache:
            self._cache[key] = fn()
        return self._cache[key]

    def lower(self, role: str) -> list[str]:
        return self.cached(("lower", role), lambda: [t.lower() for t in self.texts[role]])

    def words(self, role: str) -> list[list[str]]:
        """Lower-cased ``\\w+`` tokens (used for n-grams, stopwords, overlap)."""
        return self.cached(("words", role), lambda: [_WORD.findall(t) for t in self.lower(role)])

    def lines(self, role: str) -> list[list[str]]:
        return self.cached(("lines", role), lambda: [[s for ln in t.split("\n") if (s := ln.strip())]
                                                     for t in self.texts[role]])

    def charclass(self, role: str) -> dict[str, np.ndarray]:
        return self.cached(("cc", role), lambda: _char_classes(self.texts[role]))


# --- character classes, vectorised over the whole batch ---------------------------------------

_ALPHA, _DIGIT, _UPPER, _SPACE, _ALNUM = 1, 2, 4, 8, 16


@functools.lru_cache(maxsize=1)
def _class_table() -> np.ndarray:
    table = np.zeros(65536, dtype=np.uint8)
    for cp in range(65536):
        c = chr(cp)
        v = 0
        if c.isalpha():
            v |= _ALPHA
        if c.isdigit():
            v |= _DIGIT
        if c.isupper():
            v |= _UPPER
        if c.isspace():
            v |= _SPACE
        if c.isalnum():
            v |= _ALNUM
        table[cp] = v
    table[0xD800:0xE000] = 0
    return table


_BITS = (np.arange(32)[:, None] & np.array([_ALPHA, _DIGIT, _UPPER, _SPACE, _ALNUM])[None, :] > 0).astype(np.int64)


def _char_classes(texts: list[str]) -> dict[str, np.ndarray]:
    """Characters of each class per text: every character's class bits from a table, then one ``bincount``
    of (text, bits) pairs, and the counts of the 32 bit patterns summed per class (2x faster than a prefix
    sum per class)."""
    n = len(texts)
    lens = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    flags = _class_table()[np.minimum(cps, 65535)]
    flags[cps > 65535] = 0  # emoji and other astral characters count as special
    pairs = np.repeat(np.arange(n, dtype=np.int64) * 32, lens) + flags
    per = np.bincount(pairs, minlength=n * 32).reshape(n, 32) @ _BITS
    return {"chars": lens, "alpha": per[:, 0], "digit": per[:, 1], "upper": per[:, 2], "space": per[:, 3],
            "alnum": per[:, 4]}


# --- helpers several scorers use --------------------------------------------------------------


def safe_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` element-wise, 0 where ``b`` is 0."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


def count_hits(pattern: re.Pattern, texts: list[str], lower: list[str] | None = None,
               hints: tuple[str, ...] = ()) -> np.ndarray:
    """Hits of ``pattern``; with ``hints`` only texts whose lower-cased form contains one of them are
    searched (a cheap pre-filter: every match of the pattern contains a hint)."""
    search = pattern.search
    if hints and lower is not None:
        # plain substring tests (C-level, no regex machinery): about twice as fast as one alternation
        return np.fromiter((len(pattern.findall(t)) if any(map(lo.__contains__, hints)) and search(t) else 0
                            for t, lo in zip(texts, lower)), dtype=np.int64, count=len(texts))
    return np.fromiter((len(pattern.findall(t)) if t and search(t) else 0 for t in texts), dtype=np.int64,
                       count=len(texts))


# --- running the scorers ----------------------------------------------------------------------


def feature_column(records: Sequence[Record], qualified: str, tokenizer: str = "regex") -> np.ndarray | list:
    """One ``role.feature`` column of a batch of records: computed alone from that role's texts when it can
    be, else by its scorer for that role only."""
    role, _, name = qualified.partition(".")
    if name in ALONE and role in ROLE_TEXT:
        return ALONE[name]([ROLE_TEXT[role](r) for r in records])
    catalog = feature_catalog()
    if qualified not in catalog:
        raise KeyError(qualified)
    return catalog[qualified][0].fn(Batch(records, tokenizer=tokenizer), role)[name]


def score_batch(batch: Batch, scorers: Sequence[str] | None = None) -> dict[str, np.ndarray | list]:
    """``role.feature`` -> column for every feature of the chosen scorers (default: every registered one,
    in the order they registered)."""
    out: dict[str, np.ndarray | list] = {}
    for name in scorers or tuple(SCORERS):
        s = SCORERS[name]
        for role in s.roles:
            cols = s.fn(batch, role)
            for f in s.features:
                out[f"{role}.{f}"] = cols[f]
    return out


def score_records(records: list[Record], scorers: Sequence[str] | None = None, tokenizer: str = "regex",
                  prefix: str = PREFIX) -> None:
    """Write every feature into ``record["scores"]`` (in place), as ``purge-scores`` does."""
    if records:
        write_scores(records, score_batch(Batch(records, tokenizer=tokenizer), scorers), prefix)


def write_scores(records: list[Record], cols: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any] | None:
    """Write the features into each record's ``scores`` (floats rounded to 4 decimals, NaN as None). Returns
    the same values by column (``Result.columns``) when the records had no scores before, else None."""
    keys, values, stored = [], [], {}
    for k, col in cols.items():
        keys.append(prefix + k)
        if isinstance(col, list):
            values.append(col)
            stored[prefix + k] = col
            continue
        arr = np.asarray(col)
        if arr.dtype.kind in "iub":
            values.append(arr.tolist())
            stored[prefix + k] = arr
        else:
            arr = np.round(arr.astype(np.float64), 4)
            values.append([None if v != v else v for v in arr.tolist()])
            stored[prefix + k] = arr
    fresh = True
    for r, row in zip(records, zip(*values)):
        s = r.get("scores")
        if s is None:
            s = r["scores"] = {}
        elif s:
            fresh = False
        s.update(zip(keys, row))
    return stored if fresh and len(set(keys)) == len(keys) else None
