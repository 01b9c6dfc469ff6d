"""Priors and rules: thresholds from the fitted distribution, and clear errors for bad rule files."""

import numpy as np
import pytest

from purgemix.purge.priors import PriorFitter, Reservoir, quantile, robust_z
from purgemix.purge.rules import RuleError, load_rules


def _priors(values: dict[str, np.ndarray]):
    f = PriorFitter()
    f.add_columns(values)
    return f.finish()["features"]


def test_priors_robust_statistics():
    rng = np.random.default_rng(0)
    x = rng.normal(10, 2, 20_000)
    p = _priors({"response.chars": x})["response.chars"]
    assert p["median"] == pytest.approx(10, abs=0.1)
    assert p["scale"] == pytest.approx(2, rel=0.05)
    assert quantile(p, 0.5) == pytest.approx(10, abs=0.1)
    assert robust_z(p, np.array([14.0]))[0] == pytest.approx(2, rel=0.1)
    assert len(p["quantiles"]) == 1001


def test_reservoir_is_bounded_and_uniform():
    r = Reservoir(size=1000, seed=1)
    for chunk in np.array_split(np.arange(100_000, dtype=float), 37):
        r.add(chunk)
    s = r.sample()
    assert s.size == 1000 and r.n == 100_000
    assert 40_000 < s.mean() < 60_000


def test_thresholds_fixed_quantile_z_auto_and_words():
    text = """
version: 1
settings: {auto_z: 3}
rules:
  - name: fixed
    when: response.chars > 100
  - name: quant
    when: response.chars > q0.9
  - name: zed
    when: response.chars < z2
  - name: auto
    when: response.chars > auto
  - name: lang
    all: [response.lang != en, response.lang_conf >= 0.5]
"""
    rs = load_rules(text=text, path="t.yaml")
    x = np.arange(1000, dtype=float)
    rs.resolve(_priors({"response.chars": x}))
    by = {r.name: r.conditions()[0].threshold for r in rs.rules}
    assert by["fixed"] == 100
    assert by["quant"] == pytest.approx(899.1, abs=1)
    assert by["zed"] < 499.5  # median - 2 robust sd
    assert by["auto"] > 499.5
    cols = {"response.chars": np.array([50.0, 950.0, np.nan]),
            "response.lang": np.array(["en", "fr", "de"], dtype=object),
            "response.lang_conf": np.array([0.9, 0.9, 0.1])}
    fired = rs.evaluate(cols)
    names = [r.name for r in rs.active]
    assert fired[1, names.index("quant")] and not fired[0, names.index("quant")]
    assert not fired[2].any()  # a missing value never fires; low-confidence language does not either
    assert fired[1, names.index("lang")] and not fired[0, names.index("lang")]


def test_default_rules_load_and_reference_known_features():
    rs = load_rules()
    assert len(rs.active) >= 15
    assert all(r.reason for r in rs.rules)


def test_unknown_feature_names_the_available_ones():
    with pytest.raises(RuleError) as e:
        load_rules(text="rules:\n  - name: x\n    when: response.charz > 3\n", path="r.yaml")
    msg = str(e.value)
    assert "r.yaml:3" in msg and "unknown feature 'response.charz'" in msg
    assert "response.chars" in msg and "Available features" in msg


def test_yaml_error_names_file_and_line():
    with pytest.raises(RuleError) as e:
        load_rules(text="rules:\n  - name: x\n    when: [unclosed\n", path="bad.yaml")
    assert str(e.value).startswith("bad.yaml:")


@pytest.mark.parametrize("text,needle", [
    ("rules:\n  - name: x\n    when: response.chars >> 3\n", "key 'rules[0] (x).when'"),
    ("rules:\n  - name: x\n    when: response.chars > lots\n", "is not a number"),
    ("rules:\n  - name: x\n    reason: r\n", "give exactly one of when, all, any"),
    ("rules:\n  - name: x\n    when: response.chars > 1\n  - name: x\n    when: response.chars > 2\n", "duplicate"),
    ("rules:\n  - name: x\n    when: response.chars > 1\n    colour: red\n", "key 'rules[0] (x).colour'"),
    ("rulez: []\n", "unknown top-level key"),
    ("rules:\n  - name: x\n    when: response.lang > 3\n", "category"),
])
def test_rule_errors_name_line_and_key(text, needle):
    with pytest.raises(RuleError) as e:
        load_rules(text=text, path="r.yaml")
    assert needle in str(e.value) and str(e.value).startswith("r.yaml:")


def test_pool_condition_per_source():
    rs = load_rules(text="rules:\n  - name: open\n    all: [response.ends_open == 1, mean(response.ends_open) < 0.1]\n",
                    path="p.yaml")
    rs.resolve(_priors({"response.ends_open": np.array([0, 0, 1, 1], dtype=float)}))
    cond = rs.rules[0].conditions()[1]
    assert cond.pool and cond.threshold is False  # pool mean 0.5
    cond.resolve_sources({"a": 0.01, "b": 0.5})
    cols = {"response.ends_open": np.array([1.0, 1.0]), "__source__": np.array(["a", "b"], dtype=object)}
    assert list(rs.evaluate(cols)[:, 0]) == [True, False]


def test_rules_on_score_columns_match_rules_on_record_scores(tmp_path):
    """``process_columns`` (scores stored by column) and ``process`` (scores inline) drop the same records
    for the same rules, and the dropped records carry the same scores."""
    from pathlib import Path

    from purgemix.core.record import make_record
    from purgemix.core.rundir import StageDir
    from purgemix.purge.stages.rules import RuleStage
    from purgemix.purge.stages.scores import ScoreStage

    answers = ["Paris is the capital of France.", "", "As an AI language model, I cannot help with that.",
               "The mitochondria is the powerhouse of the cell. " * 6, "<noinput> ### Response: ok",
               "Water boils at 100 degrees Celsius at sea level, which is", "Sure."]
    recs = [make_record([{"role": "user", "content": f"Question number {i}?"},
                         {"role": "assistant", "content": answers[i % len(answers)]}], source="s")
            for i in range(40)]
    d = StageDir(Path(tmp_path) / "scores")
    d.path.mkdir()
    res = ScoreStage().process(recs)
    d.write_shard(0, res.records, [], {"in": 40, "out": 40}, columns=res.columns)
    d.mark_complete({"shards": 1})
    stage = RuleStage()
    state = stage.fit_dir(d)
    by_cols = stage.process_columns(d.read_records(0, scores=False), d.read_columns(0), state)
    inline = stage.process(d.read_records(0), state)
    assert [r["id"] for r in by_cols.records] == [r["id"] for r in inline.records]
    assert by_cols.events == inline.events and by_cols.events  # same reasons, values and record scores
    assert by_cols.side == inline.side
