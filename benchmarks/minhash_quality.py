"""Near-duplicate recall and precision against exact Jaccard: purgemix, rensa and datasketch in one run.

    python benchmarks/minhash_quality.py [--data ../shared/data/alpaca_random_9k.json] [--bases 3000]
        [--threshold 0.8] [--ngram 5] [--num-perm 128]

A planted set: ``--bases`` Alpaca records (instruction + output), each with 0-3 near copies made by
replacing, deleting or inserting a random share of words (1-30%), and some exact copies; then the exact
Jaccard of word n-gram sets (purgemix's words: lower-cased ``\\w+``) gives the truth. A true pair has
J >= threshold. The ground truth checks every pair that shares an n-gram seen in at most 200 documents
(a pair at J >= 0.8 shares 80% of its n-grams, so only all-common texts could hide; their share is printed).

Each method groups the documents (a union of its verified candidate pairs); recall is the share of true
pairs that end in one group, precision the share of same-group pairs that are true (pairs of a group are
all counted, as a drop-all-but-one dedup acts on them). Timings are CPU-seconds of this process from the
texts: shingling, signatures, LSH and verification. rensa and datasketch use the same words and the same
n-grams (as strings), 128 permutations; rensa at 16 x 8 bands (its usual setting at 0.8), datasketch at its
own optimal banding for the threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_result  # noqa: E402


def planted(rows: list[dict], bases: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    rows = [r for r in rows if len((r["instruction"] + " " + r["output"]).split()) >= 25]
    rng.shuffle(rows)
    vocab = [w for r in rows[:2000] for w in r["output"].split()]
    docs = []
    for r in rows[:bases]:
        text = r["instruction"] + "\n" + r["output"]
        docs.append(text)
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            words = text.split()
            rate = rng.uniform(0.01, 0.30)
            out = []
            for w in words:
                x = rng.random()
                if x < rate / 3:
                    continue  # delete
                if x < 2 * rate / 3:
                    out.append(rng.choice(vocab))  # replace
                    continue
                out.append(w)
                if x > 1 - rate / 3:
                    out.append(rng.choice(vocab))  # insert
            docs.append(" ".join(out))
        if rng.random() < 0.05:
            docs.append(text)
    rng.shuffle(docs)
    return docs


def shingle_sets(docs: list[str], n: int) -> list[frozenset[str]]:
    from purgemix.purge.dedup.words import words_of

    out = []
    for w in words_of(docs):
        out.append(frozenset(" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))) if w else frozenset())
    return out


def truth(sets: list[frozenset[str]], threshold: float, max_df: int = 200) -> tuple[set[tuple[int, int]], int]:
    index: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(sets):
        for g in s:
            index[g].append(i)
    cand: set[tuple[int, int]] = set()
    for ids in index.values():
        if 1 < len(ids) <= max_df:
            for a in range(len(ids)):
                for b in range(a + 1, len(ids)):
                    cand.add((ids[a], ids[b]))
    uncovered = sum(1 for s in sets if s and all(len(index[g]) > max_df for g in s))
    true = {(a, b) for a, b in cand if len(sets[a] & sets[b]) / len(sets[a] | sets[b]) >= threshold}
    return true, uncovered


def union(n: int, pairs) -> np.ndarray:
    from purgemix.purge.dedup.groups import components

    pairs = list(pairs)
    a = np.array([p[0] for p in pairs], dtype=np.int64)
    b = np.array([p[1] for p in pairs], dtype=np.int64)
    return components(n, a, b)


def score(groups: np.ndarray, true: set[tuple[int, int]], sets) -> dict[str, float]:
    members: dict[int, list[int]] = defaultdict(list)
    for i, g in enumerate(groups.tolist()):
        members[g].append(i)
    same = [(a, b) for m in members.values() if len(m) > 1 for i, a in enumerate(m) for b in m[i + 1:]]
    hit = sum(1 for a, b in true if groups[a] == groups[b])
    good = sum(1 for p in same if p in true)
    return {"recall": hit / max(1, len(true)), "precision": good / max(1, len(same)), "same_group_pairs": len(same)}


def run_purgemix(docs, args):
    from purgemix.core.record import make_record
    from purgemix.purge.dedup.groups import Deduplicator

    t0 = time.process_time()
    recs = [make_record([{"role": "user", "content": d.split("\n", 1)[0]},
                         {"role": "assistant", "content": d.split("\n", 1)[1] if "\n" in d else ""}],
                        id=str(i), source="p") for i, d in enumerate(docs)]
    t_build = time.process_time() - t0
    t0 = time.process_time()
    d = Deduplicator(threshold=args.threshold, num_perm=args.num_perm, ngram=args.ngram, keep_by="first")
    for s in range(0, len(recs), 10_000):
        d.add(recs[s:s + 10_000])
    res = d.decide_arrays()
    cpu = time.process_time() - t0
    groups = np.arange(len(docs))
    groups[res["dropped"]] = res["kept"]
    return groups, cpu, f"{d.bands} x {d.rows}", t_build


def verified_pairs(mhs: list, lsh, threshold: float) -> set[tuple[int, int]]:
    """Each document's LSH candidates, kept when the estimated Jaccard reaches the threshold."""
    for i, m in enumerate(mhs):
        lsh.insert(i, m)
    pairs = set()
    for i, m in enumerate(mhs):
        for j in lsh.query(m):
            if j > i and m.jaccard(mhs[j]) >= threshold:
                pairs.add((i, j))
    return pairs


