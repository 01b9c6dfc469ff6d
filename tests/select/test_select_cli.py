"""purgemix select: N records out, the rest in the ledger as 'not selected by NAME', a re-run resumes."""

import json

from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.core.ledger import check_ledger
from purgemix.core.rundir import RunDir

runner = CliRunner()


def test_select_length_keeps_n_and_the_ledger_balances(tmp_path):
    src = tmp_path / "pool.json"
    src.write_text(json.dumps([{"instruction": f"q{i}", "input": "", "output": "word " * (i + 1)} for i in range(30)]))
    out, run_dir = tmp_path / "out.jsonl", tmp_path / "run"
    args = ["select", str(src), "--strategy", "length", "-n", "7", "-o", str(out), "--run-dir", str(run_dir), "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(kept) == 7 and {len(r["messages"][-1]["content"].split()) for r in kept} == set(range(24, 31))
    ledger = check_ledger(RunDir(run_dir))
    assert ledger["balanced"] and ledger["dropped"] == 23
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and out.read_text().count("\n") == 7


def test_select_list_and_unknown_strategy():
    assert "kcenter" in runner.invoke(app, ["select", "--list"]).output
    res = runner.invoke(app, ["select", "x.json", "--strategy", "nope", "-o", "o.jsonl"])
    assert res.exit_code == 2 and "unknown selector" in res.output
