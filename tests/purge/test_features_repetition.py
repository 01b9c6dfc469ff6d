"""The repetition scorer and its batch-wide n-gram statistics (purge/features/repetition.py)."""

import pytest

from purgemix.purge.features.base import Batch, score_batch


def _cols(responses, instructions=None, inputs=None):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                                    "input": inputs or [""] * n, "response": list(responses)}))


def test_repetition_signals():
    loop = "the cat sat on the mat " * 10
    c = _cols(["A normal sentence with no repeats at all, fine.", loop, "one\none\none\ntwo"])
    assert c["response.dup_4gram_frac"][0] == 0
    assert c["response.dup_4gram_frac"][1] > 0.7
    assert c["response.longest_repeat_ratio"][1] >= 0.5
    assert c["response.top_2gram_char_frac"][1] > 0.2
    assert c["response.dup_line_frac"][2] == pytest.approx(0.5)


def _ngram_reference(ws):
    """Per-document reference of the repetition n-gram features (plain Python, first occurrence wins)."""
    out = {}
    for k in (2, 3, 4):
        grams = [tuple(ws[i:i + k]) for i in range(len(ws) - k + 1)]
        out[f"dup_{k}gram_frac"] = (len(grams) - len(set(grams))) / len(grams) if len(grams) > 1 else 0.0
    from collections import Counter

    c2 = Counter(tuple(ws[i:i + 2]) for i in range(len(ws) - 1))
    chars = sum(map(len, ws))
    top = max((n * (len(g[0]) + len(g[1])) for g, n in c2.items() if n >= 2), default=0)
    out["top_2gram_char_frac"] = top / chars if chars else 0.0
    seen, longest, run = set(), 0, 0
    for i in range(len(ws) - 3):
        g = tuple(ws[i:i + 4])
        run = run + 1 if g in seen else 0
        longest = max(longest, run)
        seen.add(g)
    out["longest_repeat_ratio"] = (longest + 3) / len(ws) if longest else 0.0
    return out


def test_ngram_stats_match_a_plain_reference():
    import random

    import numpy as np

    from purgemix.purge.features.repetition import _ngram_stats

    rng = random.Random(3)
    vocab = ["a", "b", "cat", "dog", "the", "sat", "on", "mat", "x"]
    docs = []
    for i in range(300):
        ws = [rng.choice(vocab[: 3 + i % 7]) for _ in range(rng.randrange(0, 40))]
        if i % 5 == 0 and len(ws) > 6:
            ws = ws + ws[2:8]  # a repeated sequence
        docs.append(ws)
    got = _ngram_stats(docs)
    for j, ws in enumerate(docs):
        ref = _ngram_reference(ws)
        for f, v in ref.items():
            assert np.isclose(got[f][j], v), (f, j, ws, got[f][j], v)
