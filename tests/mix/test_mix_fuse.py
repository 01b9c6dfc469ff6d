import pytest

from purgemix.core.record import make_record
from purgemix.mix.fuse import Fuser, FusionConfig
from purgemix.mix.stages import FuseStage
from purgemix.models import FakeEmbedder, FakeLLM
from purgemix.testing.mix_responder import MixResponder


def rec(i, r, split="lq"):
    return make_record([{"role": "user", "content": i}, {"role": "assistant", "content": r}], meta={"_split": split})


WATER = [rec("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
         rec("At what temperature does water boil in Fahrenheit?", "Water boils at 212 degrees Fahrenheit.")]
PARIS = [rec("What is the capital city of France?", "The capital of France is Paris."),
         rec("Which river flows through Paris, France?", "The Seine river flows through Paris.")]


class CountingLLM(FakeLLM):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.batches = []

    def generate(self, conversations, params):
        self.batches.append(len(conversations))
        return super().generate(conversations, params)


def test_fusion_ok_first_try():
    llm = CountingLLM(MixResponder())
    (o,) = Fuser(llm).fuse([WATER])
    assert o.ok and o.cycles == 0 and o.operator == "merged_corpus"
    assert "100 degrees" in o.response and "212" in o.response
    assert o.checks["rules"] == [] and o.checks["llm"] == []
    assert o.template["name"] == "merged_corpus" and len(o.template["hash"]) == 12
    assert o.parents == [r["id"] for r in WATER]


def test_repair_cycle_fixes_truncation():
    resp = MixResponder(truncate_first=True)
    (o,) = Fuser(FakeLLM(resp)).fuse([WATER])
    assert o.ok and o.cycles == 1
    assert [h["operator"] for h in o.history] == ["merged_corpus", "direct_answer"]
    assert o.history[0]["errors"][0]["type"] == "truncated"


def test_checklist_errors_pick_the_repair_template():
    resp = MixResponder(checklist_errors=("contradiction",))
    (o,) = Fuser(FakeLLM(resp)).fuse([WATER])
    assert o.ok and [h["operator"] for h in o.history] == ["merged_corpus", "consistency_repair"]


def test_still_failing_pairs_are_dropped_with_reasons_after_two_cycles():
    (o,) = Fuser(FakeLLM(MixResponder(always_truncate=True))).fuse([WATER])
    assert not o.ok and o.cycles == 2 and len(o.history) == 3
    assert o.reason == "truncated" and o.errors[0]["type"] == "truncated"


def test_no_feedback_control_accepts_without_repair():
    cfg = FusionConfig(feedback=False)
    llm = CountingLLM(MixResponder(always_truncate=True))
    (o,) = Fuser(llm, config=cfg).fuse([WATER])
    assert o.ok and o.cycles == 0
    assert o.checks["rules"][0]["type"] == "truncated"  # recorded, not acted on
    assert llm.batches == [1]  # no checklist call


def test_unparsable_checklist_is_recorded_never_a_pass():
    cfg = FusionConfig(max_cycles=0, check_retries=1)
    (o,) = Fuser(FakeLLM(MixResponder(checklist="garbage")), config=cfg).fuse([WATER])
    assert not o.ok and o.errors[0]["type"] == "checklist_unparsed"
    (o,) = Fuser(FakeLLM(MixResponder(checklist="fenced")), config=cfg).fuse([WATER])
    assert o.ok


def test_generation_errors_are_reasons():
    llm = FakeLLM(MixResponder(), fail_every=1)
    (o,) = Fuser(llm, config=FusionConfig(max_cycles=1)).fuse([WATER])
    assert not o.ok and o.errors[0]["type"] == "generation_failed" and o.cycles == 1


def test_calls_are_batched():
    llm = CountingLLM(MixResponder(truncate_first=True))
    groups = [WATER, PARIS] * 5
    outs = Fuser(llm, config=FusionConfig(batch_size=6)).fuse(groups)
    assert all(o.ok for o in outs)
    # cycle 0: 10 fusions (6 + 4), no checklist (all truncated); cycle 1: 10 repairs, 10 checks
    assert llm.batches == [6, 4, 6, 4, 6, 4]


def test_unknown_operator_rejected():
    with pytest.raises(ValueError):
        FusionConfig(operator="magic")


def topic_records():
    topics = {
        "water": ["water", "boil", "temperature", "celsius", "steam"],
        "paris": ["paris", "france", "seine", "capital", "louvre"],
        "python": ["python", "list", "function", "loop", "code"],
    }
    out = []
    for name, words in topics.items():
        for i in range(4):
            w = words[i:] + words[:i]
            out.append(rec(f"Question about {w[0]} and {w[1]} {w[2]} number {i}?",
                           f"Answer on {w[0]} {w[1]} {w[3]} {w[4]} detail {i}."))
    return out


def run_stage(stage, records):
    results = list(stage.run([records[:5], records[5:]]))
    out = [r for res in results for r in res.records]
    events = [e for res in results for e in res.events]
    return out, events


@pytest.mark.parametrize("pairing", ["cluster", "random", "none"])
def test_fuse_stage_accounts_for_everything(pairing):
    records = topic_records() + [rec("Keep me as HQ please now.", "Sure thing, kept.", split="hq")]
    stage = FuseStage(FakeLLM(MixResponder()), FakeEmbedder(), pairing=pairing, k=3,
                      quality=lambda pairs: [0.9] * len(pairs))
    out, events = run_stage(stage, records)
    created = [e for e in events if e["outcome"] == "created"]
    merged = [e for e in events if e["outcome"] in ("merged", "rewritten")]
    assert {e["outcome"] for e in merged} == ({"rewritten"} if pairing == "none" else {"merged"})
    ids_in = {r["id"] for r in records}
    new = [r for r in out if r["id"] not in ids_in]
    assert len(created) == len(new) == (6 if pairing != "none" else 6)
    for r in new:
        assert set(r["lineage"]["derived_from"]) <= ids_in
        assert r["lineage"]["operator"] == ("rewrite" if pairing == "none" else "merged_corpus")
        assert r["lineage"]["template"]["hash"] and r["lineage"]["model"] == "fake:echo"
        assert r["scores"]["mix.quality"] == 0.9 and r["meta"]["_split"] == "new"
        assert r["lineage"]["rewards"] == {"quality": 0.9}
    # every input is either passed through or merged into a created record
    merged_ids = {e["id"] for e in merged}
    assert {r["id"] for r in out if r["id"] in ids_in} | merged_ids == ids_in
    assert not ({r["id"] for r in out} & merged_ids)
    assert all(e["into"] in {c["id"] for c in created} for e in merged)
    if pairing == "cluster":
        assert all(r["lineage"]["pairing"]["cosine"] > 0 for r in new)


def test_fuse_stage_cluster_pairs_within_topics():
    records = topic_records()
    stage = FuseStage(FakeLLM(MixResponder()), FakeEmbedder(), k=3)
    out, events = run_stage(stage, records)
    topic = {r["id"]: i // 4 for i, r in enumerate(records)}
    pairs = [e["parents"] for e in events if e["outcome"] == "created"]
    assert pairs and all(topic[a] == topic[b] for a, b in pairs)


def test_fuse_stage_auto_k_and_budget():
    stage = FuseStage(FakeLLM(MixResponder()), FakeEmbedder(), k="auto", ks=[2, 3, 4], budget=2)
    out, events = run_stage(stage, topic_records())
    assert sum(e["outcome"] == "created" for e in events) == 2
    assert set(stage.report()["silhouette"]) == {"2", "3", "4"}


def test_fuse_stage_failed_pairs_created_then_dropped():
    stage = FuseStage(FakeLLM(MixResponder(always_truncate=True)), FakeEmbedder(), k=3)
    records = topic_records()
    out, events = run_stage(stage, records)
    dropped = [e for e in events if e["outcome"] == "dropped"]
    created = {e["id"] for e in events if e["outcome"] == "created"}
    assert dropped and {e["id"] for e in dropped} == created
    assert all(e["reason"] == "fusion failed: truncated" and e["record"]["lineage"]["cycles"] == 2 for e in dropped)
    assert len(out) == len(records)  # parents pass through, annotated
    assert all(r["meta"]["_mix_failed"]["stage"] == "fuse" for r in out)


def test_fuse_stage_mmr_representatives():
    stage = FuseStage(FakeLLM(MixResponder()), FakeEmbedder(), k=3, representatives=0.5)
    out, events = run_stage(stage, topic_records())
    assert sum(e["outcome"] == "created" for e in events) == 3  # 2 representatives of 4 per cluster


def test_compose_writes_the_instruction_then_answers_it_afresh():
    responder = MixResponder()
    llm = CountingLLM(responder)
    out = Fuser(llm, config=FusionConfig(operator="compose")).fuse([WATER])[0]
    assert out.ok, out.errors
    assert "100 degrees" in out.response and "212 degrees" in out.response and "<" not in out.response
    assert out.instruction.startswith("Explain the following together")
    # two generations (instruction, then the answer), then the checklist
    assert out.operator == "compose" and llm.batches == [1, 1, 1] and responder.calls["fuse"] == 1


def test_compose_rewrites_single_records_when_pairing_none():
    stage = FuseStage(FakeLLM(MixResponder()), None, pairing="none", config=FusionConfig(operator="compose"))
    assert stage.config.operator == "compose"  # kept for singles; any other fusion operator becomes rewrite
    out, events = run_stage(stage, topic_records())
    rewritten = [e for e in events if e.get("outcome") == "rewritten"]
    assert rewritten and all(e["reason"] == "rewritten" for e in rewritten)
    assert FuseStage(FakeLLM(), None, pairing="none", config=FusionConfig(operator="direct_answer")).config.operator == "rewrite"
