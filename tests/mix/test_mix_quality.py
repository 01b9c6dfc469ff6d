import numpy as np

from purgemix.mix.rewards import KNNBayesQuality, RaterQuality
from purgemix.models import FakeEmbedder, FakeLLM


class StubKNN:
    def expected(self, emb):
        return emb[:, 0] * 0 + np.arange(len(emb))  # 0, 1, 2, ...

    def reward(self, emb, threshold):
        return (self.expected(emb) >= threshold).astype(float)


def test_knn_bayes_adapter():
    q = KNNBayesQuality(StubKNN(), FakeEmbedder(), threshold=2)
    pairs = [("a b", "c"), ("d", "e f"), ("g", "h"), ("i", "j")]
    assert q(pairs) == [0.0, 0.0, 1.0, 1.0]
    assert KNNBayesQuality(StubKNN(), FakeEmbedder(), expected=True)(pairs[:2]) == [0.0, 1.0]
    assert q([]) == []
    assert "knn-bayes" in q.name


def test_knn_bayes_adapter_with_real_scorer():
    from purgemix.rating.knn_bayes import KNNBayes

    emb = FakeEmbedder()
    good = [f"detailed correct answer about topic {w} with facts" for w in "abcdefgh"]
    bad = [f"idk lol {w}" for w in "abcdefgh"]
    lib = KNNBayes.fit(emb.embed(good + bad), np.array([5] * 8 + [0] * 8), k=4)
    r = KNNBayesQuality(lib, emb)([("Tell me", "detailed correct answer about topic z with facts"), ("x", "idk lol q")])
    assert r == [1.0, 0.0]


def test_rater_adapter_records_failures_as_none():
    def responder(conv, i):
        text = conv[-1]["content"]
        if "unparsable" in text:
            return "no idea"
        return '{"rarity": 5, "complexity": 5, "informativeness": 5, "overall": 9}' if "great" in text else \
            '{"rarity": 2, "complexity": 2, "informativeness": 2, "overall": 3}'

    q = RaterQuality(FakeLLM(responder), threshold=4, attempts=2)
    assert q([("Q", "a great answer"), ("Q", "a poor answer"), ("Q", "unparsable")]) == [1.0, 0.0, None]
    assert RaterQuality(FakeLLM(responder), expected=True)([("Q", "a great answer")]) == [5.0]
