"""Truncation evidence: the pool-fitted ending evidence, answer shapes and the truncation columns
(purge/features/truncation_evidence.py)."""

from __future__ import annotations

import math

import numpy as np

from purgemix.purge.features.base import Batch, score_batch
from purgemix.purge.features.truncation_evidence import shape
from purgemix.purge.features.truncation_flags import flags
from purgemix.purge.rules import load_rules

TOPICS = ["the park", "the city", "the river", "the museum", "the market", "the library", "the station",
          "the harbour", "the garden", "the school"]


def _pool(n: int = 60) -> list[str]:
    """Complete prose answers: sentences that end on nouns, with final punctuation."""
    out = []
    for i in range(n):
        a, b = TOPICS[i % len(TOPICS)], TOPICS[(i * 3 + 1) % len(TOPICS)]
        out.append(f"The walk starts near {a}. It is a short trip from {b} to {a}. Many visitors enjoy the "
                   f"view of {b} on the way back.")
    return out


def _evidence(responses: list[str], instructions: list[str] | None = None) -> np.ndarray:
    instructions = instructions or ["Describe the walk."] * len(responses)
    b = Batch(texts={"instruction": instructions, "input": [""] * len(responses), "response": responses})
    cols = score_batch(b, ["response_checks"])
    return np.asarray(cols["response.end_evidence"], dtype=np.float64), np.asarray(cols["response.truncated"])


def _rule_fires(ev: float, truncated: int) -> bool:
    rules = load_rules()
    rule = next(r for r in rules.active if r.name == "truncated-response")
    limit = next(float(c.value) for c in rule.conditions() if c.feature == "response.end_evidence")
    return bool(truncated) or (not math.isnan(ev) and ev < limit)


def test_cut_after_function_words_is_strong_evidence():
    pool = _pool()
    cut = "The walk starts near the park. It is a short trip from the city to the"
    ev, tr = _evidence(pool + [cut])
    assert ev[-1] < -3.5
    assert _rule_fires(ev[-1], tr[-1])


def test_open_ending_on_a_usual_last_word_is_not_flagged():
    # no final punctuation, but it stops on words the pool ends sentences on
    pool = _pool()
    done = "The walk starts near the garden. It is a short trip from the city to the park"
    ev, tr = _evidence(pool + [done])
    assert not math.isnan(ev[-1])
    assert ev[-1] > -3.5
    assert not _rule_fires(ev[-1], tr[-1])


def test_cut_in_the_middle_of_a_word():
    pool = _pool()
    cut = "The walk starts near the river. Many visitors enjoy the view of the muse"
    ev, tr = _evidence(pool + [cut])
    assert _rule_fires(ev[-1], tr[-1])


def test_pool_of_open_answers_tolerates_open_endings():
    # a pool of human answers that mostly stop without a full stop (short lists, "X is A, Y is B")
    pool = [f"{a} is American, {b} is British" for a, b in
            [("Ford", "Mini"), ("Dodge", "Jaguar"), ("Buick", "Bentley"), ("Jeep", "Lotus"), ("Tesla", "McLaren")]] * 8
    pool += [f"{t.title()}, the zoo and the beach" for t in TOPICS] * 3
    answer = "Chrysler is American, Rolls-Royce is British"
    ev, tr = _evidence(pool + [answer])
    assert not _rule_fires(ev[-1], tr[-1])


def test_closed_short_and_code_answers_get_no_evidence():
    pool = _pool()
    ev, _ = _evidence(pool + ["It ends here.", "Too short to", "```python\nx = (1,\n"],
                      ["Describe the walk."] * (len(pool) + 2) + ["Write Python code."])
    assert math.isnan(ev[-3]) and math.isnan(ev[-2]) and math.isnan(ev[-1])


