"""Truncation signals: structural flags and the pool-fitted ending evidence (purge/truncation.py)."""

from __future__ import annotations

import math

import numpy as np

from purgemix.purge.features import Batch, score_batch
from purgemix.purge.rules import load_rules
from purgemix.purge.truncation import flags, shape

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


def test_keyed_list_that_loses_its_last_value():
    assert flags("Milan: Italy\nFlorence: Italy\nZurich", False, {})[4] == 1
    assert flags("Milan: Italy\nFlorence: Italy\nZurich: Switzerland", False, {})[4] == 0


def test_last_word_continued_everywhere_else_in_the_answer():
    cut = ("Screaming for Vengeance - Judas Priest\nStained Class - Judas Priest\nBritish Steel - Judas Priest\n"
           "Painkiller - Judas")
    assert flags(cut, False, {})[4] == 1
    done = "Model 3: Tesla\nF150: Ford\nFocus: Ford\nModel X: Tesla\nModel S: Tesla"
    assert flags(done, False, {})[4] == 0


def test_code_task_keyword_without_code_is_judged_as_prose():
    # "class" in the instruction (an album called "Stained Class") does not make the answer code
    text = "The album was recorded in London. It was released a year later by the"
    assert flags(text, True, {})[4] == 1
    assert flags("def f(x):\n    return (x +", True, {})[6] == 0  # code: not a prose candidate


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


def test_letter_closings_and_signatures_are_not_open_prose():
    body = "Thank you for your letter. We would be delighted to welcome you to our programme next year."
    for closing in ("\n\nSincerely,\n[Your Name]\nUniversity Recruiter", "\n\nYours affectionately,\n\nJane",
                    " Best of luck! - Harry"):
        assert flags(body + closing, False, {})[5] == 0
    # a sign-off word inside a sentence does not excuse a cut
    assert flags("Passion, love of art, exercise, money, personal expression,", False, {})[4] == 1


def test_key_value_table_is_not_open_prose():
    text = ("Here is the plan for the week ahead of us.\nDay 5: Visit the old town and the harbour\n"
            "Day 6: Enjoy the museums and a dinner by the river\nDay 7: Shopping and a farewell dinner in the port")
    assert flags(text, False, {})[5] == 0


def test_prompt_match_classes():
    from purgemix.purge.truncation import _prompt_match
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
    from purgemix.purge.truncation import caught_share
    from purgemix.purge.features import _vocab
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
    from purgemix.purge.features import _vocab
    from purgemix.purge.truncation import columns, end_evidence

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


def _prompted(responses: list[str], instructions: list[str], inputs: list[str] | None = None) -> np.ndarray:
    b = Batch(texts={"instruction": instructions, "input": inputs or [""] * len(responses), "response": responses})
    return np.asarray(score_batch(b, ["response_checks"])["response.truncated"])


def test_label_list_cut_inside_a_label_or_ending_on_one():
    from purgemix.purge.truncation import _label_list
    lines = ["Hiking: Outdoor Activity", "Watching TV: Indoor Activity", "Cooking: Indoor Activity"]
    assert _label_list(lines + ["Surfing: Outdoor"]) == -1  # a label cut short
    assert _label_list(lines + ["Surfing"]) == -1  # no label
    assert _label_list(lines + ["Surfing: Outdoor Activity"]) == 1  # ends on a label the list uses
    assert _label_list(["container: heavy, couch: heavy, pillow: light, mattress: heavy"]) == 1  # on one line
    assert _label_list(["Lettuce: vegetable, tomato: fruit, avocado: fruit, rice"]) == -1
    assert _label_list(["Paris: France", "Rome: Italy", "Madrid: Spain", "Lisbon: Port"]) == 0  # labels all differ
    # the flag: cut inside the label; a complete table that ends on "Sit On" is no candidate for end_evidence
    assert flags("Pizza: Hot\nPasta: Hot\nTiramisu: Cold\nIce Cream: Cold\nRibs: H", False, {})[4] == 1
    done = flags("Chair: Sit On\nCouch: Sit On\nSkis: Stand On\nBench: Sit On", False, {})
    assert done[4] == 0 and done[6] == 0


