import math

import orjson
import pytest

from purgemix.core.references import load_references
from purgemix.evaluate import judge as judge_mod
from purgemix.evaluate.base import load_suite
from purgemix.evaluate.judge import JudgeSuite, parse_verdict
from purgemix.models import FakeLLM

MARKER = "PINEAPPLE"
PAIRS = [("Name a fruit.", "An apple."), ("Say hello.", "Hello there."), ("Count to three.", "One, two, three.")]


def _write(path, pairs):
    path.write_bytes(b"\n".join(orjson.dumps({"instruction": q, "output": a}) for q, a in pairs) + b"\n")
    return str(path)


@pytest.fixture
def refs(tmp_path):
    return _write(tmp_path / "refs.jsonl", PAIRS)


def _answers(conv):
    """(answer A, answer B) from a rendered judge prompt."""
    text = conv[-1]["content"]
    a = text.split("[Answer A]", 1)[1].split("[Answer B]", 1)[0]
    b = text.split("[Answer B]", 1)[1].split("Which answer is better?", 1)[0]
    return a, b


def marker_judge():
    def verdict(conv, i):  # prefers the one answer with the marker; a tie when both or neither have it
        a, b = _answers(conv)
        return "tie" if (MARKER in a) == (MARKER in b) else "A" if MARKER in a else "B"

    return FakeLLM(verdict, name="fake:marker-judge")


def test_the_judge_prefers_the_marked_answer_in_both_orders(refs, tmp_path):
    win = JudgeSuite(marker_judge(), references=refs).run(FakeLLM(lambda conv, i: f"{MARKER} is my answer."))
    assert win.metrics["win_rate"] == [1.0] * 3
    assert win.metrics["consistent"] == [1.0] * 3 and win.metrics["tie"] == [0.0] * 3
    marked = _write(tmp_path / "marked.jsonl", [(q, f"{a} {MARKER}") for q, a in PAIRS])
    lose = JudgeSuite(marker_judge(), references=marked).run(FakeLLM(lambda conv, i: "a plain answer"))
    assert lose.metrics["win_rate"] == [0.0] * 3 and lose.metrics["consistent"] == [1.0] * 3
    assert win.info["unparsed"] == 0 and win.info["prompts"] == 3
    assert [d["verdicts"] for d in win.details] == [["A", "B"]] * 3


def test_a_judge_always_saying_a_cancels_out(refs):
    res = JudgeSuite(FakeLLM(lambda conv, i: "A"), references=refs).run(FakeLLM())
    assert res.metrics["win_rate"] == [0.5] * 3
    assert res.metrics["consistent"] == [0.0] * 3
    assert res.info["judge_says_a"] == 1.0


def test_ties_score_half_and_count_as_ties(refs):
    res = JudgeSuite(FakeLLM(lambda conv, i: "tie"), references=refs).run(FakeLLM())
    assert res.metrics["win_rate"] == [0.5] * 3 and res.metrics["tie"] == [1.0] * 3
    assert res.metrics["consistent"] == [1.0] * 3


def test_unparseable_verdicts_are_nan_and_counted(refs):
    res = JudgeSuite(FakeLLM(lambda conv, i: "I cannot decide."), references=refs).run(FakeLLM())
    assert all(math.isnan(v) for m in ("win_rate", "tie", "consistent") for v in res.metrics[m])
    assert res.info["unparsed"] == 6
    assert res.summary()["win_rate"]["n"] == 0


def test_one_unread_order_keeps_the_other(refs):
    # read only when the model's answer is A (the first order): the prompt keeps that one verdict
    judge = FakeLLM(lambda conv, i: "B" if _answers(conv)[0].strip() == "mine" else "?")
    res = JudgeSuite(judge, references=refs).run(FakeLLM(lambda conv, i: "mine"))
    assert res.metrics["win_rate"] == [0.0] * 3
    assert all(math.isnan(v) for v in res.metrics["consistent"])
    assert res.info["unparsed"] == 3


def test_failed_judge_requests_are_left_out(refs):
    res = JudgeSuite(FakeLLM(lambda conv, i: "A", fail_every=1), references=refs).run(FakeLLM())
    assert all(math.isnan(v) for v in res.metrics["win_rate"])
    assert res.info["judge_failed"] == 6 and res.info["unparsed"] == 0


def test_each_prompt_is_judged_in_both_orders(refs):
    seen = []
    judge = FakeLLM(lambda conv, i: seen.append(_answers(conv)) or "tie")
    JudgeSuite(judge, references=refs, limit=1).run(FakeLLM(lambda conv, i: "mine"))
    assert [(a.strip(), b.strip()) for a, b in seen] == [("mine", "An apple."), ("An apple.", "mine")]


@pytest.mark.parametrize("text,verdict", [("A", "A"), ("B", "B"), ("tie", "tie"), ("Tie.", "tie"), (" **A**", "A"),
                                          ("Verdict: B", "B"), ("[[A]]", "A"), ("Apple", None), ("a tie", None),
                                          ("", None)])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text) == verdict


def test_reference_files_take_json_lists_and_key_aliases(tmp_path, refs):
    listed = tmp_path / "refs.json"
    listed.write_bytes(orjson.dumps([{"prompt": "Q1", "answer": "R1"}, {"question": "Q2", "response": "R2"},
                                     {"instruction": "Q3", "reference": "R3"}, {"prompt": "no answer"}]))
    assert load_references(str(listed)) == [("Q1", "R1"), ("Q2", "R2"), ("Q3", "R3")]
    assert load_references(str(refs), limit=2) == PAIRS[:2]


def test_params_follow_the_judge_and_the_template(tmp_path, refs, monkeypatch):
    base = JudgeSuite(FakeLLM(name="fake:one"), references=refs)
    assert base.params()["judge"] == "fake:one" and base.params()["template"] == base.template.hash
    assert base.fingerprint() != JudgeSuite(FakeLLM(name="fake:two"), references=refs).fingerprint()
    assert base.fingerprint() != JudgeSuite(FakeLLM(name="fake:one"), references=refs, limit=2).fingerprint()
    other = tmp_path / "judge.txt"
    other.write_text(judge_mod.TEMPLATE.read_text().replace("impartial", "fair"))
    monkeypatch.setattr(judge_mod, "TEMPLATE", other)
    assert JudgeSuite(FakeLLM(name="fake:one"), references=refs).fingerprint() != base.fingerprint()


def test_registered_and_a_spec_string_judge_loads_lazily(refs, tmp_path, monkeypatch):
    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path / "cache"))
    suite = load_suite("judge", judge="fake:echo", references=refs)
    assert isinstance(suite, JudgeSuite) and suite.needs == ("generate",)
    assert suite.params()["judge"] == "fake:echo" and suite._llm is None
    res = suite.run(FakeLLM())  # the echo judge's replies start with "echo:": unparsed
    assert res.info["unparsed"] == 6 and res.info["judge"] == "fake:echo"
    with pytest.raises(ValueError):
        JudgeSuite(None)