def test_evidence_is_deterministic():
    pool = _pool() + ["The walk starts near the park. It is a short trip from the city to the"]
    a, _ = _evidence(pool)
    b, _ = _evidence(pool)
    assert np.array_equal(np.nan_to_num(a, nan=99.0), np.nan_to_num(b, nan=99.0))


def test_shape():
    assert shape("One sentence. And another") == "prose"
    assert shape("One sentence.\nAnd another line") == "prose-lines"
    assert shape("- apples\n- pears") == "list"
    assert shape("apples, pears") == "short"
    assert shape("x = 1", codeish=True) == "code"


def test_fine_shape_records_the_writers_habit():
    assert shape("One. Two. Three. And four", fine=True) == "prose/3"
    assert shape("First line.\nSecond line.\nA third", fine=True) == "prose-lines/closed"
    assert shape("- apples\n- pears\n- plums", fine=True) == "list/open"
    assert shape("apples, pears, plums", fine=True) == "short/enum"


def test_prompt_match_classes():
    from purgemix.purge.features.truncation_evidence import _prompt_match
    prompt = "classify each as sit or stand: chair, couch, skis.\nwhich is lighter"
    assert _prompt_match("skis", prompt) == 3
    assert _prompt_match("couch", prompt) == 2
    assert _prompt_match("which", prompt) == 1
    assert _prompt_match("sofa", prompt) == 0
    assert _prompt_match("cou", prompt) == 0


def test_last_word_check_overruled_by_a_large_pool_that_ends_like_this():
    # a pool of tables whose lines all end on "Stand On" / "Sit On": a function word that ends lines here
    rows = ["Chair: Sit On\nCouch: Sit On\nSkis: Stand On", "Sofa: Sit On\nBoard: Stand On\nStool: Sit On"]
    pool = (rows * 60) + ["Bench: Sit On\nSkateboard: Stand On\nPaddle Board: Stand On"]
    _, tr = _evidence(pool)
    assert tr[-1] == 0
    assert flags(pool[-1], False, {})[4] == 1  # the check alone fires; the pool overrules it


def test_caught_share_measures_the_structural_checks_on_random_cuts():
    from purgemix.purge.features.response_checks import _vocab
    from purgemix.purge.features.truncation_evidence import caught_share
    pool = _pool(120)
    vocab = _vocab(Batch(texts={"instruction": ["Describe the walk."] * len(pool), "input": [""] * len(pool),
                                "response": pool}))
    share = caught_share(pool, [False] * len(pool), vocab)
    assert share is not None and 0.0 < share < 1.0
    assert caught_share(pool, [False] * len(pool), vocab) == share  # deterministic
    assert caught_share(pool[:10], [False] * 10, vocab) is None  # too few answers to cut


def test_missed_cuts_are_taken_out_of_the_open_rate():
    # a pool that ends with a full stop, except for cuts: some the structural checks explain (a function word),
    # and as many that stop on a plausible word; the latter must not make open endings look usual
    import numpy as np

    from purgemix.purge.features.response_checks import _vocab
    from purgemix.purge.features.truncation_evidence import columns, end_evidence

    pool = _pool(200)
    explained_cuts = [p.rsplit(" ", 4)[0] + " and the" for p in pool[:12]]  # "... the view of the park and the"
    missed_cuts = [p.rsplit(" ", 4)[0] for p in pool[12:24]]  # "... the view of the park"
    texts = explained_cuts + missed_cuts + pool[24:]
    b = Batch(texts={"instruction": ["Describe the walk."] * len(texts), "input": [""] * len(texts),
                     "response": texts})
    f, _ = columns(texts, b.lower("response"), b.words("response"), [False] * len(texts), _vocab(b))
    args = (texts, b.lower("response"), b.words("response"), f[:, 6], np.zeros(len(texts), dtype=bool))
    # the structural checks' verdicts before the pool may overrule the last-word checks
    explained = np.array([flags(t, False, _vocab(b))[4] for t in texts]) == 1
    kw = dict(vocab=_vocab(b), explained=explained)
    without = end_evidence(*args, **kw)
    with_ = end_evidence(*args, caught=0.5, **kw)
    i = len(explained_cuts)  # the first missed cut
    assert f[i, 4] == 0 and not math.isnan(without[i])
    assert with_[i] < without[i] - 0.3


