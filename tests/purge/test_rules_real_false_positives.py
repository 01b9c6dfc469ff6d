"""The default rules on the false-positive patterns the real-data audit found (benchmarks/audit), next to the
true defects the same rules exist for. Texts written for the test, in the audited records' patterns."""

import json

import pytest

from purgemix.core.pipeline import InputSpec
from purgemix.recipe.verbs import run_purge

FILLER = [{"instruction": f"Give a short fact about topic number {i}.", "input": "",
           "output": f"Topic number {i} is a well-studied subject, and one fact about it is easy to state clearly."}
          for i in range(60)]

KEEP = {
    "prose about Python": ("Explain the difference between Python lists and tuples.", "",
                           "In Python, a list can be changed after it is created, while a tuple cannot. Lists use "
                           "square brackets and tuples use parentheses, so tuples suit fixed records."),
    "valid code with a lead-in": ("Write a Python function that adds two numbers.", "",
                                  "Here is the function:\ndef add(a, b):\n    return a + b\nIt returns the sum."),
    "a phrase to translate": ("Translate the sentence 'Je ne sais pas ce que je veux faire ce soir' into English.",
                              "", "I do not know what I want to do tonight."),
    "an equation": ("Solve for x: 2x + 3 = 7.", "", "x = 2"),
    "a painter's name": ("Name a famous Dutch painter.", "", "Vincent van Gogh"),
    "a number list": ("List the first six square numbers.", "", "1, 4, 9, 16, 25, 36"),
    "an AI character in role-play": ("You are an AI fitness coach. Greet a new client and suggest a first workout.",
                                     "", "As an AI coach, I am glad to meet you! Let us start with a gentle "
                                         "twenty-minute walk and some light stretching today."),
    "a song with a chorus": ("Write a short song about the sea with a chorus.", "",
                             "The waves roll in, the waves roll out.\nSing with me, sing with me, the sea is free.\n"
                             "The gulls fly high above the boat.\nSing with me, sing with me, the sea is free.\n"
                             "The sun goes down, the stars come out.\nSing with me, sing with me, the sea is free."),
    "a worked answer ending on its result": ("Tom buys 3 books at $12 each. How much does he pay?", "",
                                             "Each book costs $12, so three books cost 3 * 12 = 36 dollars"),
    "a regex": ("Write a regular expression that matches a US ZIP code.", "", "^\\d{5}(?:-\\d{4})?$ |(\\d{5})"),
}
DROP = {
    "broken Python": ("Write a Python function that adds two numbers.", "",
                      "def add(a, b)\n    return a + b\n", "python-syntax-error"),
    "an answer cut mid-sentence": ("Describe the water cycle.", "",
                                   "Water evaporates from oceans and lakes, rises as vapour and cools into clouds. "
                                   "The droplets grow until they fall as rain, which flows back into the",
                                   "truncated-response"),
    "a real disclaimer": ("What is your favourite colour?", "",
                          "As an AI language model, I do not have personal preferences or a favourite colour.",
                          "ai-disclaimer"),
    "a German answer": ("Describe what you did last weekend.", "",
                        "Am Wochenende bin ich mit meiner Familie in die Berge gefahren, wir sind lange gewandert "
                        "und haben abends zusammen gekocht und viel gelacht.", "wrong-language-response"),
}


@pytest.fixture(scope="module")
def decisions(tmp_path_factory):
    d = tmp_path_factory.mktemp("rules")
    rows = FILLER + [{"instruction": i, "input": x, "output": o} for i, x, o in KEEP.values()]
    rows += [{"instruction": i, "input": x, "output": o} for i, x, o, _ in DROP.values()]
    src = d / "in.json"
    src.write_text(json.dumps(rows))
    summary = run_purge([InputSpec(str(src))], str(d / "kept.jsonl"), report_dir=d / "rep", run_dir=d / "run")
    out = {}
    for line in open(summary["outputs"]["dropped"]):
        r = json.loads(line)
        out[int(r["lineage"]["ref"].rsplit(":", 1)[1]) - 1] = r["purge"]["reason"]
    return out


@pytest.mark.parametrize("case", list(KEEP))
def test_audited_false_positive_patterns_are_kept(decisions, case):
    assert decisions.get(len(FILLER) + list(KEEP).index(case)) is None


@pytest.mark.parametrize("case", list(DROP))
def test_the_defects_the_rules_exist_for_are_still_dropped(decisions, case):
    assert decisions.get(len(FILLER) + len(KEEP) + list(DROP).index(case)) == DROP[case][3]
