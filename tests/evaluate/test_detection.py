from purgemix.evaluate.detection import evaluate_detection


def test_recall_precision_and_clean_drops_per_noise_type():
    records = [{"id": i} for i in ("a", "b", "c", "d", "e", "e2")]
    labels = {"a": {"type": "truncate"}, "b": {"type": "truncate"}, "e2": {"type": "duplicate", "of": "e"}}
    dropped = {"a": (["truncated-response"], None),  # caught
               "c": (["ends-mid-sentence"], None),  # a clean record dropped by a truncation rule
               "e2": (["exact-duplicate"], "e")}  # the copy resolved
    rep = evaluate_detection(records, labels, dropped)
    t = rep["types"]["truncate"]
    assert (t["injected"], t["recall"], t["flagged"], t["precision"]) == (2, 0.5, 2, 0.5)
    assert rep["types"]["duplicate"]["recall"] == 1.0
    assert rep["clean"] == 3 and rep["clean_dropped"] == 1 and rep["clean_dropped_by_rule"] == {"ends-mid-sentence": 1}
    assert rep["types"]["echo"]["recall"] is None  # nothing injected: no figure, not 0
