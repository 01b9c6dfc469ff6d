"""Deduplication: exact after normalisation, near-duplicates by MinHash-LSH, best member kept."""

from purgemix.purge.dedup.groups import Deduplicator
from purgemix.purge.dedup.minhash import optimal_bands


def _rec(i, instruction, response, source="a", words=None):
    r = {"id": f"r{i}", "source": source, "meta": {}, "scores": {},
         "messages": [{"role": "user", "content": instruction}, {"role": "assistant", "content": response}]}
    if words is not None:
        r["scores"]["purge.response.words"] = words
    return r


LONG = ("Photosynthesis is the process by which green plants and some other organisms use sunlight to "
        "synthesize foods from carbon dioxide and water. It generally involves the green pigment chlorophyll "
        "and generates oxygen as a byproduct, which is released into the atmosphere for animals to breathe.")


def test_optimal_bands_follow_the_threshold():
    b_hi, r_hi = optimal_bands(0.9, 128)
    b_lo, r_lo = optimal_bands(0.5, 128)
    assert b_hi * r_hi <= 128 and b_lo * r_lo <= 128
    assert r_hi > r_lo  # a higher threshold needs more rows per band


def test_exact_near_and_distinct():
    recs = [
        _rec(0, "Explain photosynthesis.", LONG, "a"),
        _rec(1, "explain   PHOTOSYNTHESIS!", LONG.upper(), "b"),  # same after normalisation, other file
        _rec(2, "Explain photosynthesis.", LONG.replace("green plants", "green land plants"), "a"),
        _rec(3, "Name a prime number.", "Seven is a prime number.", "a"),
    ]
    d = Deduplicator(threshold=0.7, keep_by="first")
    d.add(recs[:2])
    d.add(recs[2:])
    res = d.decide()
    drop = res["drop"]
    assert drop["r1"][:2] == ["r0", "exact-duplicate"]
    assert drop["r2"][:2] == ["r0", "near-duplicate"]
    assert "r0" not in drop and "r3" not in drop
    assert res["stats"]["cross_source"] == 1


def test_keeps_the_best_member_by_score():
    recs = [_rec(0, "Q", LONG, words=10), _rec(1, "Q", LONG, words=50), _rec(2, "Q", LONG, words=20)]
    res = Deduplicator(keep_by="response.words:max").__class__(keep_by="response.words:max")
    res.add(recs)
    drop = res.decide()["drop"]
    assert set(drop) == {"r0", "r2"} and drop["r0"][0] == "r1"
    d = Deduplicator(keep_by="response.words:min")
    d.add(recs)
    assert set(d.decide()["drop"]) == {"r1", "r2"}


def test_deterministic():
    recs = [_rec(i, f"Question {i % 7}", LONG if i % 2 else f"Answer number {i}") for i in range(60)]
    a = Deduplicator()
    a.add(recs)
    b = Deduplicator()
    b.add(recs)
    assert a.decide()["drop"] == b.decide()["drop"]


def test_dedup_stage_computes_its_keep_feature_like_the_scores_stage():
    """The dedup stage runs before scoring and computes the keep-by feature itself: the same decisions as
    a deduplicator that reads it from scored records."""
    from purgemix.purge.stages.dedup import DedupStage
    from purgemix.purge.stages.scores import ScoreStage

    recs = [_rec(i, f"Question {i % 5}", LONG[: 40 + 7 * i] if i % 3 else f"Answer number {i % 4}",
                 source="ab"[i % 2]) for i in range(40)]
    scored = ScoreStage().process([{**r, "meta": {}} for r in recs]).records
    via_scores = Deduplicator()
    via_scores.add(scored)
    stage = DedupStage().fit([[dict(r, meta={}) for r in recs[:25]], [dict(r, meta={}) for r in recs[25:]]])
    assert stage["drop"] == via_scores.decide()["drop"] and stage["drop"]


def test_dedup_stage_names_the_features_for_an_unknown_keep_by():
    import pytest

    from purgemix.purge.stages.dedup import DedupStage

    with pytest.raises(ValueError, match="keep_by: unknown feature 'response.nope'.*response.words"):
        DedupStage(keep_by="response.nope:max").prepare([_rec(0, "Q", "A")])


