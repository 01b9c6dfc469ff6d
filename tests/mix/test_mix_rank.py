import numpy as np
import pytest

from purgemix.core.record import make_record
from purgemix.mix.rank import SplitSpec, parse_ratio, rank_and_mix
from purgemix.mix.stages import MixStage
from purgemix.models import FakeEmbedder


def rec(i, r, split=None, **scores):
    meta = {"_split": split} if split else {}
    return make_record([{"role": "user", "content": i}, {"role": "assistant", "content": r}], meta=meta,
                       scores=scores)


def test_split_spec():
    s = SplitSpec()
    assert s(rec("a", "b", split="hq")) == "hq"
    assert s(rec("a", "b", **{"ds2.score": 5})) == "hq"
    assert s(rec("a", "b", **{"ds2.score": 2})) == "lq"
    assert s(rec("a", "b", **{"ds2.score": 3.5})) == "mid"
    assert s(rec("a", "b")) == "lq"
    assert s(rec("a", "b", **{"ds2.curated": 4, "ds2.score": 1})) == "hq"  # curated score first
    assert SplitSpec(meta_key="split")(make_record([{"role": "user", "content": "x"}], meta={"split": "hq"})) == "hq"
    assert SplitSpec(meta_key="split")(rec("a", "b", split="new")) == "new"


def test_parse_ratio():
    assert parse_ratio("5:5") == (5, 5)
    assert parse_ratio("3/7") == (3, 7)
    assert parse_ratio([1, 0]) == (1, 0)
    with pytest.raises(ValueError):
        parse_ratio("5")
    with pytest.raises(ValueError):
        parse_ratio("0:0")


def make_pools():
    new = [rec(f"new question {i}", f"new answer {i}", split="new", **{"mix.quality": q, "mix.longtail": lt})
           for i, (q, lt) in enumerate([(1.0, 0.1), (1.0, 0.9), (0.2, 1.0), (0.8, 0.5), (None, 0.0)])]
    new[4]["scores"].pop("mix.quality")
    hq = [rec(f"hq question {i}", f"hq answer {i}", split="hq", **{"ds2.score": s}) for i, s in enumerate([5, 4, 5, 4])]
    return new, hq


def test_rank_and_mix_ratio_cut_and_order():
    new, hq = make_pools()
    plan = rank_and_mix(new, hq, target=4, ratio="5:5")
    sel = plan.selected
    # HQ picked first (2, best score first, ties by id), then new by quality then long-tail
    assert [i for i in sel if i < 5] == [1, 0]
    assert len([i for i in sel if i >= 5]) == 2 and {hq[i - 5]["scores"]["ds2.score"] for i in sel if i >= 5} == {5}
    assert plan.reasons[2]["reason"] == "below quality cut"
    assert plan.reasons[4]["reason"] == "no quality score"
    assert plan.reasons[3]["reason"] == "over target size"
    assert len(plan.selected) + len(plan.reasons) == 9


def test_rank_and_mix_fill_and_no_target():
    new, hq = make_pools()
    plan = rank_and_mix(new, hq, target=8, ratio="7:1")
    assert len(plan.selected) == 7  # only 3 new pass the cut: the rest filled from HQ (4)
    plan = rank_and_mix(new, hq, target=8, ratio="7:1", fill=False)
    assert len(plan.selected) == 4
    plan = rank_and_mix(new, hq, target=None)
    assert len(plan.selected) == 7


def test_rank_and_mix_dedup_exact_and_semantic():
    a = rec("What is 2 + 2?", "It is 4.", split="hq", **{"ds2.score": 5})
    b = rec("what is 2 +  2?", "it is 4.", split="new", **{"mix.quality": 1.0})  # exact after normalising
    c = rec("Totally different", "Yes.", split="new", **{"mix.quality": 1.0})
    plan = rank_and_mix([b, c], [a], target=None)
    assert plan.reasons[0] == {"reason": "duplicate in mix", "into": a["id"]}
    d = rec("Another one", "Sure.", split="hq", **{"ds2.score": 4})
    plan = rank_and_mix([c], [a, d], target=None, embeddings=np.array([[0, 1], [1, 0], [0.001, 1]], np.float32))
    assert plan.reasons[0]["reason"] == "duplicate in mix" and plan.reasons[0]["into"] == d["id"]


def test_mix_stage_events_and_longtail():
    new, hq = make_pools()
    lq = rec("leftover lq", "still lq", split="lq")
    stage = MixStage(target=4, embedder=FakeEmbedder())
    results = list(stage.run([new + hq + [lq]]))
    out = [r for res in results for r in res.records]
    events = [e for res in results for e in res.events]
    assert len(out) == 4
    assert all("mix.longtail" in r["scores"] for r in out)
    reasons = sorted(e["reason"] for e in events)
    assert "not mixed: lq split" in reasons and "below quality cut" in reasons
    assert len(out) + len(events) == len(new) + len(hq) + 1