def test_answer_that_stops_before_what_the_prompt_asks_for():
    from purgemix.purge.truncation import asked
    ask = asked("Tell me whether you wear each of the following on your hand or face: ring, glove, glasses, mask")
    assert ask.items == ("ring", "glove", "glasses", "mask") and ask.count == 0
    assert asked("Give me a list of the ten best rock guitarists of all time").count == 10
    assert asked("Name 3 cities").count == 3
    assert asked("What happened in the last 10 years in Peru").count == 0  # a span of time, not a number of things
    assert asked("Tell me which of these are fruits: apple, kale, pear").items == ()  # a subset is a full answer
    assert asked("Classify the post into one of the following categories: sports, arts, or news").items == ()
    instr = ["Tell me whether you wear each of the following on your hand or face: ring, glove, glasses, mask",
             "Tell me whether you wear each of the following on your hand or face: ring, glove, glasses, mask",
             "Give me a list of the ten best rock guitarists of all time",
             "Give me a list of the four best rock guitarists of all time"]
    resp = ["Ring: Hand, Glove: Hand, Glasses",  # stops before the last item
            "Ring: Hand, Gloves: Hand, Glasses: Face, Mask: Face",  # all of them (a plural still names the item)
            "Jimi Hendrix, Stevie Ray Vaughan, Jimmy Page, Eddie Van Halen, Eric Clapton, Jeff Beck, David",
            "Jimi Hendrix, Stevie Ray Vaughan, Jimmy Page and Eddie Van Halen"]
    assert _prompted(resp, instr).tolist() == [1, 0, 1, 0]


def test_cut_right_after_a_sentence_began():
    from purgemix.purge.truncation import _stub_sentence
    assert _stub_sentence(["Oh, great Julius Caesar, I foresee misfortune approaching on the Ides of March. Betrayal"])
    assert _stub_sentence(["He often preferred to play all of the instruments on his recordings.", "Prince"])
    assert not _stub_sentence(["Zach, Kelly, Lisa, Slater, Screech, Mr. Belding"])  # an abbreviation
    assert not _stub_sentence(["The Great Gatsby was written by F. Scott Fitzgerald"])  # an initial
    assert not _stub_sentence(["1. Car 2. Bus"])  # list numbers
    assert not _stub_sentence(["You can roast it overnight and serve it the day after. enjoy"])  # not a sentence start
    assert not _stub_sentence(["I love this a lot and so do my friends. Yes/No"])


def test_name_copied_from_the_prompt_and_cut():
    from purgemix.purge.truncation import _name_continues
    ctx = "The team is owned by Force 10 Hoops LLC, composed of Dawn Trudeau, Lisa Brummel, Ginny Gilder."
    assert _name_continues("Force 10 Hoops LLC: Dawn Trudeau, Lisa Brummel, Ginny", "Who owns it?\n" + ctx)
    assert not _name_continues("Force 10 Hoops LLC: Dawn Trudeau, Lisa Brummel", ctx)  # then a comma
    assert not _name_continues("They live in New York", "Is it New York or New York City?")  # once it ends there
    assert not _name_continues("They live in New York", "Where do they live?")  # not in the prompt
    resp = ["The owner is Force 10 Hoops LLC, composed of Dawn Trudeau, Lisa Brummel, Ginny"]
    assert _prompted(resp, ["Extract the owners from the paragraph."], [ctx]).tolist() == [1]


def test_initials_and_abbreviations_do_not_end_sentences_in_the_shape():
    assert shape("George W. Bush, Bill Clinton, Barack Obama, Donald Trump", fine=True) == "short/enum"
    assert shape("Dr. Simone Whitmore, Toya Bush-Harris and Quad Webb", fine=True) == "short/plain"
    assert shape("He met Dr. Smith at noon. Then he left for the station", fine=True) == "prose/1"


def test_code_shape_needs_code_in_the_answer():
    from purgemix.purge.truncation import _code_shaped
    texts = ["Sleep, exercise and a good diet help you live longer", "arr.sort() // Java syntax sort",
             "print the list in order"]
    got = _code_shaped(texts, [True, True, False], np.array([0, 0, 0]))
    assert got.tolist() == [False, True, False]  # a prompt that mentions a "program" does not make prose code
    assert _code_shaped(texts[:1], [False], np.array([1])).tolist() == [True]  # code lines found by the flags


def test_enumeration_items_and_their_ends():
    from purgemix.purge.truncation import _enum_tail, _item_ends
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
    from purgemix.purge.truncation import _last_ratio
    s = "The walk starts near the park and ends at the river"  # ten words
    assert _last_ratio(s) == -1  # no earlier sentence
    assert _last_ratio(f"{s}. {s}. The walk") == 0  # 2 / 10
    assert _last_ratio(f"{s}. {s}. {s}") == 4  # 10 / 10
    assert _last_ratio(f"{s}.\n{s}.\nThe walk starts near the park") == 2  # lines count as sentences too


def test_ratio_odds_favour_full_length_last_sentences():
    from purgemix.purge.truncation import _ratio_odds
    pool = _pool(200)
    odds = _ratio_odds(pool, np.ones(len(pool), dtype=bool))
    assert odds[0] < -1.0  # a last sentence under a quarter of the others' length: far likelier cut
    assert odds[4] > 0.0
    assert (_ratio_odds(pool, np.ones(len(pool), dtype=bool)) == odds).all()  # deterministic


def test_quote_attribution_is_not_open_prose():
    text = '"Friendship is the only cement that will ever hold the world together." - Woodrow Wilson'
    assert flags(text, False, {})[6] == 0
    assert flags('"A journey of a thousand miles begins with a single step." \u2014Chinese Proverb', False, {})[6] == 0
