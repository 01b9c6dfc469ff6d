"""purgemix purge end to end: outputs, reasons, cross-file duplicates, dry run, re-thresholding, errors."""

import json
from pathlib import Path

from typer.testing import CliRunner

from purgemix.cli import app

runner = CliRunner()

GOOD = [
    ("Explain why the sky is blue.", "Sunlight is scattered by the air, and blue light is scattered the most. "
     "That is why the sky looks blue on a clear day."),
    ("Name three primary colors.", "Red, blue and yellow are the three traditional primary colors."),
    ("What is the boiling point of water at sea level?", "Water boils at 100 degrees Celsius at sea level."),
    ("Give a synonym for happy.", "A common synonym for happy is joyful."),
    ("Why do leaves change color in autumn?", "In autumn the chlorophyll breaks down, so the yellow and red "
     "pigments that were hidden become visible in the leaves."),
    ("Describe a cat in one sentence.", "A cat is a small, curious animal with soft fur and sharp claws."),
]


def _write(path: Path, rows):
    path.write_text(json.dumps([{"instruction": i, "input": "", "output": o} for i, o in rows]))
    return path


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


def _files(tmp_path):
    a = _write(tmp_path / "a.json", GOOD + [
        ("Summarise the plot of Hamlet.", "Prince Hamlet seeks revenge for his father's murder, and in the"),
        ("Translate nothing.", ""),
        ("What is 2 + 2?", "### Response: 4<|im_end|>"),
        ("Tell me about the moon.", "La lune est le seul satellite naturel de la Terre et elle tourne autour d'elle."),
    ])
    b = _write(tmp_path / "b.json", GOOD[:2] + [("Count to three.", "One, two, three.")])
    return a, b


def test_purge_writes_kept_dropped_priors_and_report(tmp_path):
    a, b = _files(tmp_path)
    out = tmp_path / "kept.jsonl"
    r = _run("purge", a, b, "-o", out, "--run-dir", tmp_path / "run", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["ledger_balanced"]
    kept = [json.loads(x) for x in out.read_text().splitlines()]
    dropped = {d["messages"][0]["content"]: d for d in
               map(json.loads, (tmp_path / "kept.dropped.jsonl").read_text().splitlines())}
    reasons = {k: d["purge"]["rules"] for k, d in dropped.items()}
    assert "truncated-response" in reasons["Summarise the plot of Hamlet."]
    assert "empty-response" in reasons["Translate nothing."]
    assert "template-artefact" in reasons["What is 2 + 2?"]
    assert "wrong-language-response" in reasons["Tell me about the moon."]
    dups = [d for d in dropped.values() if d["purge"]["reason"] == "exact-duplicate"]
    assert len(dups) == 2 and all(d["purge"]["duplicate_of"] for d in dups)  # cross-file duplicates
    assert len(kept) == len(GOOD) + 1
    rep = json.loads((tmp_path / "kept.report.json").read_text())
    assert rep["dropped_by_reason"]["exact-duplicate"] == 2
    assert rep["histograms"] and rep["examples"]["truncated-response"]
    assert "<svg" in (tmp_path / "kept.report.html").read_text()
    priors = json.loads((tmp_path / "kept.priors.json").read_text())
    assert priors["features"]["response.chars"]["count"] > 0


def test_report_from_the_workers_counts_equals_the_report_from_the_events(tmp_path):
    """The workers count each shard's drops for the report (a side file); a run directory without those files
    (written before they existed) is counted from the events: the two reports and dropped lists agree."""
    a, b = _files(tmp_path)
    out = tmp_path / "kept.jsonl"
    args = ("purge", a, b, "-o", out, "--run-dir", tmp_path / "run", "--shard-size", "3")
    assert _run(*args).exit_code == 0
    first = json.loads((tmp_path / "kept.report.json").read_text())
    dropped = (tmp_path / "kept.dropped.jsonl").read_bytes()
    side = list((tmp_path / "run").rglob("*.dropped.counts.json"))
    assert len(side) > 2
    for p in side:
        p.unlink()
    assert _run(*args).exit_code == 0  # resumes: every stage is done, only the report is made again
    again = json.loads((tmp_path / "kept.report.json").read_text())
    for rep in (first, again):
        rep["summary"].pop("elapsed_seconds")
    assert first == again and (tmp_path / "kept.dropped.jsonl").read_bytes() == dropped
    assert sum(len(v) for v in first["examples"].values()) > 3


def test_report_counts_merge_like_one_pass():
    from purgemix.purge.report import EXAMPLES, ReportCounts

    events = [{"id": f"r{i}", "outcome": "dropped", "reason": "x" if i % 3 else "y",
               "rules": ["x", "y"] if i % 4 == 0 else ["x" if i % 3 else "y"],
               "record": {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}],
                          "meta": {}}}
              for i in range(20)] + [{"id": "k", "outcome": "kept"}]
    whole = ReportCounts()
    for e in events:
        whole.add(e)
    merged = ReportCounts()
    for chunk in (events[:7], events[7:8], events[8:]):
        part = ReportCounts()
        for e in chunk:
            part.add(e)
        merged.merge(json.loads(json.dumps(part.to_json())))
    assert merged.to_json() == whole.to_json()
    assert all(len(v) == EXAMPLES for v in merged.examples.values())


