"""purgemix rate / curate / split end to end with the dummy server and the fake embedder."""

from __future__ import annotations

import json
import random

import orjson
import pytest
from typer.testing import CliRunner

pytest.importorskip("httpx")

from purgemix.cli import app
from purgemix.testing.dummy_server import DummyServer


def rating_responder(messages, i):
    text = messages[-1]["content"]
    if "unratable" in text:
        return "This is a fine conversation."  # never parses
    r = random.Random(text)
    return '{"rarity": %d, "complexity": %d, "informativeness": %d, "overall": %d' % tuple(
        r.randint(1, 10) for _ in range(4))


@pytest.fixture
def data(tmp_path):
    rows = [{"instruction": f"Question {i} about topic {i % 7}", "input": "", "output": f"Answer {i} on {i % 7}"}
            for i in range(40)]
    rows.append({"instruction": "unratable", "input": "", "output": "x"})
    p = tmp_path / "in.json"
    p.write_text(json.dumps(rows))
    return p


def test_rate_curate_split(tmp_path, data, monkeypatch):
    monkeypatch.setenv("PURGEMIX_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    out = tmp_path / "rated.jsonl"
    with DummyServer(responder=rating_responder, failure_rate=0.2, kinds=("500", "429", "drop")) as srv:
        args = ["rate", str(data), "-o", str(out), "-m", f"openai:{srv.url}#dummy", "--run-dir",
                str(tmp_path / "run1"), "--json"]
        r = runner.invoke(app, args)
        assert r.exit_code == 0, r.output
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        assert summary["ratings"] == {"rated": 41, "parsed": 40, "failed": 1, "attempts": 43}
        manifest = json.loads((tmp_path / "run1" / "manifest.json").read_text())
        assert manifest["stages"]["rate"]["report"]["usage"]["cache_misses"] == 43
        recs = [orjson.loads(line) for line in out.read_text().splitlines()]
        assert len(recs) == 41 and len({r["id"] for r in recs}) == 41
        bad = [r for r in recs if r["scores"]["ds2.parsed"] == 0]
        assert len(bad) == 1 and "ds2.score" not in bad[0]["scores"] and bad[0]["meta"]["_rating"]["error"]
        # same command again, recomputing the stage: everything from the cache
        r = runner.invoke(app, args + ["--force"])
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        assert summary["model_usage"]["cache_misses"] == 0 and summary["model_usage"]["cache_hits"] == 43

    cur = tmp_path / "curated.jsonl"
    r = runner.invoke(app, ["curate", str(out), "-o", str(cur), "--embedder", "fake", "--run-dir",
                            str(tmp_path / "run2"), "--json"])
    assert r.exit_code == 0, r.output
    recs = [orjson.loads(line) for line in cur.read_text().splitlines()]
    rated = [x for x in recs if x["scores"]["ds2.parsed"]]
    assert all("ds2.curated" in x["scores"] and 0 <= x["scores"]["ds2.longtail"] <= 1 for x in rated)
    assert "ds2.curated" not in [x for x in recs if not x["scores"]["ds2.parsed"]][0]["scores"]
    manifest = json.loads((tmp_path / "run2" / "manifest.json").read_text())
    assert len(manifest["stages"]["curate"]["report"]["transition_matrix"]) == 6

    hq, lq, mid, un = (tmp_path / f"{n}.jsonl" for n in ("hq", "lq", "mid", "un"))
    r = runner.invoke(app, ["split", str(cur), "--hq", str(hq), "--lq", str(lq), "--lq-max", "1",
                            "--middle", str(mid), "--unrated", str(un), "--json"])
    assert r.exit_code == 0, r.output
    counts = json.loads(r.stdout.strip().splitlines()[-1])["counts"]
    assert sum(counts.values()) == 41 and counts["unrated"] == 1
    for path, ok in ((hq, lambda s: s >= 4), (lq, lambda s: s <= 1), (mid, lambda s: 1 < s < 4)):
        for line in path.read_text().splitlines():
            assert ok(orjson.loads(line)["scores"]["ds2.curated"])