def test_dedup_stage_table_in_a_file(tmp_path):
    from purgemix.purge.stages.dedup import DedupStage

    recs = [_rec(i, "Explain photosynthesis.", LONG) for i in range(5)]
    st = DedupStage(workdir=str(tmp_path))
    st.TABLE_MIN = 0
    state = st.fit([recs[:3], recs[3:]])
    assert "drop_file" in state and "drop" not in state
    res = st.process(recs, state)
    assert [r["id"] for r in res.records] == ["r0"]
    assert {e["duplicate_of"] for e in res.events} == {"r0"}


def _prepared(tmp_path, parts, stage):
    """An ingest-like folder with the parts as shards and the stage's own folder with their prepare files."""
    from pathlib import Path

    from purgemix.core.rundir import StageDir

    prev, own = StageDir(Path(tmp_path) / "ingest"), StageDir(Path(tmp_path) / "dedup-stage")
    prev.path.mkdir(parents=True)
    own.path.mkdir(parents=True)
    for k, part in enumerate(parts):
        prev.write_shard(k, part, [], {"in": len(part), "out": len(part)})
        for suffix, data in stage.prepare(prev.read_records(k)).items():
            (own.path / f"{own.shard_name(k)}.prep.{suffix}").write_bytes(data)
    prev.mark_complete({"shards": len(parts)})
    return prev, own


def test_dedup_fit_from_prepared_files_matches_fit_from_records(tmp_path):
    from purgemix.purge.stages.dedup import DedupStage

    recs = [_rec(i, f"Question {i % 5}", LONG if i % 3 else f"Answer number {i % 4}", source="ab"[i % 2])
            for i in range(40)]
    for table_min in (1000, 0):
        for near in (True, False):
            a, b = DedupStage(near=near), DedupStage(near=near, workdir=str(tmp_path / f"b{table_min}{near}"))
            a.TABLE_MIN = b.TABLE_MIN = table_min
            prev, own = _prepared(tmp_path / f"{table_min}{near}", [recs[:15], recs[15:]], a)
            sa, sb = a.fit_dir(prev, own), b.fit(prev.iter_records())
            assert sa["stats"] == sb["stats"] and sa["stats"]["dropped"] > 0
            if table_min == 0:  # the decision table lives in the stage's own folder by default
                assert sa["drop_file"].startswith(str(own.path.resolve()))
            ea, eb = (st.process([{**r, "meta": {}} for r in recs], state).events for st, state in ((a, sa), (b, sb)))
            assert [(e["id"], e["duplicate_of"], e["reason"]) for e in ea] == \
                [(e["id"], e["duplicate_of"], e["reason"]) for e in eb]
            assert ea

def test_components_label_each_node_with_its_components_lowest_node():
    import numpy as np

    from purgemix.purge.dedup.groups import components

    rng = np.random.default_rng(0)
    n = 500
    a, b = rng.integers(0, n, 300), rng.integers(0, n, 300)
    a, b = np.concatenate([a, np.arange(100, 199)]), np.concatenate([b, np.arange(101, 200)])  # plus a chain
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            x = parent[x]
        return x

    for x, y in zip(a.tolist(), b.tolist()):
        rx, ry = find(x), find(y)
        parent[max(rx, ry)] = min(rx, ry)
    assert components(n, a, b).tolist() == [find(i) for i in range(n)]
    assert components(3, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)).tolist() == [0, 1, 2]


def _reference_sketch(texts, hasher):
    """Word by word in Python integers: the word hash, shingle hash and signature that the vectorised
    code computes, and the exact key."""
    import re

    import numpy as np

    from purgemix.purge.dedup import words as dedup

    m64 = 2**64 - 1

    def mix(x):
        x ^= x >> 30
        x = x * 0xBF58476D1CE4E5B9 & m64
        x ^= x >> 27
        x = x * 0x94D049BB133111EB & m64
        return x ^ x >> 31

    def poly(values, salt):
        h = sum(v * pow(dedup._Q, j, 2**64) for j, v in enumerate(values)) & m64
        return mix(h ^ (len(values) * salt & m64))

    exact, sigs = [], []
    for t in texts:
        words = re.findall(r"\w+", t.lower())
        wh = [poly(w.encode(), 0xC2B2AE3D27D4EB4F) for w in words]
        exact.append(poly(wh, 0x165667B19E3779F9))
        k = hasher.ngram
        grams = [wh[j:j + k] for j in range(max(len(wh) - k + 1, 1 if wh else 0))]
        shingles = []
        for g in grams:
            key = 0
            for h in [w | 1 for w in g] + [0] * (k - len(g)):  # a short document: zero padding
                key = (key ^ h) * 0x94D049BB133111EB & m64
                key ^= key >> 29
            shingles.append(key)
        sig = [0xFFFFFFFF] * hasher.num_perm
        for i in range(hasher.num_perm):
            if shingles:
                sig[i] = min((int(hasher.a[i]) * s + int(hasher.b[i])) & m64 for s in shingles) >> 32
        sigs.append(sig)
    return np.array(exact, dtype=np.uint64).view(np.int64), np.array(sigs, dtype=np.uint32)


