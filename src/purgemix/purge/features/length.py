"""The ``length`` scorer: characters, words, tokens, lines and paragraphs of each role.

Its own module because the dedup's keep-by may need its word count alone, before any scorer runs
(registered in ``base.ALONE``), and the tokenizer is loaded only here.
"""

from __future__ import annotations

import re

import numpy as np

from .base import ALL, ALONE, Batch, Feature, safe_ratio, scorer


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
        "mean_word_len": safe_ratio(nonspace, words),
    }


_PARA = re.compile(r"\n\s*\n")


def _word_counts(texts: list[str]) -> np.ndarray:
    return np.fromiter((len(t.split()) for t in texts), dtype=np.int64, count=len(texts))


ALONE["words"] = _word_counts


def _tokens(name: str, texts: list[str]) -> list[int]:
    from ...text.tokens import tokenizer

    return tokenizer(name)(texts)
