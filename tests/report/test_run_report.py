"""purgemix report: a small run with every kind of stage (purge, fuse, distil, mix; fakes only) turned
into one self-contained HTML page; sections, numbers, no external resources, renders in Chromium."""

import re
import shutil
import subprocess

import numpy as np
import orjson
import pytest
from _mix_rows import rows
from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.core.ledger import check_ledger
from purgemix.core.pipeline import InputSpec, OutputSpec, Pipeline
from purgemix.core.rundir import RunDir
from purgemix.mix.distil import DistilConfig
from purgemix.mix.rank import SplitSpec
from purgemix.mix.stages import DistilStage, FuseStage, MixStage
from purgemix.models import FakeEmbedder, FakeLLM
from purgemix.purge.stages.dedup import DedupStage
from purgemix.purge.stages.rules import RuleStage
from purgemix.purge.stages.scores import ScoreStage
from purgemix.report import build_run_report, render_html, write_run_report
from purgemix.testing.mix_responder import MixResponder

TITLES = ["Funnel: records per stage", "Purge: features and rules", "Rule hits",
          "Feature histograms before and after the purge", "Clusters", "New pairs and their sources", "Ledger",
          "Time, tokens and cache"]


def _write_input(path):
    data = rows() + [
        {"instruction": "Explain gravity", "input": "", "output": "", "split": "lq"},
        {"instruction": "Say hi", "input": "", "output": "N/A", "split": "lq"},
        {"instruction": "Write <noinput> ### Response:", "input": "", "output": "Gravity pulls things down.",
         "split": "lq"},
    ]
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in data) + b"{not json\n")
    return len(data) + 1


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    n_rows = _write_input(tmp / "in.jsonl")
    emb, split = FakeEmbedder(), SplitSpec(meta_key="split")
    quality = lambda pairs: [1.0] * len(pairs)  # noqa: E731
    stages = [ScoreStage(), DedupStage(), RuleStage(),
              FuseStage(FakeLLM(MixResponder(truncate_first=True)), emb, k=3, budget=4, split=split, quality=quality),
              DistilStage(FakeLLM(MixResponder()), emb, quality, config=DistilConfig(samples=2), split=split),
              MixStage(target=14, ratio="5:5", embedder=emb, split=split)]
    pipe = Pipeline([InputSpec(str(tmp / "in.jsonl"))], stages, OutputSpec(str(tmp / "out.jsonl")), tmp / "run",
                    shard_size=10)
    pipe.execute()  # the stages' own reports (clustering figures, model usage) go with their counters
    return tmp, n_rows


