"""kNN-Bayes, IFD plumbing (fake scorer), rule features and the combined quality score."""

from __future__ import annotations

import numpy as np

from purgemix.models.base import ScoredResponse
from purgemix.models.cache import SQLiteStore
from purgemix.rating.ifd import apply_scores, score_records
from purgemix.rating.knn_bayes import KNNBayes
from purgemix.rating.quality import auc, combine, fit_weights, percentile, quality_scores, rule_features, signals


def rec(i, instr, resp, **scores):
    return {"id": str(i), "messages": [{"role": "user", "content": instr}, {"role": "assistant", "content": resp}],
            "meta": {}, "scores": scores, "source": "t", "lineage": {}}


def test_knn_bayes_expected_score_follows_library_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 16))
    lib = np.concatenate([centres[c] + 0.1 * rng.normal(size=(30, 16)) for c in range(6)])
    lib /= np.linalg.norm(lib, axis=1, keepdims=True)
    cls = np.repeat(np.arange(6), 30)
    kb = KNNBayes.fit(lib, cls)
    assert np.allclose(kb.T.sum(1), 1) and kb.T[0, 0] > 0.9
    q = centres + 0.1 * rng.normal(size=(6, 16))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    e = kb.expected(q)
    assert np.allclose(e, np.arange(6), atol=0.2)
    assert kb.reward(q).tolist() == [0, 0, 0, 0, 1, 1]
    kb.save(tmp_path / "kb.npz")
    assert np.allclose(KNNBayes.load(tmp_path / "kb.npz").expected(q), e)


class FakeScorer:
    name = "fake-scorer"

    def __init__(self):
        self.calls = 0

    def score(self, prompts, responses):
        self.calls += len(responses)
        return [ScoredResponse(tokens=len(r.split()), loss_conditional=1.0 + len(r) / 100, loss_unconditional=2.0)
                for r in responses]


def test_score_records_cached_and_applied(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    recs = [rec(i, f"q{i}", f"answer {i}") for i in range(5)] + [rec(9, "q", "")]
    sc = FakeScorer()
    counts = {}
    res = score_records(sc, recs, store, counts=counts)
    assert sc.calls == 5 and res[-1].error == "no assistant turn"
    assert counts == {"scored": 5, "cached": 0}
    res2 = score_records(FakeScorer(), recs, store, counts=counts)
    assert counts == {"scored": 5, "cached": 5}  # the second pass paid nothing
    assert [r.loss_conditional for r in res2[:5]] == [r.loss_conditional for r in res[:5]]
    r0 = apply_scores(recs[0], res[0])
    assert r0["scores"]["ifd.ifd"] == round(res[0].loss_conditional / 2.0, 6)
    assert {"ifd.loss_cond", "ifd.loss_uncond", "ifd.ppl", "ifd.tokens"} <= set(r0["scores"])
    assert apply_scores(recs[-1], res[-1])["scores"] == {}


def test_rule_features():
    assert rule_features("q", "This answer stops in the middle of a long sentence without any")["truncated"] == 1
    assert rule_features("q", "Fine.")["truncated"] == 0
    assert rule_features("q", "a b c a b c a b c a b c")["repetition"] > 0.5
    assert rule_features("q", "As an AI language model, I cannot do that.")["refusal"] == 1


def test_percentile_and_auc():
    assert percentile(np.array([3.0, 1.0, 2.0, np.nan])).tolist()[:3] == [1.0, 0.0, 0.5]
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([0.5, 0.5]), np.array([0, 1])) == 0.5


def test_quality_score_combines_available_signals():
    recs = [rec(i, f"question {i}", f"A correct answer number {i}.", **{"ifd.loss_cond": 1.0 + i, "ifd.ifd": 0.5 + i / 20})
            for i in range(10)]
    recs.append(rec(10, "q", "loop loop loop loop loop loop loop loop loop loop"))
    out = quality_scores(recs)
    s = [r["scores"]["quality.score"] for r in out]
    assert s[0] > s[9]  # lower loss and IFD are better
    assert out[-1]["scores"]["quality.rules"] < 0.5 and "quality.likelihood" not in out[-1]["scores"]
    sig = signals(recs)
    score, pct = combine(sig, strong_rater=True)
    assert np.all((score >= 0) & (score <= 1))
    w = fit_weights(pct, np.array([1] * 5 + [0] * 6))
    assert abs(sum(w.values()) - 1) < 1e-9 and all(v >= 0 for v in w.values())


