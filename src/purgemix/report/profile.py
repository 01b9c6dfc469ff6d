"""What is in a dataset: counts, sources, length distributions, language mix, exact duplicates,
leading words. Streams the records of a run's ingest stage shard by shard; memory stays flat.

- Lengths (characters, words, tokens) go into fixed-bin streaming histograms (``LengthHist``):
  exact counts below 256, then 32 log-spaced bins per doubling, so quantiles are exact below 256
  and within about 1.1% above; mean, min, max and sums are exact.
- Exact duplicates: one 64-bit hash per record of its normalised content (lowercased, whitespace
  collapsed), plus one of its prompt alone: 16 bytes per record.
- Leading words: the first word of the instruction, lowercased. A cheap stand-in for the leading
  verb (no part-of-speech tagging: "what" and "the" count too).
- Language: fastText lid.176 (``purgemix.text.langid``) on the instruction and on the response.

Partial profiles of shards (``ProfileAcc``) merge, so shards may be profiled in parallel.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..core.record import Record, input_of, instruction_of, response_of, system_prompt

ROLES = ("instruction", "input", "response", "system", "conversation")
METRICS = ("chars", "words", "tokens")
QUANTILES = (0.10, 0.25, 0.50, 0.75, 0.90, 0.99)
LOW_CONFIDENCE = 0.5
_MAX_WORDS = 100_000  # distinct leading words kept per partial (the long tail is pruned)
_LANG_CHARS = 600  # language ID reads the first characters of a text only

ROLE_HELP = {
    "instruction": "the first user turn, without the Alpaca input / Dolly context",
    "input": "the Alpaca input / Dolly context, records that have one",
    "response": "the first assistant turn",
    "system": "the system prompt, records that have one",
    "conversation": "all turns of the record together",
}


class LengthHist:
    """Streaming histogram of non-negative integers with fixed bins (mergeable, O(1) memory)."""

    EXACT = 256
    PER_OCTAVE = 32
    OCTAVES = 40  # up to 256 * 2**40

    def __init__(self) -> None:
        self.exact = np.zeros(self.EXACT, dtype=np.int64)
        self.log = np.zeros(self.PER_OCTAVE * self.OCTAVES, dtype=np.int64)
        self.n = 0
        self.sum = 0
        self.min: int | None = None
        self.max = 0

    def add(self, values: Iterable[int]) -> None:
        v = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=np.int64)
        if not len(v):
            return
        small = v[v < self.EXACT]
        if len(small):
            self.exact += np.bincount(small, minlength=self.EXACT)
        big = v[v >= self.EXACT]
        if len(big):
            idx = np.floor(np.log2(big / self.EXACT) * self.PER_OCTAVE).astype(np.int64)
            self.log += np.bincount(np.clip(idx, 0, len(self.log) - 1), minlength=len(self.log))
        self.n += len(v)
        self.sum += int(v.sum())
        lo, hi = int(v.min()), int(v.max())
        self.min = lo if self.min is None else min(self.min, lo)
        self.max = max(self.max, hi)

    def merge(self, other: "LengthHist") -> None:
        self.exact += other.exact
        self.log += other.log
        self.n += other.n
        self.sum += other.sum
        if other.min is not None:
            self.min = other.min if self.min is None else min(self.min, other.min)
        self.max = max(self.max, other.max)

    # -- reading -----------------------------------------------------------------------------------

    def _points(self) -> tuple[np.ndarray, np.ndarray]:
        """(representative value, count) of every non-empty bin, ascending."""
        i = np.flatnonzero(self.exact)
        j = np.flatnonzero(self.log)
        mids = self.EXACT * 2.0 ** ((j + 0.5) / self.PER_OCTAVE)
        values = np.concatenate([i.astype(np.float64), mids])
        counts = np.concatenate([self.exact[i], self.log[j]])
        return values, counts

    def quantile(self, q: float) -> float:
        if self.n == 0:
            return 0.0
        values, counts = self._points()
        rank = q * (self.n - 1)
        pos = int(np.searchsorted(np.cumsum(counts), rank, side="right"))
        value = float(values[min(pos, len(values) - 1)])
        return float(min(max(value, self.min or 0), self.max))

    @property
    def mean(self) -> float:
        return self.sum / self.n if self.n else 0.0

    def histogram(self, bins: int = 30) -> list[dict[str, Any]]:
        """Display bins: one for zero, then ``bins`` log-spaced bins from the minimum to the maximum."""
        if self.n == 0:
            return []
        values, counts = self._points()
        out: list[dict[str, Any]] = []
        zero = int(self.exact[0])
        if zero:
            out.append({"lo": 0, "hi": 0, "count": zero})
        lo = max(1, self.min or 1)
        if self.max < 1:
            return out
        hi = self.max + 1
        if hi / lo < bins:  # narrow range: integer-wide bins
            edges = np.unique(np.round(np.linspace(lo, hi, min(bins, hi - lo) + 1)).astype(np.int64))
        else:
            edges = np.unique(np.round(np.geomspace(lo, hi, bins + 1)).astype(np.int64))
        pos = values > 0
        which = np.clip(np.searchsorted(edges, values[pos], side="right") - 1, 0, len(edges) - 2)
        per_bin = np.bincount(which, weights=counts[pos], minlength=len(edges) - 1).astype(np.int64)
        for k in range(len(edges) - 1):
            out.append({"lo": int(edges[k]), "hi": int(edges[k + 1]) - 1, "count": int(per_bin[k])})
        return out

    def summary(self, bins: int = 30) -> dict[str, Any]:
        s: dict[str, Any] = {"n": self.n, "sum": self.sum, "mean": round(self.mean, 2),
                             "min": self.min or 0, "max": self.max}
        for q in QUANTILES:
            s[f"p{int(round(q * 100))}"] = round(self.quantile(q), 1)
        s["histogram"] = self.histogram(bins)
        return s


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                          "little", signed=True)


def normalise(text: str) -> str:
    return " ".join(text.lower().split())


_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


def leading_word(instruction: str) -> str:
    """The first word of the instruction, lowercased; ``""`` when it has no letters."""
    m = _WORD.search(instruction[:200])
    return m.group(0).lower() if m else ""


@dataclass
class ProfileAcc:
    """A mergeable partial profile."""

    by: str | None = None
    records: int = 0
    messages: int = 0
    turns: Counter = field(default_factory=Counter)  # non-system messages per record
    sources: Counter = field(default_factory=Counter)
    by_values: Counter = field(default_factory=Counter)
    with_system: int = 0
    with_input: int = 0
    empty_instruction: int = 0
    empty_response: int = 0
    lengths: dict[str, dict[str, LengthHist]] = field(
        default_factory=lambda: {r: {m: LengthHist() for m in METRICS} for r in ROLES})
    languages: dict[str, Counter] = field(default_factory=lambda: {"instruction": Counter(), "response": Counter()})
    low_confidence: Counter = field(default_factory=Counter)
    leading: Counter = field(default_factory=Counter)
    content_hashes: list[np.ndarray] = field(default_factory=list)
    prompt_hashes: list[np.ndarray] = field(default_factory=list)

    def add(self, records: list[Record], count_tokens, detect) -> None:
        n = len(records)
        if not n:
            return
        self.records += n
        instr = [instruction_of(r) for r in records]
        inputs = [input_of(r) for r in records]
        resp = [response_of(r) for r in records]
        systems = [system_prompt(r) for r in records]
        self._add_lengths(records, instr, inputs, count_tokens)
        for r in records:
            msgs = r["messages"]
            self.messages += len(msgs)
            self.turns[sum(1 for m in msgs if m["role"] != "system")] += 1
            self.sources[r.get("source") or "?"] += 1
            if self.by:
                value = r["meta"].get(self.by, r.get(self.by))
                self.by_values[_label(value)] += 1
        self.with_system += sum(1 for t in systems if t)
        self.with_input += sum(1 for t in inputs if t)
        self.empty_instruction += sum(1 for t in instr if not t.strip())
        self.empty_response += sum(1 for t in resp if not t.strip())
        for role, items in (("instruction", instr), ("response", resp)):
            langs, conf = detect([t[:_LANG_CHARS] for t in items])
            self.languages[role].update(langs)
            self.low_confidence[role] += int(((conf < LOW_CONFIDENCE) & (conf > 0)).sum())
        self.leading.update(leading_word(t) for t in instr)
        self._prune()
        self.content_hashes.append(np.fromiter(
            (_hash64("\x1f".join(f"{m['role']}\x1e{normalise(m['content'])}" for m in r["messages"]))
             for r in records), dtype=np.int64, count=n))
        self.prompt_hashes.append(np.fromiter(
            (_hash64(f"{normalise(s)}\x1f{normalise(i)}\x1f{normalise(x)}") for s, i, x in zip(systems, instr, inputs)),
            dtype=np.int64, count=n))

    def _add_lengths(self, records: list[Record], instr: list[str], inputs: list[str], count_tokens) -> None:
        """Every message is measured once; the roles reuse those numbers (the instruction is measured
        apart only when an input was split off its user turn)."""
        texts = [m["content"] for r in records for m in r["messages"]]
        chars, words, tokens = _measure(texts, count_tokens)
        per_msg = {"chars": chars, "words": words, "tokens": tokens}
        starts = np.cumsum([0] + [len(r["messages"]) for r in records])
        resp_at, sys_at, instr_at, instr_apart = [], [], [], []
        for k, r in enumerate(records):
            msgs = r["messages"]
            roles = [m["role"] for m in msgs]
            if "assistant" in roles:
                resp_at.append(starts[k] + roles.index("assistant"))
            if roles and roles[0] == "system" and msgs[0]["content"]:
                sys_at.append(starts[k])
            u = roles.index("user") if "user" in roles else None
            if u is not None and msgs[u]["content"] == instr[k]:
                instr_at.append(starts[k] + u)
            else:
                instr_apart.append(instr[k])
        apart = dict(zip(METRICS, _measure(instr_apart, count_tokens)))
        nonempty_inputs = [t for t in inputs if t]
        measured_inputs = dict(zip(METRICS, _measure(nonempty_inputs, count_tokens)))
        for m in METRICS:
            values = per_msg[m]
            h = self.lengths
            h["conversation"][m].add(np.add.reduceat(values, starts[:-1]))  # every record has a turn
            h["response"][m].add(values[resp_at])
            h["system"][m].add(values[sys_at])
            h["instruction"][m].add(np.concatenate([values[instr_at], apart[m]]))
            h["input"][m].add(measured_inputs[m])
        missing = len(records) - len(resp_at)  # no assistant turn: an empty response
        if missing:
            for m in METRICS:
                self.lengths["response"][m].add(np.zeros(missing, dtype=np.int64))

    def merge(self, other: "ProfileAcc") -> None:
        self.records += other.records
        self.messages += other.messages
        for name in ("turns", "sources", "by_values", "low_confidence", "leading"):
            getattr(self, name).update(getattr(other, name))
        for name in ("with_system", "with_input", "empty_instruction", "empty_response"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for role in ROLES:
            for m in METRICS:
                self.lengths[role][m].merge(other.lengths[role][m])
        for role, c in other.languages.items():
            self.languages[role].update(c)
        self.content_hashes.extend(other.content_hashes)
        self.prompt_hashes.extend(other.prompt_hashes)
        self._prune()

    def _prune(self) -> None:
        """Bound the memory of open-ended counters: keep the most frequent half when too many."""
        for name in ("leading", "by_values"):
            c = getattr(self, name)
            if len(c) > _MAX_WORDS:
                setattr(self, name, Counter(dict(c.most_common(_MAX_WORDS // 2))))

    # -- the report --------------------------------------------------------------------------------

    def result(self, top: int = 30, bins: int = 30) -> dict[str, Any]:
        n = self.records
        share = (lambda k: round(k / n, 4) if n else 0.0)
        turns = {str(k): v for k, v in sorted(self.turns.items())}
        out: dict[str, Any] = {
            "records": n,
            "messages": self.messages,
            "sources": dict(self.sources.most_common()),
            "turns": {
                "per_record": turns,
                "mean": round(sum(k * v for k, v in self.turns.items()) / n, 3) if n else 0.0,
                "multi_turn_share": share(sum(v for k, v in self.turns.items() if k > 2)),
            },
            "counts": {
                "system_prompt": self.with_system,
                "input": self.with_input,
                "empty_instruction": self.empty_instruction,
                "empty_response": self.empty_response,
            },
            "shares": {
                "system_prompt": share(self.with_system),
                "input": share(self.with_input),
                "empty_instruction": share(self.empty_instruction),
                "empty_response": share(self.empty_response),
            },
            "lengths": {
                role: {"records": self.lengths[role]["chars"].n, "what": ROLE_HELP[role],
                       **{m: self.lengths[role][m].summary(bins) for m in METRICS}}
                for role in ROLES
            },
            "languages": {
                role: {
                    "counts": dict(c.most_common()),
                    "low_confidence": self.low_confidence[role],
                    "low_confidence_below": LOW_CONFIDENCE,
                }
                for role, c in self.languages.items()
            },
            "duplicates": {
                "exact_content": _dup_stats(self.content_hashes, n),
                "exact_prompt": _dup_stats(self.prompt_hashes, n),
                "normalisation": "lowercased, whitespace collapsed; content = every turn with its role,"
                                 " prompt = system + instruction + input",
            },
            "leading_words": {
                "top": [[w or "(no word)", k] for w, k in self.leading.most_common(top)],
                "distinct": len(self.leading),
                "method": "first word of the instruction, lowercased (a cheap stand-in for the leading verb)",
            },
        }
        if self.by:
            out["by"] = {"field": self.by, "values": dict(self.by_values.most_common(top))}
            out["by"]["distinct"] = len(self.by_values)
        return out


def _measure(texts: list[str], count_tokens) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Characters, whitespace-separated words and tokens of each text."""
    if not texts:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, empty
    chars = np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))
    words = np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))
    tokens = np.asarray(count_tokens(texts), dtype=np.int64)
    return chars, words, tokens