def run_rensa(docs, sets_str, args):
    from rensa import RMinHash, RMinHashLSH

    t0 = time.process_time()
    mhs = []
    for s in sets_str:
        m = RMinHash(num_perm=args.num_perm, seed=42)
        m.update(list(s))
        mhs.append(m)
    lsh = RMinHashLSH(threshold=args.threshold, num_perm=args.num_perm, num_bands=16)
    pairs = verified_pairs(mhs, lsh, args.threshold)
    cpu = time.process_time() - t0
    return union(len(docs), pairs), cpu, "16 x 8"


def run_datasketch(docs, sets_str, args):
    from datasketch import MinHash, MinHashLSH

    t0 = time.process_time()
    mhs = []
    for s in sets_str:
        m = MinHash(num_perm=args.num_perm, seed=1)
        m.update_batch([g.encode() for g in s])
        mhs.append(m)
    lsh = MinHashLSH(threshold=args.threshold, num_perm=args.num_perm)
    pairs = verified_pairs(mhs, lsh, args.threshold)
    cpu = time.process_time() - t0
    return union(len(docs), pairs), cpu, f"{lsh.b} x {lsh.r}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "alpaca_random_9k.json"))
    ap.add_argument("--bases", type=int, default=3000)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--num-perm", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if not Path(args.data).exists():
        print(f"skip: {args.data} not found")
        return
    docs = planted(json.load(open(args.data)), args.bases, args.seed)
    sets = shingle_sets(docs, args.ngram)
    true, uncovered = truth(sets, args.threshold)
    print(f"{len(docs)} documents, {len(true)} true pairs (J >= {args.threshold}, word {args.ngram}-grams); "
          f"{uncovered} documents made only of common n-grams", file=sys.stderr)
    rows = []
    groups, cpu, banding, _ = run_purgemix(docs, args)
    rows.append(("purgemix", banding, cpu, score(groups, true, sets)))
    t0 = time.process_time()
    sets_str = shingle_sets(docs, args.ngram)  # the other two start from the same words: shingling counts
    shingle_cpu = time.process_time() - t0
    for name, fn in (("rensa", run_rensa), ("datasketch", run_datasketch)):
        try:
            groups, cpu, banding = fn(docs, sets_str, args)
        except ImportError as e:
            print(f"{name}: not installed ({e}); pip install '.[bench]'", file=sys.stderr)
            continue
        rows.append((name, banding, cpu + shingle_cpu, score(groups, true, sets)))
    load = os.getloadavg()
    lines = [f"{len(docs)} planted documents from {Path(args.data).name} ({args.bases} bases, seed {args.seed}), "
             f"{len(true)} true pairs at J >= {args.threshold} on word {args.ngram}-grams, {args.num_perm} "
             f"permutations; {os.cpu_count()} CPUs, load {load[0]:.2f} at the end.", "",
             "| method | bands x rows | recall | precision | same-group pairs | CPU s (from the texts) |",
             "|---|---|---:|---:|---:|---:|"]
    for name, banding, cpu, s in rows:
        lines.append(f"| {name} | {banding} | {s['recall']:.4f} | {s['precision']:.4f} | {s['same_group_pairs']} | "
                     f"{cpu:.2f} |")
    text = "\n".join(lines)
    write_result("minhash_quality", "MinHash quality", text)


if __name__ == "__main__":
    main()
