import numpy as np

from purgemix.core.record import make_record
from purgemix.mix.semdedup import semantic_duplicates
from purgemix.mix.stages import SemDedupStage
from purgemix.models import FakeEmbedder


def test_semantic_duplicates_keeps_best_score():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(5, 16))
    x = np.concatenate([base, base[:2] + 1e-3 * rng.normal(size=(2, 16))])  # 5, 6 copy 0, 1
    scores = np.array([1, 5, 0, 0, 0, 9, 0], float)
    dup = semantic_duplicates(x, scores, threshold=0.99, cluster_size=2)
    assert dup.tolist() == [5, -1, -1, -1, -1, -1, 1]


def test_semantic_duplicates_no_chains_and_ties_by_index():
    x = np.array([[1, 0], [1, 0.001], [1, 0.002], [0, 1]], np.float32)
    dup = semantic_duplicates(x, None, threshold=0.999)
    assert dup.tolist() == [-1, 0, 0, -1]
    assert all(dup[d] == -1 for d in dup if d >= 0)


def rec(i, r, **scores):
    return make_record([{"role": "user", "content": i}, {"role": "assistant", "content": r}], scores=scores)


def test_semdedup_stage_merges_into_keeper():
    recs = [rec("How do I boil an egg?", "Put it in boiling water.", q=1),
            rec("How do I boil an egg", "Put it in boiling water!", q=3),
            rec("What is the capital of France?", "Paris.", q=2)]
    stage = SemDedupStage(FakeEmbedder(), threshold=0.9, score_key="q")
    state = stage.fit([recs[:2], recs[2:]])
    assert state["duplicate_of"] == {recs[0]["id"]: [recs[1]["id"], state["duplicate_of"][recs[0]["id"]][1]]}
    import pickle
    worker = pickle.loads(pickle.dumps(stage))  # map workers get the stage without the embedder
    assert worker.embedder is None
    res = worker.process(recs, state)
    assert [r["id"] for r in res.records] == [recs[1]["id"], recs[2]["id"]]
    (ev,) = res.events
    assert ev["outcome"] == "merged" and ev["into"] == recs[1]["id"] and ev["duplicate_of"] == recs[1]["id"]