def test_report_sections_and_numbers(run):
    tmp, n_rows = run
    rep = build_run_report(tmp / "run")
    manifest = RunDir(tmp / "run").manifest()
    assert rep["sections"] == ["funnel", "purge", "ratings", "clusters", "examples", "ledger", "costs"]
    assert "mix.quality" in {h["key"] for h in rep["ratings"]["scores"]}  # scores of the mixed records
    f = rep["funnel"]
    assert (f["read"], f["quarantined"], f["ingested"]) == (n_rows, 1, n_rows - 1)
    assert f["written"] == 14 == len((tmp / "out.jsonl").read_bytes().splitlines())
    by_stage = {s["stage"]: s for s in f["stages"]}
    assert by_stage["02-purge-dedup"]["dropped"] == {"exact-duplicate": 1}
    assert by_stage["03-purge-rules"]["dropped"] == manifest["stages"]["purge-rules"]["dropped"]
    assert by_stage["04-fuse"]["merged"] == {"fused": manifest["stages"]["fuse"]["merged"]}
    assert by_stage["05-distil"]["created"] == manifest["stages"]["distil"]["created"]

    p = rep["purge"]
    purge_drops = sum(sum(manifest["stages"][s]["dropped"].values()) for s in ("purge-dedup", "purge-rules"))
    assert p["dropped"] == purge_drops == sum(r["first"] for r in p["rules"])
    rules = {r["name"]: r for r in p["rules"]}
    assert rules["empty-response"]["fired"] >= 1 and rules["non-answer"]["fired"] >= 1
    assert rules["exact-duplicate"]["first"] == 1
    assert p["before_records"] == n_rows - 1 and p["after_records"] == manifest["stages"]["purge-rules"]["out"]
    h = {x["feature"]: x for x in p["histograms"]}
    assert sum(h["response.words"]["before"]) == p["before_records"]
    assert sum(h["response.words"]["after"]) == p["after_records"]
    assert any(x["thresholds"] for x in p["histograms"])  # rule thresholds drawn on their features

    c = rep["clusters"]
    assert c["stages"]["04-fuse"]["created"] == manifest["stages"]["fuse"]["created"]
    assert c["stages"]["05-distil"]["cluster_sizes"]  # from lineage.cluster_size
    assert c["info"]["fuse"]["k"] == 3
    assert {m["stage"] for m in c["maps"]} == {"04-fuse", "05-distil"}
    # fuse and distil store their assignments: the maps are the real clusters, nothing is missing
    assert not rep["missing"]
    assert {p["stage"] for p in c["persisted"]} == {"04-fuse", "05-distil"}
    assert all("assignments stored by the stage" in m["source"] for m in c["maps"])

    ex = rep["examples"]["items"]
    assert {e["stage"] for e in ex} == {"04-fuse", "05-distil"}
    for e in ex:
        assert e["parents"] and not any(p.get("missing") for p in e["parents"])
        assert e["lineage"]["template"]["hash"] and e["lineage"]["model"] == "fake:echo"
        assert "quality" in e["rewards"]
        assert e["fate"]["outcome"] in ("written", "dropped", "merged")
    assert sum(s["in_final_output"] for s in c["stages"].values()) == rep["ledger"]["created_in_output"]

    led = check_ledger(RunDir(tmp / "run"))
    assert rep["ledger"]["balanced"] is True and rep["ledger"]["outputs"] == led["outputs"] == 14
    usage = {u["where"]: u for u in rep["costs"]["usage"]}
    fuse = usage["04-fuse.usage"]  # the fusion's own model usage, counted by the fake model
    assert fuse["requests"] >= 4 and fuse["tokens_in"] > 0 and fuse["errors"] == 0
    assert rep["costs"]["models"] == {"fuse": "fake:echo", "distil": "fake:echo"}
    assert [s["stage"] for s in rep["costs"]["stages"]][0] == "00-ingest"


def test_report_html_is_self_contained(run, tmp_path):
    tmp, n_rows = run
    path, rep = write_run_report(tmp / "run", tmp_path / "r.html")
    page = path.read_text()
    for t in TITLES:
        assert t in page
    assert f"{n_rows} rows read" in page and "14 written" in page
    tokens_in = next(u["tokens_in"] for u in rep["costs"]["usage"] if u["where"] == "04-fuse.usage")
    assert "balanced" in page and f"{tokens_in:,}" in page  # ledger and tokens in
    assert page.count("<svg") >= 10
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "<link" not in page and "@import" not in page and "url(" not in page
    # record text is escaped, never markup
    assert "<noinput>" not in page and "&lt;noinput&gt;" in page


def test_report_cli(run, tmp_path):
    tmp, n_rows = run
    out = tmp_path / "cli.html"
    r = CliRunner().invoke(app, ["report", str(tmp / "run"), "-o", str(out), "--json"])
    assert r.exit_code == 0, r.output
    summary = orjson.loads(r.stdout.strip().splitlines()[0])
    assert summary["report"] == str(out) and out.stat().st_size == summary["bytes"]
    assert summary["read"] == n_rows and summary["written"] == 14 and summary["ledger_balanced"] is True
    r = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert r.exit_code != 0 and "not a purgemix run directory" in r.output


def test_report_without_purge_or_mix(tmp_path):
    n_rows = _write_input(tmp_path / "in.jsonl")
    Pipeline([InputSpec(str(tmp_path / "in.jsonl"))], [], OutputSpec(str(tmp_path / "o.jsonl")), tmp_path / "run",
             shard_size=10).execute()
    rep = build_run_report(tmp_path / "run")
    assert rep["sections"] == ["funnel", "ledger", "costs"]
    assert rep["funnel"]["written"] == n_rows - 1
    Pipeline([InputSpec(str(tmp_path / "in.jsonl"))], [], None, tmp_path / "profile", shard_size=10).execute()
    rep = build_run_report(tmp_path / "profile")  # a run that writes no data file (like profile)
    assert rep["funnel"]["written"] is None and rep["funnel"]["final"] == n_rows - 1
    assert f"{n_rows - 1}</b> after the last stage" in render_html(rep)
    page = render_html(rep)
    assert "Funnel: records per stage" in page and "Purge: features" not in page and "New pairs" not in page
    assert "No model usage" in page