def test_dry_run_and_rethreshold_reuse_scores(tmp_path):
    a, b = _files(tmp_path)
    run = tmp_path / "run"
    r = _run("purge", a, b, "--dry-run", "--run-dir", run, "--report-dir", tmp_path / "rep", "--json")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "rep" / "purge.report.html").exists()
    assert not list(tmp_path.glob("*.jsonl"))
    scores_done = next(run.glob("stages/*purge-scores/done.json"))
    before = scores_done.stat().st_mtime_ns
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: long\n    when: response.words > 15\n    reason: too long\n")
    r = _run("purge", a, b, "--dry-run", "--rules", rules, "--run-dir", run, "--report-dir", tmp_path / "rep",
             "--json")
    assert r.exit_code == 0, r.output
    assert scores_done.stat().st_mtime_ns == before  # scores reused, only the rules re-applied
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(summary["dropped_by_rule"]) <= {"long", "exact-duplicate", "near-duplicate"}


def test_bad_rules_fail_clearly(tmp_path):
    a, _ = _files(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    when: response.lenght > 3\n")
    r = _run("purge", a, "-o", tmp_path / "o.jsonl", "--rules", bad)
    assert r.exit_code == 2
    assert "bad.yaml:3" in r.output and "unknown feature 'response.lenght'" in r.output
    assert "Traceback" not in r.output


def test_rule_that_drops_everything_warns(tmp_path):
    a, _ = _files(tmp_path)
    rules = tmp_path / "all.yaml"
    rules.write_text("rules:\n  - name: everything\n    when: response.chars >= 0\n")
    r = _run("purge", a, "--dry-run", "--rules", rules, "--run-dir", tmp_path / "run", "--json")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert any("would drop every record" in w for w in summary["warnings"])


def test_list_features():
    r = _run("purge", "--list-features")
    assert r.exit_code == 0 and "response.dup_line_frac" in r.output


def test_reference_priors_and_bad_options(tmp_path):
    a, b = _files(tmp_path)
    r = _run("purge", b, "--dry-run", "--run-dir", tmp_path / "ref", "--report-dir", tmp_path / "refrep")
    assert r.exit_code == 0, r.output
    priors = tmp_path / "refrep" / "purge.priors.json"
    r = _run("purge", a, "-o", tmp_path / "o.jsonl", "--priors", priors, "--run-dir", tmp_path / "run", "--json")
    assert r.exit_code == 0, r.output
    r = _run("purge", a, "-o", tmp_path / "o.jsonl", "--priors", a)
    assert r.exit_code == 2 and "not a purgemix priors file" in r.output
    r = _run("purge", a, "-o", tmp_path / "o.jsonl", "--keep-by", "response.nope:max")
    assert r.exit_code == 2 and "--keep-by" in r.output
