"""Feature scorers: registry contract and the values of the main signals on tiny, hand-made texts."""

import math

import numpy as np
import pytest

from purgemix.purge.features import SCORERS, Batch, feature_catalog, score_batch


def _batch(responses, instructions=None, inputs=None):
    n = len(responses)
    return Batch(texts={"instruction": instructions or ["Explain the topic in a few sentences."] * n,
                        "input": inputs or [""] * n, "response": list(responses)})


def _cols(responses, **kw):
    return score_batch(_batch(responses, **kw))


def test_registry_documents_every_feature():
    assert len(SCORERS) >= 8
    for s in SCORERS.values():
        assert s.name and s.version
        for name, f in s.features.items():
            assert f.formula, f"{s.name}.{name} has no formula"
            assert f.direction in ("high", "low", "none")
    cat = feature_catalog()
    for key in ("response.chars", "response.tokens", "instruction.lang", "response.dup_line_frac",
                "response.dup_2gram_frac", "response.dup_4gram_frac", "response.top_2gram_char_frac",
                "response.longest_repeat_ratio", "response.stopword_ratio", "response.flagged_words",
                "pair.overlap", "pair.echo_exact", "response.refusal", "response.truncated",
                "response.template_markers", "response.python_invalid", "response.json_invalid"):
        assert key in cat


def test_columns_have_one_value_per_record():
    cols = _cols(["Hello there.", "", "A longer answer with several words in it."])
    for k, v in cols.items():
        assert len(v) == 3, k


def test_lengths_and_charset():
    c = _cols(["Hello World 123!\n\nSecond paragraph."])
    assert c["response.chars"][0] == len("Hello World 123!\n\nSecond paragraph.")
    assert c["response.words"][0] == 5
    assert c["response.lines"][0] == 2
    assert c["response.paragraphs"][0] == 2
    assert c["response.digit_ratio"][0] == pytest.approx(3 / 35)
    assert c["response.tokens"][0] > 5


def test_repetition_signals():
    loop = "the cat sat on the mat " * 10
    c = _cols(["A normal sentence with no repeats at all, fine.", loop, "one\none\none\ntwo"])
    assert c["response.dup_4gram_frac"][0] == 0
    assert c["response.dup_4gram_frac"][1] > 0.7
    assert c["response.longest_repeat_ratio"][1] >= 0.5
    assert c["response.top_2gram_char_frac"][1] > 0.2
    assert c["response.dup_line_frac"][2] == pytest.approx(0.5)


def test_language_refusal_and_artefacts():
    c = _cols([
        "La réponse dépend de plusieurs facteurs importants qu'il faut examiner attentivement.",
        "I'm sorry, but I cannot help with that request.",
        "### Response: Paris is the capital of France.<|im_end|>",
        "The sky is blue because of Rayleigh scattering of sunlight.",
    ])
    assert c["response.lang"][0] == "fr" and c["response.lang_conf"][0] > 0.5
    assert c["response.lang"][3] == "en"
    assert c["response.refusal"][1] == 1 and c["response.refusal"][3] == 0
    assert c["response.template_markers"][2] >= 2 and c["response.template_markers"][3] == 0


def test_truncation_signals():
    c = _cols([
        "Photosynthesis turns light into chemical energy. Plants use it to make sugar from water and the",
        "Photosynthesis turns light into chemical energy. Plants use it to make sugar from carbon dioxide.",
        "Here is the code:\n```python\nprint('hi')\n",
        "1. First step.\n2. Second step.\n3.",
    ])
    assert list(c["response.truncated"]) == [1, 0, 1, 1]
    assert c["response.unbalanced_fence"][2] == 1
    assert c["response.list_cut"][3] == 1


def test_code_and_json_validity():
    c = _cols(["```python\ndef f(:\n    pass\n```", "```python\ndef f():\n    return 1\n```", '{"a": 1}', "not json"],
              instructions=["Write Python code.", "Write Python code.", "Return JSON with a.", "Return JSON with a."])
    assert c["response.python_invalid"][0] == 1 and c["response.python_invalid"][1] == 0
    assert math.isnan(c["response.python_invalid"][2])
    assert c["response.json_invalid"][2] == 0 and c["response.json_invalid"][3] == 1


def test_pair_echo_and_empty():
    c = _cols(["Sure! Name three primary colors", "Red, blue and yellow.", "", "N/A"],
              instructions=["Name three primary colors"] * 4)
    assert list(c["pair.echo_exact"]) == [1, 0, 0, 0]
    assert c["response.chars_nonspace"][2] == 0
    assert c["response.non_answer"][3] == 1 and c["response.non_answer"][1] == 0


def test_scores_are_deterministic():
    texts = ["Some answer. With two sentences.", "Another one that repeats repeats repeats repeats."]
    a, b = _cols(texts), _cols(texts)
    for k in a:
        assert [str(x) for x in a[k]] == [str(x) for x in b[k]], k


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

    from purgemix.purge.features import _ngram_stats

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


def test_markdown_headings_are_not_template_markers():
    # "### Instructions:" is a recipe heading, not a leftover "### Instruction:" prompt marker
    c = _cols([
        "### Ingredients:\n- 2 eggs\n\n### Instructions:\n1. Whisk the eggs.",
        "#### Answering questions well\nBe brief.",
        "### Instruction:\nSummarise the text.\n### Response:\nDone.",
    ])
    assert c["response.template_markers"][0] == 0 and c["response.template_markers"][1] == 0
    assert c["response.template_markers"][2] >= 2


def test_char_classes_match_a_plain_reference():
    import random

    from purgemix.purge.features import _char_classes

    rng = random.Random(3)
    alphabet = "aZ9_ \t\n\u00e9\u00c9\u0661\u3000\u00a0\u2009!?.\u5b57\ud83d\ude00\ud800\u00b2"
    texts = [""] + ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(300)]
    got = _char_classes(texts)

    def plain(c):  # astral characters and lone surrogates count as none of the classes
        ok = ord(c) < 65536 and not 0xD800 <= ord(c) < 0xE000
        return {"alpha": ok and c.isalpha(), "digit": ok and c.isdigit(), "upper": ok and c.isupper(),
                "space": ok and c.isspace(), "alnum": ok and c.isalnum()}

    for k in ("alpha", "digit", "upper", "space", "alnum"):
        assert got[k].tolist() == [sum(plain(c)[k] for c in t) for t in texts], k
    assert got["chars"].tolist() == [len(t) for t in texts]