def test_quality_stage_with_fake_scorer_and_library(tmp_path):
    from purgemix.models import FakeEmbedder
    from purgemix.rating.stages import QualityStage, embed_text

    recs = [rec(i, f"question {i % 3}", f"Answer text {i} " * (1 + i % 4)) for i in range(12)]
    emb = FakeEmbedder()
    lib = KNNBayes.fit(emb.embed([embed_text(r) for r in recs]), np.arange(12) % 6)
    lib.save(tmp_path / "lib.npz")
    stage = QualityStage("fake", library=str(tmp_path / "lib.npz"), scorer_obj=FakeScorer(), emb=emb)
    out = [r for res in stage.run([recs[:6], recs[6:]]) for r in res.records]
    assert len(out) == 12
    assert all(0 <= r["scores"]["quality.score"] <= 1 and "quality.knn_bayes" in r["scores"]
               and "ifd.loss_cond" in r["scores"] for r in out)


def test_surrogate_recovers_a_signal_from_features():
    from purgemix.rating.surrogate import fit_predict, spearman

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 20))
    y = X[:, 0] * 2 - X[:, 3] + 0.1 * rng.normal(size=400)
    train = np.arange(100)
    pred, rep = fit_predict(X, y, train)
    assert rep["trained_on"] == 100 and rep["spearman"] > 0.9
    assert spearman(pred[100:], y[100:]) > 0.9  # held out: rows it never saw


def test_quality_stage_scores_a_sample_and_estimates_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path / "cache"))  # a fresh request cache: every score is a call
    from purgemix.rating.stages import QualityStage

    recs = [rec(i, f"question {i % 5}", f"Answer text {i} " * (1 + i % 7), **{"purge.resp.words": 3 * (1 + i % 7)})
            for i in range(60)] + [rec(99, "q", "")]
    sc = FakeScorer()
    stage = QualityStage("fake", scorer_obj=sc, sample=20, seed=3)
    out = [r for res in stage.run([recs]) for r in res.records]
    assert sc.calls == 20  # only the sample reached the model
    est = [r for r in out if r["scores"].get("ifd.estimated") == 1]
    assert len(est) == 40 and stage.report()["estimated"] == 40  # the empty answer is neither scored nor estimated
    assert "ifd.loss_cond" not in out[-1]["scores"]
    # FakeScorer's loss grows with the answer's length, which the features carry: estimates follow it
    from purgemix.rating.surrogate import spearman

    true = np.array([1.0 + len(r["messages"][1]["content"]) / 100 for r in est])
    assert spearman(np.array([r["scores"]["ifd.loss_cond"] for r in est]), true) > 0.8
    assert all(0 <= r["scores"]["quality.score"] <= 1 for r in out[:-1])
    # the same seed picks the same sample
    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path / "cache2"))
    sc2 = FakeScorer()
    out2 = [r for res in QualityStage("fake", scorer_obj=sc2, sample=20, seed=3).run([recs])
            for r in res.records]
    assert out2 == out


def test_the_score_cache_key_holds_the_scorer_length(tmp_path):
    """Scores made reading 192 tokens are not reused by a scorer that reads 1,024 (and vice versa)."""
    store = SQLiteStore(tmp_path / "s.sqlite")
    recs = [rec(i, f"q{i}", f"answer {i}") for i in range(3)]
    short, long_ = FakeScorer(), FakeScorer()
    short.max_length, long_.max_length = 192, 1024
    score_records(short, recs, store)
    score_records(long_, recs, store)
    assert short.calls == 3 and long_.calls == 3  # the second length paid for its own scores
    again = FakeScorer()
    again.max_length = 192
    score_records(again, recs, store)
    assert again.calls == 0


def test_a_fully_cached_ifd_stage_never_loads_its_model(tmp_path, monkeypatch):
    from purgemix.models import LazyScorer
    from purgemix.rating.ifd import IFDStage

    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path))
    recs = [rec(i, f"q{i}", f"answer {i}") for i in range(4)]
    fake = FakeScorer()
    fake.name = LazyScorer("no-such-model").name  # the name the stage's scorer will have
    score_records(fake, recs)  # fills the default cache
    stage = IFDStage("no-such-model")
    out = [r for res in stage.run([recs]) for r in res.records]
    assert all("ifd.ifd" in r["scores"] for r in out)
    assert stage.scorer._loaded is None and stage.report()["scored"] == 0  # loading would have failed
    assert LazyScorer("hf:/models/my-scorer").name == "hf:my-scorer" and LazyScorer("smollm2-135m").name == "hf:smollm2-135m"
