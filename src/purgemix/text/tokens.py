"""Word and token counting shared by the profiler and the scorers.

``words`` splits on whitespace. Token counts come from a named tokenizer:

``regex``            (default, no dependency) a GPT-2-style pre-tokenizer regex: words, numbers,
                     punctuation runs; close to BPE counts for English (within ~25% on Alpaca).
``hf:PATH``          a Hugging Face ``tokenizer.json`` file or folder, via the ``tokenizers`` package.
"""

from __future__ import annotations

import functools
import re
from typing import Callable, Sequence

_PRETOKEN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d{1,3}| ?[^\s\w]+|\s+(?!\S)|\s+""")


def regex_token_counts(texts: Sequence[str]) -> list[int]:
    """Pre-tokens of the GPT-2-style regex in each text. ``subn`` counts the matches without building them
    (1.5x faster than ``len(findall)``; no alternative of the pattern matches the empty string, so the
    counts are the same)."""
    count = _PRETOKEN.subn
    return [count("", t)[1] for t in texts]


def word_count(text: str) -> int:
    return len(text.split())


@functools.lru_cache(maxsize=8)
def tokenizer(name: str = "regex") -> Callable[[Sequence[str]], list[int]]:
    """A batch token counter by name (see module doc)."""
    if name == "regex":
        return regex_token_counts
    if name.startswith("hf:"):
        from pathlib import Path

        from tokenizers import Tokenizer

        path = Path(name[3:])
        tok = Tokenizer.from_file(str(path / "tokenizer.json" if path.is_dir() else path))
        return lambda texts: [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]
    raise ValueError(f"unknown tokenizer '{name}'; use 'regex' or 'hf:PATH/TO/tokenizer.json'")
