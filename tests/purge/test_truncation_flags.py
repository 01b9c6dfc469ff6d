"""Truncation flags: the structural checks of one response and what its prompt asks for
(purge/features/truncation_flags.py)."""

from __future__ import annotations

import numpy as np

from purgemix.purge.features.base import Batch, score_batch
from purgemix.purge.features.truncation_flags import flags


def _prompted(responses: list[str], instructions: list[str], inputs: list[str] | None = None) -> np.ndarray:
    b = Batch(texts={"instruction": instructions, "input": inputs or [""] * len(responses), "response": responses})
    return np.asarray(score_batch(b, ["response_checks"])["response.truncated"])


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


def test_label_list_cut_inside_a_label_or_ending_on_one():
    from purgemix.purge.features.truncation_flags import _label_list
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
    from purgemix.purge.features.truncation_flags import asked
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
    from purgemix.purge.features.truncation_flags import _stub_sentence
    assert _stub_sentence(["Oh, great Julius Caesar, I foresee misfortune approaching on the Ides of March. Betrayal"])
    assert _stub_sentence(["He often preferred to play all of the instruments on his recordings.", "Prince"])
    assert not _stub_sentence(["Zach, Kelly, Lisa, Slater, Screech, Mr. Belding"])  # an abbreviation
    assert not _stub_sentence(["The Great Gatsby was written by F. Scott Fitzgerald"])  # an initial
    assert not _stub_sentence(["1. Car 2. Bus"])  # list numbers
    assert not _stub_sentence(["You can roast it overnight and serve it the day after. enjoy"])  # not a sentence start
    assert not _stub_sentence(["I love this a lot and so do my friends. Yes/No"])


def test_name_copied_from_the_prompt_and_cut():
    from purgemix.purge.features.truncation_flags import _name_continues
    ctx = "The team is owned by Force 10 Hoops LLC, composed of Dawn Trudeau, Lisa Brummel, Ginny Gilder."
    assert _name_continues("Force 10 Hoops LLC: Dawn Trudeau, Lisa Brummel, Ginny", "Who owns it?\n" + ctx)
    assert not _name_continues("Force 10 Hoops LLC: Dawn Trudeau, Lisa Brummel", ctx)  # then a comma
    assert not _name_continues("They live in New York", "Is it New York or New York City?")  # once it ends there
    assert not _name_continues("They live in New York", "Where do they live?")  # not in the prompt
    resp = ["The owner is Force 10 Hoops LLC, composed of Dawn Trudeau, Lisa Brummel, Ginny"]
    assert _prompted(resp, ["Extract the owners from the paragraph."], [ctx]).tolist() == [1]


def test_quote_attribution_is_not_open_prose():
    text = '"Friendship is the only cement that will ever hold the world together." - Woodrow Wilson'
    assert flags(text, False, {})[6] == 0
    assert flags('"A journey of a thousand miles begins with a single step." \u2014Chinese Proverb', False, {})[6] == 0
