"""Selectors on small data where the right choice is known by construction, and the select stage's ledger."""

import numpy as np
import pytest

from purgemix.core.record import make_record
from purgemix.select.base import Signals
from purgemix.select.stage import SelectStage, make_selector


def rec(i, q, a, **scores):
    return make_record([{"role": "user", "content": q}, {"role": "assistant", "content": a}], id=f"r{i}",
                       source="t", scores=dict(scores))


class PlantedEmbedder:
    """Three tight clusters (by the word that opens the instruction), plus one far outlier."""

    name = "planted"

    def embed(self, texts):
        centres = {"apple": [1, 0, 0], "river": [0, 1, 0], "piano": [0, 0, 1], "zebra": [-1, -1, -1]}
        out = []
        for t in texts:
            c = np.asarray(centres[t.split()[0]], dtype=np.float32)
            jitter = (hash(t) % 97) / 97 * 0.05
            out.append(c + jitter)
        return np.asarray(out, dtype=np.float32)


def pool():
    out = []
    for i in range(9):
        word = ["apple", "river", "piano"][i % 3]
        out.append(rec(i, f"{word} question {i}", "short" if i % 2 else "a much longer answer " * (i + 1)))
    out.append(rec(9, "zebra question", "odd one"))
    return out


def run(strategy, records, n, **kw):
    st = SelectStage(strategy, n, embedder=PlantedEmbedder(), **kw)
    return merged(st.run([records])), st


def merged(results):
    """The stage's results as one: its kept records in shards, then the drop events."""
    from purgemix.core.stage import Result

    out = Result()
    for r in results:
        out.records += r.records
        out.events += r.events
    return out


def test_kcenter_covers_every_planted_cluster():
    res, _ = run("kcenter", pool(), 4)
    firsts = {r["messages"][0]["content"].split()[0] for r in res.records}
    assert firsts == {"apple", "river", "piano", "zebra"}


def test_knn_keeps_the_outlier_first():
    res, _ = run("knn", pool(), 1, options={"k": 2})
    assert res.records[0]["id"] == "r9"


def test_length_keeps_the_longest_answers():
    res, _ = run("length", pool(), 3)
    assert {r["id"] for r in res.records} == {"r8", "r6", "r4"}


def test_ifd_never_keeps_ifd_at_or_above_one_even_below_budget():
    records = [rec(i, f"q{i}", "a", **{"ifd.ifd": v}) for i, v in enumerate([0.5, 1.2, 0.9, 1.0, None])]
    res, st = run("ifd", records, 4)
    assert [r["id"] for r in res.records] == ["r0", "r2"]  # input order, only IFD < 1
    assert st.report()["kept"] == 2 and len(res.events) == 3


def test_perplexity_keeps_the_lowest_and_superfilter_reads_its_own_ifd():
    records = [rec(i, f"q{i}", "a", **{"ifd.ppl": p, "superfilter.ifd": f}) for i, (p, f)
               in enumerate([(9.0, 0.99), (2.0, 0.3), (5.0, 1.5)])]
    res, _ = run("perplexity", records, 1)
    assert res.records[0]["id"] == "r1"
    res, _ = run("superfilter", records, 3)
    assert [r["id"] for r in res.records] == ["r0", "r1"]


def test_random_is_seeded_and_the_stage_balances_and_reuses_scores():
    a, _ = run("random", pool(), 5, seed=1)
    b, _ = run("random", pool(), 5, seed=1)
    assert [r["id"] for r in a.records] == [r["id"] for r in b.records]
    assert len(a.records) + len(a.events) == 10
    assert {e["reason"] for e in a.events} == {"not selected by random"}
    assert all("select.random" in r["scores"] for r in a.records)
    # a record set that already carries the scores: they are read, not recomputed (another seed changes nothing)
    best_two = sorted(a.records, key=lambda r: -r["scores"]["select.random"])[:2]
    again, st = run("random", [dict(r) for r in a.records], 2, seed=99)
    assert st.report()["scores_reused"]
    assert {r["id"] for r in again.records} == {r["id"] for r in best_two}


def test_unknown_selector_names_the_known_ones():
    with pytest.raises(KeyError, match="kcenter"):
        make_selector("nope")


def test_signals_embed_once():
    calls = []

    class Counting(PlantedEmbedder):
        def embed(self, texts):
            calls.append(len(texts))
            return super().embed(texts)

    s = Signals(pool(), Counting())
    s.embeddings()
    s.embeddings()
    assert calls == [10]