def test_report_reads_stored_cluster_assignments(run, tmp_path):
    tmp, _ = run
    copy = tmp_path / "run"
    shutil.copytree(tmp / "run", copy)
    labels = np.array([0, 0, 1, 1, 1, -1])
    np.savez(copy / "stages" / "04-fuse" / "clusters.npz", ids=np.array([f"r{i}" for i in range(6)]),
             labels=labels, embeddings=np.random.default_rng(0).normal(size=(6, 8)).astype(np.float32))
    rep = build_run_report(copy)
    ps = rep["clusters"]["persisted"][0]
    assert (ps["clusters"], ps["unassigned"], ps["sizes"]) == (2, 1, {"2": 1, "3": 1})
    maps = {m["stage"]: m for m in rep["clusters"]["maps"]}
    assert "clusters.npz" in maps["04-fuse"]["source"] and len(maps["04-fuse"]["points"]) == 6
    assert not rep["missing"]


def _chromium(*args, tmp_path):
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium is not installed")
def test_report_renders_in_chromium(run, tmp_path):
    tmp, n_rows = run
    path, _ = write_run_report(tmp / "run", tmp_path / "r.html")
    dom = _chromium("--dump-dom", path.resolve().as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for t in TITLES:
        assert t in dom.stdout
    assert dom.stdout.count("<svg") >= 10 and "<circle" in dom.stdout
    shot = tmp_path / "shot.png"
    r = _chromium("--window-size=1280,2000", f"--screenshot={shot}", path.resolve().as_uri(), tmp_path=tmp_path)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 30_000  # a blank page compresses to a few KB


def test_report_shows_failed_new_pairs(tmp_path):
    _write_input(tmp_path / "in.jsonl")
    split = SplitSpec(meta_key="split")
    stages = [FuseStage(FakeLLM(MixResponder(always_truncate=True)), FakeEmbedder(), k=3, budget=3, split=split),
              MixStage(quality_cut=None, split=split)]
    Pipeline([InputSpec(str(tmp_path / "in.jsonl"))], stages, OutputSpec(str(tmp_path / "o.jsonl")),
             tmp_path / "run", shard_size=10).execute()
    rep = build_run_report(tmp_path / "run")
    st = rep["clusters"]["stages"]["01-fuse"]
    assert st["failed"] == st["created"] > 0 and st["in_output"] == 0 and st["in_final_output"] == 0
    failed = [e for e in rep["examples"]["items"] if not e["ok"]]
    assert failed and all(e["failure"]["reason"].startswith("fusion failed") for e in failed)
    assert all(e["parents"] and not any(p.get("missing") for p in e["parents"]) for e in failed)
    page = render_html(rep)
    assert "failed: fusion failed" in page and 'class="example failed"' in page


def test_report_of_a_rated_and_curated_run(tmp_path):
    import random

    from purgemix.rating.stages import CurateStage, RateStage

    def responder(messages, i):
        r = random.Random(messages[-1]["content"])
        return '{"rarity": %d, "complexity": %d, "informativeness": %d, "overall": %d}' % tuple(
            r.randint(1, 10) for _ in range(4))

    _write_input(tmp_path / "in.jsonl")
    rate, curate = RateStage(llm=FakeLLM(responder)), CurateStage(emb=FakeEmbedder(), k=3, longtail_k=3)
    pipe = Pipeline([InputSpec(str(tmp_path / "in.jsonl"))], [rate, curate], OutputSpec(str(tmp_path / "o.jsonl")),
                    tmp_path / "run", shard_size=10)
    pipe.execute()
    rep = build_run_report(tmp_path / "run")
    assert rep["sections"] == ["funnel", "ratings", "ledger", "costs"]
    rt = rep["ratings"]
    assert rt["rate"]["rated"] == rate.counts["rated"] == 36
    assert rt["curate"]["raw_histogram"] == curate.report()["raw_histogram"]
    scores = {h["key"]: h for h in rt["scores"]}
    assert sum(scores["ds2.score"]["counts"]) == scores["ds2.score"]["records"] == rate.counts["parsed"]
    assert "ds2.longtail" in scores and rt["stage"] == "02-curate"
    page = render_html(rep)
    assert "Ratings and scores" in page and "Curation: raw and corrected ratings" in page
