import pytest

from purgemix.core.record import make_record
from purgemix.mix.distil import DistilConfig, Distiller
from purgemix.mix.rewards import (
    RewardWeights,
    cluster_task_shape,
    detect_task_shape,
    format_reward,
    heuristic_quality,
    parse_distilled,
    shape_ok,
    threshold_quality,
)
from purgemix.mix.stages import DistilStage
from purgemix.models import FakeEmbedder, FakeLLM
from purgemix.testing.mix_responder import MixResponder


def rec(i, r, split="lq"):
    return make_record([{"role": "user", "content": i}, {"role": "assistant", "content": r}], meta={"_split": split})


WATER = [rec("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
         rec("At what temperature does water boil in Fahrenheit?", "Water boils at 212 degrees Fahrenheit."),
         rec("Why does water boil at lower temperature on mountains?", "Lower air pressure lowers the boiling point of water.")]


def test_parse_distilled():
    exact = "<think>merge</think><answer>Q: What is X?\nA: X is Y.</answer>"
    assert parse_distilled(exact) == (("What is X?", "X is Y."), True)
    loose = "Sure. <think>merge</think>\n<answer>Q: What is X?\nA: X is Y."
    assert parse_distilled(loose) == (("What is X?", "X is Y."), False)
    assert parse_distilled("<think>a</think><answer>just text</answer>") == (None, True)
    inline = "<think>t</think><answer>Q: which river flows through Paris? A: The Seine. </answer>"
    assert parse_distilled(inline) == (("which river flows through Paris?", "The Seine."), True)
    assert parse_distilled("<think>t</think><answer>Q: Which river? The Seine.</answer>") == (None, True)
    assert parse_distilled("no tags") == (None, False)
    assert parse_distilled("<think>a</think><think>b</think><answer>Q: q\nA: a</answer>")[1] is False


def test_format_reward_and_shapes():
    qa = "<think>t</think><answer>Q: What is X?\nA: X is Y.</answer>"
    assert format_reward(qa, "qa") == 1.0
    assert format_reward("x " + qa, "qa") == 0.5
    mc = ("<think>t</think><answer>Q: Which is a fruit?\nA) car\nB) apple\nC) stone\nD) cloud\n"
          "A: Answer: B</answer>")
    assert format_reward(mc, "multiple_choice") == 1.0
    assert format_reward(qa, "multiple_choice") == 0.5
    assert shape_ok("true_false", "Is the sky blue?", "True, because of scattering.")
    assert not shape_ok("true_false", "Is the sky blue?", "Yes.")
    assert not shape_ok("qa", "What is X?", "Y.\nQ: What is Z?\nA: W.")  # listed, not merged
    assert detect_task_shape("Which of the following is a fruit?\nA) car\nB) apple\nC) x\nD) y", "B") == "multiple_choice"
    assert detect_task_shape("True or false: the sun is a star.", "True.") == "true_false"
    assert detect_task_shape("Classify this animal: cat.", "Mammal.") == "category_statement"
    assert cluster_task_shape(WATER) == "qa"


def test_best_of_n_picks_highest_total():
    # sample 0 merges all answers (longer), others repeat one answer; quality prefers length
    quality = lambda pairs: [min(1.0, len(a.split()) / 20) for _, a in pairs]
    d = Distiller(FakeLLM(MixResponder()), FakeEmbedder(), quality, config=DistilConfig(samples=3, min_reward=0.0))
    (o,) = d.distil([WATER])
    assert o.ok and o.rewards["sample"] == 0
    assert len(o.candidates) == 3 and all("total" in c for c in o.candidates)
    assert "212" in o.response and "100" in o.response
    w = RewardWeights()
    assert o.rewards["total"] == pytest.approx(w.quality * o.rewards["quality"] + w.alignment * o.rewards["alignment"]
                                              + w.format * o.rewards["format"], abs=1e-6)


def test_below_threshold_dropped_with_rewards():
    d = Distiller(FakeLLM(MixResponder()), FakeEmbedder(), lambda p: [0.0] * len(p),
                  config=DistilConfig(samples=2, min_reward=0.95))
    (o,) = d.distil([WATER])
    assert not o.ok and o.reason.startswith("best reward") and o.rewards["quality"] == 0.0


def test_quality_none_is_not_a_score():
    d = Distiller(FakeLLM(MixResponder()), FakeEmbedder(), lambda p: [None] * len(p),
                  config=DistilConfig(samples=1, min_reward=0.0))
    (o,) = d.distil([WATER])
    assert not o.ok and o.rewards["quality"] is None and "unavailable" in o.reason


def test_broken_format_and_cluster_size():
    d = Distiller(FakeLLM(MixResponder(distil_format="broken")), FakeEmbedder(), config=DistilConfig(samples=2))
    small, ok = d.distil([WATER[:1], WATER])
    assert not small.ok and "cluster size" in small.reason
    assert not ok.ok and "Q:/A:" in ok.reason and all(c["format"] == 0.0 for c in ok.candidates)


def test_threshold_quality_and_heuristic():
    r = threshold_quality(lambda pairs: [4.2, 3.9, None][: len(pairs)], cut=4)
    assert r([("a", "b"), ("c", "d"), ("e", "f")]) == [1.0, 0.0, None]
    h = heuristic_quality([("Explain X.", "X is a thing that does many useful jobs for people."), ("q", "")])
    assert 0 < h[0] <= 1 and h[1] == 0.0


def test_one_generate_call_for_all_clusters():
    class Counting(FakeLLM):
        batches = []

        def generate(self, conversations, params):
            self.batches.append((len(conversations), params.n))
            return super().generate(conversations, params)

    llm = Counting(MixResponder())
    Distiller(llm, FakeEmbedder(), config=DistilConfig(samples=4)).distil([WATER, WATER[:2], WATER[1:]])
    assert llm.batches == [(3, 4)]


def topic_records(per=6):
    topics = [["water", "boil", "temperature", "celsius", "steam", "kettle"],
              ["paris", "france", "seine", "capital", "louvre", "museum"],
              ["python", "list", "function", "loop", "code", "syntax"]]
    out = []
    for words in topics:
        for i in range(per):
            w = words[i:] + words[:i]
            out.append(rec(f"Question about {w[0]} and {w[1]} {w[2]}?", f"Answer on {w[0]} {w[1]} {w[3]} {w[4]}."))
    return out


def test_distil_stage_clusters_and_lineage():
    records = topic_records() + [rec("An HQ sample stays as it is.", "Indeed it stays.", split="hq")]
    stage = DistilStage(FakeLLM(MixResponder()), FakeEmbedder(), lambda p: [1.0] * len(p),
                        config=DistilConfig(samples=2))
    results = list(stage.run([records]))
    out = [r for res in results for r in res.records]
    events = [e for res in results for e in res.events]
    ids_in = {r["id"] for r in records}
    new = [r for r in out if r["id"] not in ids_in]
    info = stage.report()
    assert new and info["size_min"] >= 2 and info["size_max"] <= 5
    for r in new:
        lin = r["lineage"]
        assert lin["operator"] == "distil" and 2 <= len(lin["derived_from"]) <= 5
        assert set(lin["derived_from"]) <= ids_in
        assert lin["rewards"]["total"] >= 0.5 and lin["template"]["hash"] and lin["model"] == "fake:echo"
        assert r["scores"]["mix.quality"] == 1.0 and r["lineage"]["quality"] == "<lambda>"
    merged = {e["id"] for e in events if e["outcome"] == "merged"}
    assert merged | {r["id"] for r in out if r["id"] in ids_in} == ids_in
    assert len(merged) == 18  # every LQ record went into some cluster's output