def _label(value: Any) -> str:
    if value is None:
        return "(missing)"
    s = value if isinstance(value, str) else str(value)
    return s[:80] or "(empty)"


def _dup_stats(chunks: list[np.ndarray], n: int) -> dict[str, Any]:
    if not n:
        return {"unique": 0, "duplicates": 0, "rate": 0.0, "groups": 0, "largest_group": 0}
    hashes = np.concatenate(chunks) if chunks else np.empty(0, np.int64)
    _, counts = np.unique(hashes, return_counts=True)
    unique = len(counts)
    return {
        "unique": int(unique),
        "duplicates": int(n - unique),  # records that repeat an earlier one
        "rate": round((n - unique) / n, 4),
        "groups": int((counts > 1).sum()),  # distinct contents seen more than once
        "largest_group": int(counts.max()) if unique else 0,
    }


# -- shards --------------------------------------------------------------------------------------


def profile_records(batches: Iterable[list[Record]], tokenizer: str = "regex", by: str | None = None,
                    on_batch=None) -> ProfileAcc:
    """Profile record batches in this process (``on_batch(n)`` after each)."""
    from ..text.langid import detect
    from ..text.tokens import tokenizer as make_tokenizer

    acc = ProfileAcc(by=by)
    count = make_tokenizer(tokenizer)
    for records in batches:
        acc.add(records, count, detect)
        if on_batch:
            on_batch(len(records))
    return acc


def rebatch(batches: Iterable[list[Record]], size: int) -> Iterable[list[Record]]:
    for batch in batches:
        for i in range(0, len(batch), size):
            yield batch[i:i + size]


def profile_shard(stage_dir: str, index: int, tokenizer: str, by: str | None) -> ProfileAcc:
    """Worker side: the partial profile of one ingest shard."""
    from ..core.rundir import StageDir

    return profile_records([StageDir(Path(stage_dir)).read_records(index)], tokenizer, by)


# -- the driver ------------------------------------------------------------------------------------
