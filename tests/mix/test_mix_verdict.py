"""The audit: a judge's verdict of each new pair against its sources, in the lineage and the stage report."""

from _run_pool import FAKES, write_pool

from purgemix.mix.verdict import judge_verdicts, verdict_counts
from purgemix.models import FakeLLM
from purgemix.testing.mix_responder import MixResponder


def test_verdicts_name_the_new_pair_wherever_it_is_placed():
    sources = [("What is 2+2?", "4"), ("What is 3+3?", "6")]
    new = ("What are 2+2 and 3+3?", "2+2 is 4 and 3+3 is 6, both small sums of equal numbers.")
    items = [(f"id-{k}", sources, new) for k in range(12)]
    verdicts = judge_verdicts(FakeLLM(MixResponder(), name="fake:judge"), items)
    assert len({v["position"] for v in verdicts}) > 1  # the new pair's position varies with the id
    assert all(v["verdict"] == "new" and v["model"] == "fake:judge" for v in verdicts)
    # the judge prefers a source when a source has the longer answer
    worse = judge_verdicts(FakeLLM(MixResponder()), [("x", [("Q?", "a long and complete answer here")], ("Q2?", "no"))])
    assert worse[0]["verdict"] == "source"


def test_an_unreadable_verdict_is_recorded_as_such():
    v = judge_verdicts(FakeLLM(lambda conv, i: "I think the first one."), [("x", [("Q?", "A.")], ("Q2?", "B."))])
    assert v[0]["verdict"] == "unparsed" and verdict_counts(v) == {"new": 0, "source": 0, "tie": 0, "unparsed": 1}


def test_a_run_records_the_judge_in_the_lineage_and_the_report(tmp_path, monkeypatch):
    import json

    from typer.testing import CliRunner

    from purgemix.cli import app

    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path / "cache"))
    data = tmp_path / "pool.jsonl"
    write_pool(data, 80, truncate_every=0)
    res = CliRunner().invoke(app, ["run", "quick", str(data), *FAKES, "mix.budget=6",
                                   "-o", str(tmp_path / "o.jsonl"), "--run-dir", str(tmp_path / "run"), "--json"])
    assert res.exit_code == 0, res.output
    fuse = json.loads(res.stdout.strip().splitlines()[-1])["reports"]["fuse"]
    assert fuse["judge"]["model"] == "fake:mix" and fuse["judge"]["new"] + fuse["judge"]["source"] > 0
    from purgemix.core.rundir import StageDir
    from purgemix.report.sections.common import iter_records

    fuse_dir = StageDir(next((tmp_path / "run" / "stages").glob("*-fuse")))
    made = [r for batch in iter_records(fuse_dir) for r in batch if (r.get("lineage") or {}).get("stage") == "fuse"]
    judged = [r for r in made if r["lineage"].get("judge")]
    assert judged and all(r["lineage"]["judge"]["verdict"] in ("new", "source", "tie") for r in judged)
    from purgemix.report import write_run_report

    page, _ = write_run_report(tmp_path / "run", tmp_path / "report.html")
    assert "<b>judge</b> (fake:mix)" in page.read_text()
