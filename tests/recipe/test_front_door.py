"""One front door: every verb's pipeline is built from a recipe over the one ``DEFAULTS``, and a pipeline
names its own run directory."""

import json
from pathlib import Path

from typer.testing import CliRunner

from purgemix.cli import app
from purgemix.core.pipeline import InputSpec, OutputSpec
from purgemix.recipe.build import build_pipeline
from purgemix.recipe.load import DEFAULTS, settings_recipe
from purgemix.recipe.verbs import mix_pipeline, purge_pipeline


def _write(path: Path, n: int = 40) -> Path:
    path.write_text("".join(json.dumps({"instruction": f"Explain topic {i % 9} in detail", "input": "",
                                        "output": f"Topic {i % 9} is explained here with words {i}."}) + "\n"
                            for i in range(n)))
    return path


def test_settings_recipe_takes_only_what_was_set():
    r = settings_recipe({"mix.budget": 3, "mix.method": None, "run.shard_size": None})
    assert r["mix"]["budget"] == 3
    assert r["mix"]["method"] == DEFAULTS["mix"]["method"] and r["run"]["shard_size"] == DEFAULTS["run"]["shard_size"]


def test_the_mix_verb_and_a_recipe_build_the_same_fusion(tmp_path):
    """The same job by either door: generator, generation settings, seed and shard size from one DEFAULTS."""
    lq, hq = _write(tmp_path / "lq.jsonl"), _write(tmp_path / "hq.jsonl")
    settings = {"models.generator": "fake:mix", "models.embedder": "fake", "mix.quality": "heuristic"}
    verb = mix_pipeline(settings_recipe(settings), [str(lq)], [str(hq)], OutputSpec(str(tmp_path / "o.jsonl")))
    recipe = settings_recipe({**settings, "output.path": str(tmp_path / "r.jsonl")})
    recipe["inputs"] = [str(lq)]
    run = build_pipeline(recipe)
    fuse_verb = next(s for s in verb.stages if s.name == "fuse")
    fuse_run = next(s for s in run.stages if s.name == "fuse")
    assert fuse_verb.config.generation.max_tokens == DEFAULTS["mix"]["max_tokens"]
    assert fuse_verb.config.generation.seed == DEFAULTS["run"]["seed"]
    assert verb.shard_size == run.shard_size == DEFAULTS["run"]["shard_size"]
    same = ("llm", "config", "pairing", "k", "budget", "quality", "seed", "templates", "checks")
    assert {k: fuse_verb.params()[k] for k in same} == {k: fuse_run.params()[k] for k in same}
    assert type(fuse_verb.llm).__name__ == type(fuse_run.llm).__name__ == "CachedLLM"  # fake:mix cached on both


def test_a_pipeline_names_its_own_run_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _write(tmp_path / "in.jsonl")

    def purge(**settings):
        return purge_pipeline(settings_recipe(settings), [InputSpec(str(data))], None)

    a, b = purge(), purge()
    assert a.run.path == b.run.path and a.run.path.parent == Path("purgemix-runs")
    assert a.run.path.name.startswith("purge-")
    assert purge(**{"purge.dedup.threshold": 0.9}).run.path != a.run.path  # another dedup: another run
    # the rules leave the name out: other rules reuse the scores and duplicate decisions in the same folder
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: short\n    when: response.words < 3\n")
    assert purge(**{"purge.rules": str(rules)}).run.path == a.run.path


def test_purge_with_other_rules_reuses_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = _write(tmp_path / "in.jsonl")
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: short\n    when: response.words < 3\n")
    runner = CliRunner()
    first = runner.invoke(app, ["purge", str(data), "-o", "kept.jsonl", "--json"])
    assert first.exit_code == 0, first.output
    run_dir = Path(json.loads(first.stdout.strip().splitlines()[-1])["outputs"]["run_dir"])
    dedup_done = next(run_dir.glob("stages/*-purge-dedup/done.json"))
    stamp = dedup_done.stat().st_mtime_ns
    second = runner.invoke(app, ["purge", str(data), "-o", "kept.jsonl", "--rules", str(rules), "--json"])
    assert second.exit_code == 0, second.output
    assert Path(json.loads(second.stdout.strip().splitlines()[-1])["outputs"]["run_dir"]) == run_dir
    assert dedup_done.stat().st_mtime_ns == stamp  # the dedup was not recomputed