def test_ds2_ranks_by_the_rating_and_breaks_ties_by_long_tail():
    records = [rec(i, f"q{i}", "a", **{"ds2.score": s, "ds2.curated": c, "ds2.longtail": t}) for i, (s, c, t)
               in enumerate([(5, 3, 0.1), (5, 4, 0.9), (3, 5, 0.5), (None, None, 1.0)])]
    res, _ = run("ds2-raw", records, 1)
    assert res.records[0]["id"] == "r1"  # 5 and 5: the rarer one
    res, _ = run("ds2", records, 2)
    assert [r["id"] for r in res.records] == ["r1", "r2"]  # curated 5 and 4; the unrated one last


def fake_llm(answer):
    from purgemix.models import FakeLLM

    return FakeLLM(lambda conv, i: answer(conv[-1]["content"]))


def run_llm(strategy, records, n, answer, report=None, **kw):
    st = SelectStage(strategy, n, embedder=PlantedEmbedder(), llm=fake_llm(answer), **kw)
    out = merged(st.run([records]))
    if report is not None:
        report.update(st.report())
    return out


def test_alpagasus_keeps_the_high_ratings_first_and_unparsed_last():
    ratings = {"q0": "3", "q1": "5\nAccurate.", "q2": "I cannot rate this", "q3": "4.5", "q4": "2"}

    def answer(prompt):
        return next(v for k, v in ratings.items() if f"Instruction: {k}\n" in prompt)

    records = [rec(i, f"q{i}", "a") for i in range(5)]
    report = {}
    res = run_llm("alpagasus", records, 3, answer, report)
    assert [r["id"] for r in res.records] == ["r0", "r1", "r3"]  # 5 and 4.5 (>= 4.5), topped up by 3
    assert records[2]["scores"]["select.alpagasus"] is None
    assert report["llm"]["usage"]["requests"] == 5  # the stage reports what its LLM calls cost


def test_deita_skips_a_near_copy_of_a_kept_record():
    records = [rec(0, "apple question 0", "a"), rec(1, "apple question 0", "a"), rec(2, "river question", "b")]
    res = run_llm("deita", records, 2, lambda prompt: "6" if "apple" in prompt else "2")
    assert [r["id"] for r in res.records] == ["r0", "r2"]  # r1 scores as high as r0 but is its copy


def test_instag_takes_records_that_add_tags_before_more_of_the_same():
    tags = {"q0": '["math", "logic", "code"]', "q1": '["math", "logic", "code"]', "q2": '["poetry"]',
            "q3": "cooking, travel"}

    def answer(prompt):
        return next(v for k, v in tags.items() if f"Instruction: {k}" in prompt)

    res = run_llm("instag", [rec(i, f"q{i}", "a") for i in range(4)], 3, answer)
    assert [r["id"] for r in res.records] == ["r0", "r2", "r3"]  # r1 adds no new tag


def test_less_keeps_the_copy_of_the_validation_example_first(tmp_path):
    """A record whose (prompt, response) is the validation example has the same gradient: cosine 1, the maximum."""
    import orjson
    from _tiny_model import tiny

    pairs = [(f"what is {a} plus {b}", f"{a} plus {b} is {a + b}") for a in range(4) for b in range(2)]
    val = tmp_path / "val.jsonl"
    val.write_bytes(orjson.dumps({"instruction": pairs[5][0], "output": pairs[5][1]}) + b"\n")
    records = [rec(i, q, a) for i, (q, a) in enumerate(pairs)]
    st = SelectStage("less", 1, options={"validation": str(val), "validation_size": 1, "sample": None, "dim": 256})
    model, tok, _ = tiny()
    st.selector.load = lambda: (model, tok)
    res = merged(st.run([records]))
    assert [r["id"] for r in res.records] == ["r5"]
    scores = [r["scores"]["select.less"] for r in records]
    assert scores[5] == pytest.approx(1.0, abs=1e-5) and max(scores[:5] + scores[6:]) < 0.999
    assert st.report()["selector"] == {"gradient_passes": 9}  # 8 records + 1 validation example


def test_less_scores_only_its_sample_and_chooses_from_it():
    from purgemix.select.less import LessSelector

    sel = LessSelector(sample=3, seed=1)
    rows = sel.sampled(10)
    assert len(rows) == 3 and rows == sorted(rows) and rows == LessSelector(sample=3, seed=1).sampled(10)
    assert LessSelector(sample=None).sampled(4) == [0, 1, 2, 3]
