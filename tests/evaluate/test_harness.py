"""The harness: arms at one budget, suites per arm, bootstrap CIs and paired differences, everything reused."""

import math

import orjson
import pytest

from purgemix.evaluate.base import bootstrap_ci, load_suite, paired_difference_ci
from purgemix.evaluate.harness import BASE_ARM, Arm, Harness, format_table, parse_arm
from purgemix.models.base import ScoredResponse

pytest.importorskip("trl")

from _tiny_model import tiny  # noqa: E402


def test_bootstrap_ci_brackets_the_mean_and_narrows_with_more_prompts():
    small = bootstrap_ci([0, 1] * 10)
    large = bootstrap_ci([0, 1] * 500)
    assert small["lo"] < 0.5 < small["hi"] and large["lo"] < 0.5 < large["hi"]
    assert large["hi"] - large["lo"] < small["hi"] - small["lo"]
    assert bootstrap_ci([1.0, float("nan"), 3.0])["n"] == 2
    assert bootstrap_ci([]) == {"mean": math.nan, "lo": math.nan, "hi": math.nan, "n": 0} or bootstrap_ci([])["n"] == 0
    d = paired_difference_ci([2.0, 3.0, 4.0, 5.0] * 5, [1.0, 2.0, 3.0, 4.0] * 5)
    assert d["mean"] == pytest.approx(1.0) and d["lo"] == pytest.approx(1.0)  # the same shift on every prompt
    with pytest.raises(ValueError):
        paired_difference_ci([1.0], [1.0, 2.0])


def test_parse_arm():
    assert parse_arm("hq=data/hq.jsonl") == Arm("hq", "data/hq.jsonl")
    assert parse_arm("data/pool.json.gz") == Arm("pool", "data/pool.json.gz")
    with pytest.raises(ValueError):
        parse_arm("=x")


class FakeScorer:
    """Per-token NLL by model: the base scores 2.0 on every reference, a fine-tuned model 1.5."""

    def __init__(self, spec):
        self.spec = spec

    def score(self, prompts, responses, batch_size=8):
        loss = 2.0 if self.spec == "base-model" else 1.5
        return [ScoredResponse(tokens=len(r.split()), loss_conditional=loss + 0.01 * i) for i, r in enumerate(responses)]


def test_harness_trains_each_arm_scores_it_and_reuses_everything(tmp_path):
    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(orjson.dumps({"instruction": f"q{i}", "output": f"a{i}"}).decode() + "\n" for i in range(6)))
    arms = []
    for name, n in (("small", 4), ("large", 12)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(orjson.dumps({"instruction": f"what is {i % 4} plus {i % 2}", "input": "",
                                              "output": f"{i % 4} plus {i % 2} is {i % 4 + i % 2}"}).decode() + "\n"
                                for i in range(n)))
        arms.append(Arm(name, str(path)))
    calls = {"base": 0, "model": 0}

    def load_base():
        calls["base"] += 1
        return tiny()

    def load_model(spec):
        calls["model"] += 1
        return FakeScorer(spec)

    from purgemix.train.sft import SFTSettings

    settings = SFTSettings(base="base-model", lora=False, max_steps=2, batch_size=2)
    suites = [load_suite("nll", references=str(refs))]
    h = Harness(tmp_path / "run", suites, settings, budget=4, baseline=BASE_ARM, load_model=load_model,
                load_base=load_base, log=lambda m: None)
    table = h.run([Arm(BASE_ARM, None)] + arms)
    assert calls == {"base": 2, "model": 3}
    assert table["arms"]["large"]["train"]["records"] == 4 and table["arms"]["large"]["train"]["read"] == 12
    cell = table["rows"]["small"]["nll.nll"]
    assert cell["mean"] == pytest.approx(1.525) and cell["diff"]["mean"] == pytest.approx(-0.5)
    assert "nll.nll" in table["lower_is_better"] and "diff" not in table["rows"][BASE_ARM]["nll.nll"]
    text = format_table(table)
    assert text[0][0] == "arm" and "better" in text[2][1]  # lower NLL than the base, CI excluding 0
    assert (tmp_path / "run" / "evaluate.html").read_text().count("<svg") == 1
    again = Harness(tmp_path / "run", suites, settings, budget=4, baseline=BASE_ARM, load_model=load_model,
                    load_base=load_base, log=lambda m: None).run([Arm(BASE_ARM, None)] + arms)
    assert calls == {"base": 2, "model": 3}  # nothing trained or scored twice
    assert again["rows"] == table["rows"]