def test_initials_and_abbreviations_do_not_end_sentences_in_the_shape():
    assert shape("George W. Bush, Bill Clinton, Barack Obama, Donald Trump", fine=True) == "short/enum"
    assert shape("Dr. Simone Whitmore, Toya Bush-Harris and Quad Webb", fine=True) == "short/plain"
    assert shape("He met Dr. Smith at noon. Then he left for the station", fine=True) == "prose/1"


def test_code_shape_needs_code_in_the_answer():
    from purgemix.purge.features.truncation_evidence import _code_shaped
    texts = ["Sleep, exercise and a good diet help you live longer", "arr.sort() // Java syntax sort",
             "print the list in order"]
    got = _code_shaped(texts, [True, True, False], np.array([0, 0, 0]))
    assert got.tolist() == [False, True, False]  # a prompt that mentions a "program" does not make prose code
    assert _code_shaped(texts[:1], [False], np.array([1])).tolist() == [True]  # code lines found by the flags


def test_enumeration_items_and_their_ends():
    from purgemix.purge.features.truncation_evidence import _enum_tail, _item_ends
    assert _enum_tail("Four cities in California are San Francisco, San Diego, Santa Barbara and Los Angeles")
    assert _enum_tail("Jaws, Heat, Star Wars")
    assert not _enum_tail("Jaws, Heat")  # two items
    assert not _enum_tail("It rained, so we stayed in the house, read old books and played a long game of chess")
    c = _item_ends(["alien, star wars, jaws and fargo.", "one sentence, with a comma.", "a, b\nheat, rocky, die hard"])
    assert c["wars"] == 1 and c["fargo"] == 1 and c["hard"] == 1 and c["comma"] == 0


def test_enumeration_ending_on_an_item_of_the_pool_lists_is_complete():
    # "Star Wars" ends items of the pool's lists but never a sentence: an answer whose list ends on it is not cut,
    # an answer that stops inside the item is
    films = ["Alien", "Star Wars", "Jaws", "Heat", "Rocky", "Top Gun", "Die Hard", "Psycho", "Vertigo"]
    lists = [", ".join(films[(i + j * 2) % 9] for j in range(4)) + " and Fargo." for i in range(40)]
    pool = _pool(120) + lists + ["Good films include Jaws, Heat, Rocky, Alien, Star Wars",
                                 "Good films include Jaws, Heat, Rocky, Alien, Star"]
    ev, tr = _evidence(pool)
    assert not _rule_fires(ev[-2], tr[-2])
    assert _rule_fires(ev[-1], tr[-1])


def test_last_sentence_length_against_the_earlier_ones():
    from purgemix.purge.features.truncation_evidence import _last_ratio
    s = "The walk starts near the park and ends at the river"  # ten words
    assert _last_ratio(s) == -1  # no earlier sentence
    assert _last_ratio(f"{s}. {s}. The walk") == 0  # 2 / 10
    assert _last_ratio(f"{s}. {s}. {s}") == 4  # 10 / 10
    assert _last_ratio(f"{s}.\n{s}.\nThe walk starts near the park") == 2  # lines count as sentences too


def test_ratio_odds_favour_full_length_last_sentences():
    from purgemix.purge.features.truncation_evidence import _ratio_odds
    pool = _pool(200)
    odds = _ratio_odds(pool, np.ones(len(pool), dtype=bool))
    assert odds[0] < -1.0  # a last sentence under a quarter of the others' length: far likelier cut
    assert odds[4] > 0.0
    assert (_ratio_odds(pool, np.ones(len(pool), dtype=bool)) == odds).all()  # deterministic