def _random_texts(n, seed):
    import random

    rng = random.Random(seed)
    vocab = ["alpha", "Beta", "gamma", "δέλτα", "epsilon", "zeta_2", "eta", "théta", "iota", "kappa", "7", "x"]
    punct = [" ", " ", "  ", ", ", ". ", "\n", "!? ", " - "]
    base = [[rng.choice(vocab) for _ in range(rng.randint(0, 40))] for _ in range(n // 3)]
    texts = []
    for _ in range(n):
        ws = list(rng.choice(base))
        for _ in range(rng.randint(0, 3)):  # a few edits: near duplicates of the base texts
            if ws:
                ws[rng.randrange(len(ws))] = rng.choice(vocab)
        texts.append("".join(w + rng.choice(punct) for w in ws))
    return texts


def test_vectorised_sketch_matches_a_word_by_word_reference(monkeypatch):
    import numpy as np

    from purgemix.purge.dedup import words as dedup
    from purgemix.purge.dedup.minhash import MinHasher
    from purgemix.purge.dedup.words import hash_words, join_words, word_bytes, words_of

    texts = _random_texts(90, 3) + ["", "   ", "one", "one two", "ÉCOLE école", "a_b c"]
    hasher = MinHasher(32, 3)
    ref_exact, ref_sig = _reference_sketch(texts, hasher)
    exact, sig, has = hasher.sketch_docs(word_bytes(texts))
    assert np.array_equal(exact, ref_exact) and np.array_equal(sig, ref_sig)
    assert has.tolist() == [bool(words) for words in words_of(texts)]
    # from already split words (the scores stage): the same keys and signatures
    assert np.array_equal(hash_words(join_words(words_of(texts)))[2], exact)
    assert np.array_equal(hasher.signatures(words_of(texts))[0], sig)
    # documents longer than a block and chunks of bytes: the same as one at a time
    hasher.BLOCK = 7
    long = [" ".join(texts)] + texts
    exact2, sig2, _ = hasher.sketch_docs(word_bytes(long))
    assert np.array_equal(sig2[1:], sig) and np.array_equal(exact2[1:], exact)
    assert np.array_equal(sig2[:1], _reference_sketch(long[:1], hasher)[1])
    # the words of a batch hashed in chunks of a few bytes (a longer document: a chunk of its own)
    monkeypatch.setattr(dedup, "_CHUNK", 64)
    monkeypatch.setattr(dedup, "_POW", [])
    exact3, sig3, _ = hasher.sketch_docs(word_bytes(long))
    assert np.array_equal(sig3, sig2) and np.array_equal(exact3, exact2)


def test_candidate_pairs_match_a_dictionary_of_buckets():
    import numpy as np

    from purgemix.purge.dedup.minhash import band_keys
    from purgemix.purge.dedup.words import words_of

    texts = _random_texts(300, 5)
    recs = [_rec(i, t, "") for i, t in enumerate(texts)]
    d = Deduplicator(threshold=0.5, num_perm=64, keep_by="first")
    d.add(recs[:100])
    d.add(recs[100:])
    _, sig = _reference_sketch(texts, d.hasher)
    keys = band_keys(sig[:, : d.bands * d.rows], d.bands, d.rows)
    buckets: dict = {}
    ref = set()
    for i, row in enumerate(keys.tolist()):
        if not words_of([texts[i]])[0]:
            continue
        for bi, k in enumerate(row):
            members = buckets.setdefault((bi, k), [])
            ref.update((m, i) for m in members)  # every two members of a bucket, not only the first
            members.append(i)
    assert any(len(m) > 2 for m in buckets.values())  # the data has buckets where the two rules differ
    pairs = d.candidate_pairs()
    assert set(map(tuple, pairs.tolist())) == ref and len(pairs) == len(ref)
    assert np.array_equal(pairs, np.unique(pairs, axis=0))


def test_spilled_state_stays_on_disk_and_leaves_nothing_behind(tmp_path):
    texts = _random_texts(240, 7)
    recs = [_rec(i, t, "", source="ab"[i % 2]) for i, t in enumerate(texts)]
    plain, spilled = Deduplicator(keep_by="first"), Deduplicator(keep_by="first", spill_dir=str(tmp_path / "sp"))
    for d in (plain, spilled):
        for s in range(0, len(recs), 50):
            d.add(recs[s:s + 50])
    # in memory: exact key, keep-by value, source code and mask per record; band keys and signatures on disk
    held = sum(a.nbytes for part in (spilled.exact, spilled.keep, spilled.sources, spilled.has) for a in part)
    assert held == 21 * len(recs)
    assert spilled.decide() == plain.decide()
    assert list((tmp_path / "sp").iterdir()) == []  # anonymous temporary files, closed by the decision


def test_dedup_fit_from_prepared_files_again_after_a_resume(tmp_path):
    from purgemix.purge.stages.dedup import DedupStage

    recs = [_rec(i, t, "") for i, t in enumerate(_random_texts(60, 11))]
    prev, own = _prepared(tmp_path, [recs[:25], recs[25:]], DedupStage())
    first = DedupStage(workdir=str(tmp_path / "dedup")).fit_dir(prev, own)
    again = DedupStage(workdir=str(tmp_path / "dedup")).fit_dir(prev, own)  # the fit of a resumed run
    assert first == again and first["stats"]["dropped"] > 0
    assert [p.name for p in (tmp_path / "dedup").iterdir() if "minhash" in p.name] == []

def test_id_list_is_a_compact_sequence_of_the_ids():
    from purgemix.purge.dedup.groups import IdList

    ids = IdList()
    batches = [["r0", "é-1", ""], [], ["x" * 300], [f"id{i}" for i in range(50)]]
    for b in batches:
        ids.extend(b)
    flat = [i for b in batches for i in b]
    assert len(ids) == len(flat) and list(ids) == flat
    assert [ids[i] for i in (0, 1, 2, 3, 53, -1)] == [flat[i] for i in (0, 1, 2, 3, 53, -1)]
    some = [53, 0, 3, 3, 2, 1, 20]
    assert ids.take(some) == [flat[i] for i in some] and ids.take([]) == []
    import pytest

    with pytest.raises(IndexError):
        ids[len(flat)]


def test_feature_column_alone_equals_the_scorers_column():
    """The dedup's keep-by feature is computed alone, before scoring: the same values as the scorer's."""
    import numpy as np

    from purgemix.purge.features.base import Batch, feature_column, score_batch

    recs = [_rec(i, f"Question {i}?", (LONG[: 20 + 9 * i] + "\n\n- item") if i % 2 else "") for i in range(12)]
    full = score_batch(Batch(recs))
    for f in ("response.words", "instruction.words", "response.chars", "response.lines", "pair.overlap"):
        if f in full:
            assert np.array_equal(np.asarray(feature_column(recs, f)), np.asarray(full[f])), f


def test_prepare_inside_ingest_sees_renamed_ids_like_a_separate_pass(tmp_path, monkeypatch):
    """Exact copies get the same content id, renamed ``id.1`` by the driver after ingest; the dedup's
    prepare pass run inside the ingest tasks must name them as the separate pass (force=True) does."""
    import json

    from purgemix.core.pipeline import InputSpec
    from purgemix.recipe.verbs import run_purge

    src = tmp_path / "in.jsonl"
    rows = [{"instruction": f"Question {i % 7}", "input": "", "output": LONG if i % 2 else f"Answer {i % 5}"}
            for i in range(60)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    import purgemix.core.shard_tasks as shard_tasks

    separate = []
    real = shard_tasks.prepare_shard
    monkeypatch.setattr(shard_tasks, "prepare_shard", lambda *a: separate.append(a[-1]) or real(*a))
    out = {}
    for force in (False, True):
        d = tmp_path / f"f{force}"
        separate.clear()
        run_purge([InputSpec(str(src))], str(d / "k.jsonl"), run_dir=d / "run", shard_size=25, force=force)
        prep = sorted(p.name for p in (d / "run" / "stages" / "01-purge-dedup").glob("*.prep.json"))
        assert len(prep) == 3
        assert separate == ([0, 1, 2] if force else [])  # without force: prepared inside the ingest tasks
        renamed = [p for p in (d / "run" / "stages" / "00-ingest").glob("*.renames.json") if json.loads(p.read_text())]
        assert renamed  # the copies were renamed
        out[force] = ((d / "k.jsonl").read_bytes(), (d / "k.dropped.jsonl").read_bytes())
    assert out[False] == out[True]
    dropped = [json.loads(x) for x in out[False][1].splitlines()]
    assert any("." in r["purge"].get("duplicate_of", "") or "." in r["id"] for r in dropped)


def test_dedup_on_stored_lines_writes_what_the_record_path_writes(tmp_path, monkeypatch):
    """The dedup's ``process_lines`` (records kept as their stored JSON lines, none decoded but the report's
    examples) leaves the same shard files, dropped list and report as ``process`` on decoded records: with
    renamed ids, a record that has a ``purge`` key of its own, and more duplicates than examples."""
    import json

    from purgemix.core.pipeline import InputSpec
    from purgemix.purge.stages.dedup import DedupStage
    from purgemix.recipe.verbs import run_purge

    src = tmp_path / "in.jsonl"
    rows = [{"instruction": f"Question {i % 7}", "input": "", "output": LONG if i % 2 else f"Answer {i % 5}"}
            for i in range(60)]
    rows[13] = {"messages": [{"role": "user", "content": "Question 6"}, {"role": "assistant", "content": LONG}],
                "meta": {"purge": "an input's own field"}}
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    runs = {}
    for by_lines in (True, False):
        if not by_lines:
            monkeypatch.delattr(DedupStage, "process_lines")
        d = tmp_path / f"lines{by_lines}"
        run_purge([InputSpec(str(src))], str(d / "k.jsonl"), run_dir=d / "run", shard_size=25)
        stage = d / "run" / "stages" / "01-purge-dedup"
        files = {p.name: p.read_bytes() for p in sorted(stage.iterdir()) if not p.name.endswith("done.json")}
        report = json.loads((d / "k.report.json").read_text())
        report["summary"].pop("elapsed_seconds")
        runs[by_lines] = files, (d / "k.jsonl").read_bytes(), (d / "k.dropped.jsonl").read_bytes(), report
    assert runs[True] == runs[False]
    dropped = [json.loads(x) for x in runs[True][2].splitlines()]
    assert len([r for r in dropped if r["purge"]["reason"].endswith("duplicate")]) > 3
    assert any(r["meta"].get("purge") for r in dropped) or any(
        json.loads(x)["meta"].get("purge") for x in runs[True][1].splitlines())


def test_bucket_pairs_are_every_two_members_and_first_and_chain_for_big_buckets(monkeypatch):
    import numpy as np

    from purgemix.purge.dedup import groups

    pos = np.array([0, 5, 9, 2, 3], dtype=np.int64)  # buckets [0, 5, 9] and [2, 3]
    keys = groups._bucket_pairs(pos, np.array([0, 3]), np.array([3, 2]), n=10)
    assert sorted((k // 10, k % 10) for k in keys.tolist()) == [(0, 5), (0, 9), (2, 3), (5, 9)]
    monkeypatch.setattr(groups, "BUCKET_ALL_PAIRS", 3)
    big = groups._bucket_pairs(np.arange(5, dtype=np.int64), np.array([0]), np.array([5]), n=10)
    assert sorted({(k // 10, k % 10) for k in big.tolist()}) == [(0, 1), (0, 2), (0, 3), (0, 4), (1, 2), (2, 3), (3, 4)]


def test_a_third_near_copy_joins_its_group_through_any_member():
    """B and C are near copies of each other; A is close to B only. All three end in one group."""
    base = " ".join(f"w{i}" for i in range(60))
    b = base.replace("w10 ", "x10 ")
    c = b.replace("w50 ", "x50 ")
    a = base
    d = Deduplicator(threshold=0.8, keep_by="first")
    d.add([_rec(0, "t", a, "s"), _rec(1, "t", b, "s"), _rec(2, "t", c, "s")])
    drop = d.decide()["drop"]
    assert set(drop) == {"r1", "r2"} and {v[0] for v in drop.values()} == {"r0"}
