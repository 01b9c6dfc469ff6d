"""The scorer registry, Batch's shared views and the runners (purge/features/base.py)."""

from purgemix.purge.features.base import SCORERS, Batch, feature_catalog, score_batch


def _cols(responses):
    n = len(responses)
    return score_batch(Batch(texts={"instruction": ["Explain the topic in a few sentences."] * n,
                                    "input": [""] * n, "response": list(responses)}))


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


def test_scorers_register_in_the_order_of_the_score_columns():
    # the package imports its scorer modules in this order; it is the order of the columns in the records'
    # scores and of purge-scores' fingerprint, so reordering the imports would change every output
    assert list(SCORERS)[:8] == ["length", "charset", "repetition", "lexicon", "language", "artefacts",
                                 "response_checks", "pair"]


def test_columns_have_one_value_per_record():
    cols = _cols(["Hello there.", "", "A longer answer with several words in it."])
    for k, v in cols.items():
        assert len(v) == 3, k


def test_scores_are_deterministic():
    texts = ["Some answer. With two sentences.", "Another one that repeats repeats repeats repeats."]
    a, b = _cols(texts), _cols(texts)
    for k in a:
        assert [str(x) for x in a[k]] == [str(x) for x in b[k]], k


def test_char_classes_match_a_plain_reference():
    import random

    from purgemix.purge.features.base import _char_classes

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
