import orjson
from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.core.ledger import check_ledger
from purgemix.core.rundir import RunDir

TOPICS = [["water", "boil", "temperature", "celsius", "steam", "kettle"],
          ["paris", "france", "seine", "capital", "louvre", "museum"],
          ["python", "list", "function", "loop", "code", "syntax"]]


def write(tmp_path):
    lq, hq = [], []
    for words in TOPICS:
        for i in range(8):
            w = words[i % 6:] + words[: i % 6]
            row = {"instruction": f"Tell me about {w[0]} and {w[1]} with {w[2]} case {i}?", "input": "",
                   "output": f"It concerns {w[0]} {w[1]} {w[3]} {w[4]} in case {i}."}
            (lq if i < 6 else hq).append(row)
    (tmp_path / "lq.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lq))
    (tmp_path / "hq.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in hq))


def invoke(tmp_path, *extra):
    res = CliRunner().invoke(app, ["mix", str(tmp_path / "lq.jsonl"), "--hq", str(tmp_path / "hq.jsonl"),
                                   "-o", str(tmp_path / "out.jsonl"), "--model", "fake:mix", "--embedder", "fake",
                                   "--quality", "heuristic", "--quality-cut", "0.1", "--run-dir",
                                   str(tmp_path / "run"), "--json", *extra])
    assert res.exit_code == 0, res.output
    return orjson.loads(res.stdout.strip().splitlines()[-1])


def test_cli_mix_distil(tmp_path):
    write(tmp_path)
    summary = invoke(tmp_path, "--method", "distil", "--samples", "2", "--target", "10")
    assert summary["ledger_balanced"] and summary["written"] == 10
    assert check_ledger(RunDir(tmp_path / "run"))["balanced"]
    out = [orjson.loads(line) for line in (tmp_path / "out.jsonl").read_bytes().splitlines()]
    assert any(r.get("lineage", {}).get("operator") == "distil" for r in out)


def test_cli_mix_fuse_controls(tmp_path):
    write(tmp_path)
    summary = invoke(tmp_path, "--method", "fuse", "--k", "3", "--pairing", "random", "--no-feedback")
    assert summary["ledger_balanced"]
    assert summary["reports"]["fuse"]["pairing"] == "random"


def test_cli_mix_bad_options(tmp_path):
    write(tmp_path)
    res = CliRunner().invoke(app, ["mix", str(tmp_path / "lq.jsonl"), "-o", str(tmp_path / "o.jsonl"),
                                   "--method", "blend", "--model", "fake:mix"])
    assert res.exit_code == 2 and "--method" in res.output


def test_a_missing_input_is_the_first_error_even_when_the_model_is_missing_too(tmp_path, monkeypatch):
    from purgemix.models import registry

    monkeypatch.setattr(registry, "available", lambda: {name: False for name in registry.MODELS})
    write(tmp_path)
    for args in (["mix", str(tmp_path / "typo.jsonl"), "--hq", str(tmp_path / "hq.jsonl"), "-o", str(tmp_path / "o.jsonl"),
                  "--model", "qwen2.5-1.5b"],
                 ["run", "quick", str(tmp_path / "typo.jsonl"), "-o", str(tmp_path / "o.jsonl"),
                  "models.generator=qwen2.5-1.5b"],
                 ["select", str(tmp_path / "typo.jsonl"), "--strategy", "alpagasus", "-n", "3", "-o",
                  str(tmp_path / "o.jsonl"), "--rater", "qwen2.5-1.5b"]):
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 3 and "typo.jsonl: no such file or directory" in res.output, (args[0], res.output)


def test_a_malformed_ratio_is_one_line_not_a_traceback(tmp_path):
    lq, hq = tmp_path / "lq.jsonl", tmp_path / "hq.jsonl"
    for p in (lq, hq):
        p.write_text('{"instruction": "a b c", "output": "d e f"}\n')
    res = CliRunner().invoke(app, ["mix", str(lq), "--hq", str(hq), "-o", str(tmp_path / "o.jsonl"), "--ratio", "5-5"])
    assert res.exit_code == 2 and "--ratio: ratio must look like 'NEW:HQ'" in res.output
    assert "Traceback" not in res.output
