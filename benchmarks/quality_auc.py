"""AUC of the default quality signal on a labelled set built from real data: clean Alpaca pairs vs
the same kind of pairs with injected noise (mismatched, truncated, shuffled, looping, generic or
corrupted responses).

    python benchmarks/quality_auc.py [--data ../shared/data/alpaca_random_9k.json] [--n 100]
        [--scorer qwen2.5-0.5b] [--rater qwen2.5-0.5b | openai:URL#MODEL] [--embedder minilm]

Prints the AUC of each signal, of the combined score with default weights (no labels used) and with
kNN-Bayes added (2-fold: the library is the other half, labelled 5 = clean, 0 = noisy).
IFD losses and ratings are cached, so re-runs are fast.

``--labels FILE`` measures against a judge's labels instead (``judge_labels.py``): the positives are the
pool's records whose triple is in FILE, and every signal, the default score, learned combinations
(cross-validated) and each selector's keep decision get an AUC with a bootstrap CI:

    python benchmarks/quality_auc.py --labels ../shared/data/alpagasus_helpful_t45.json \
        [--scorers qwen2.5-0.5b,smollm2-135m] [--selectors random,length,...] [--holdout ../shared/data/alpaca_5k.json]

``--sample N`` also measures what ``quality.sample: N`` gives: IFD/likelihood kept for a seeded
random N records only, estimated for the rest from purge features
(``rating/surrogate.py``); prints the Spearman correlation of the estimates with the measured values
on the records that were hidden, and the AUC of the combined score built from the estimates.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

NOISE = ("mismatch", "truncate", "shuffle", "repeat", "generic", "corrupt")
GENERIC = ["I'm not sure, it depends on many factors.", "That is a good question. There are many possible answers.",
           "Yes.", "Please provide more information.", "It is important to consider all aspects of this topic."]


def build(rows: list[dict], n: int, seed: int = 0) -> tuple[list[dict], np.ndarray, list[str]]:
    from purgemix.core.shapes import alpaca_to_record

    rng = random.Random(seed)
    rows = [r for r in rows if len(r["output"].split()) >= 8]
    rng.shuffle(rows)
    clean, noisy_src, donors = rows[:n], rows[n:2 * n], rows[2 * n:3 * n]
    recs, labels, kinds = [], [], []
    for r in clean:
        recs.append(alpaca_to_record(dict(r), "clean"))
        labels.append(1)
        kinds.append("clean")
    vocab = [w for d in donors for w in d["output"].split()]
    for i, r in enumerate(noisy_src):
        kind = NOISE[i % len(NOISE)]
        words = r["output"].split()
        if kind == "mismatch":
            out = donors[i]["output"]
        elif kind == "truncate":
            out = " ".join(words[: max(3, int(len(words) * rng.uniform(0.3, 0.6)))]).rstrip(".!?")
        elif kind == "shuffle":
            out = " ".join(rng.sample(words, len(words)))
        elif kind == "repeat":
            first = r["output"].split(". ")[0].rstrip(".") + "."
            out = " ".join([first] * 4)
        elif kind == "generic":
            out = rng.choice(GENERIC)
        else:
            out = " ".join(w if rng.random() > 0.25 else rng.choice(vocab) for w in words)
        recs.append(alpaca_to_record({**r, "output": out}, "noisy"))
        labels.append(0)
        kinds.append(kind)
    return recs, np.array(labels), kinds


def sampled_figures(recs: list[dict], y: np.ndarray, emb: np.ndarray, n: int, seed: int) -> dict:
    """Hide the IFD scores of all but ``n`` records, estimate them as ``quality.sample`` does, compare."""
    from purgemix.purge.features.base import score_records as purge_features
    from purgemix.rating.quality import auc, combine, signals
    from purgemix.rating.stages import QualityStage
    from purgemix.rating.surrogate import spearman

    recs = [{**r, "scores": dict(r["scores"])} for r in recs]
    purge_features(recs)
    truth = {k: np.array([r["scores"].get(k, np.nan) for r in recs], float) for k in ("ifd.loss_cond", "ifd.ifd")}
    rng = np.random.default_rng(seed)
    keep = set(rng.choice(len(recs), n, replace=False).tolist())
    hidden = [i for i in range(len(recs)) if i not in keep]
    for i in hidden:
        recs[i]["scores"] = {k: v for k, v in recs[i]["scores"].items() if not k.startswith("ifd.")}
    stage = QualityStage(None, sample=n, seed=seed)
    stage._estimate(recs, hidden)
    est = {k: np.array([r["scores"].get(k, np.nan) for r in recs], float) for k in truth}
    h = np.array(hidden)
    ok = np.isfinite(truth["ifd.ifd"][h])
    score, _ = combine(signals(recs))
    return {"n": n, "cv_spearman": {k: stage.report.get(k, {}).get("spearman") for k in truth},
            "hidden_spearman": {k: round(spearman(est[k][h][ok], truth[k][h][ok]), 3) for k in truth},
            "combined_auc": round(auc(score, y), 3),
            "signals": {k: round(auc(v, y), 3) for k, v in signals(recs).items()}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_random_9k.json"))
    ap.add_argument("--n", type=int, default=100, help="clean records (and as many noisy ones)")
    ap.add_argument("--scorer", default="qwen2.5-0.5b")
    ap.add_argument("--rater", default="", help="also rate with this model (slow on CPU)")
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--seed", type=int, default=0, help="which records and noise (0: the set the design was tuned on)")
    ap.add_argument("--json", default="", help="write the figures here")
    ap.add_argument("--sample", type=int, default=0, help="also estimate IFD from a scored sample of this size")
    ap.add_argument("--max-length", type=int, default=1024, help="tokens the scorer reads per record")
    ap.add_argument("--labels", default="", help="a judge's positives (JSON list of instruction/input/output)")
    ap.add_argument("--scorers", default="qwen2.5-0.5b,smollm2-135m",
                    help="with --labels: causal LMs whose likelihood and IFD are signals (the first is the default score's)")
    ap.add_argument("--selectors", default="random,length,perplexity,ifd,superfilter,knn,kcenter",
                    help="with --labels: selectors whose keep decision at --budget is scored (the LLM ones need --rater)")
    ap.add_argument("--budget", type=int, default=0, help="with --labels: records each selector keeps (0: the positives' count)")
    ap.add_argument("--limit", type=int, default=None, help="with --labels: the first N records of --data only")
    ap.add_argument("--negatives", type=int, default=1065,
                    help="with --labels: every positive and this many seeded negatives (0: the whole pool)")
    ap.add_argument("--holdout", default="", help="with --labels: train the learned rows on --data, test on this file")
    ap.add_argument("--holdout-limit", type=int, default=0)
    ap.add_argument("--top-features", type=int, default=12, help="with --labels: purge features listed")
    args = ap.parse_args()
    if not Path(args.data).exists():
        print(f"skip: {args.data} not found")
        return
    if args.labels:
        return labels_main(args)
    from purgemix.models import load_embedder, load_llm, load_scorer
    from purgemix.rating.ds2 import apply_rating, rate_conversations
    from purgemix.rating.ifd import apply_scores, score_records
    from purgemix.rating.knn_bayes import KNNBayes
    from purgemix.rating.quality import auc, combine, signals
    from purgemix.rating.stages import embed_text

    recs, y, kinds = build(json.load(open(args.data)), args.n, args.seed)
    t0 = time.perf_counter()
    scorer = load_scorer(args.scorer, max_length=args.max_length)
    res = score_records(scorer, recs)
    recs = [apply_scores(r, x) for r, x in zip(recs, res)]
    print(f"scored {len(recs)} with {scorer.name} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    if args.rater:
        t0 = time.perf_counter()
        llm = load_llm(args.rater)
        ratings = rate_conversations(llm, [r["messages"] for r in recs])
        recs = [apply_rating(r, x) for r, x in zip(recs, ratings)]
        print(f"rated with {llm.name} in {time.perf_counter() - t0:.0f}s "
              f"(parsed {sum(x.ok for x in ratings)}/{len(ratings)})", file=sys.stderr)
    emb = load_embedder(args.embedder).embed([embed_text(r) for r in recs])
    sig = signals(recs)
    figures = {"n": len(recs), "seed": args.seed, "signals": {k: round(auc(v, y), 3) for k, v in sig.items()}}
    score, _ = combine(sig)
    figures["combined"] = round(auc(score, y), 3)
    figures["combined_rules_as_vote"] = round(auc(combine(sig, rules_gate=False)[0], y), 3)
    # kNN-Bayes, 2-fold: each half is scored against the other half as the rated library
    rng = np.random.default_rng(0)
    fold = rng.permutation(len(recs)) % 2
    kb = np.full(len(recs), np.nan)
    for f in (0, 1):
        lib = fold != f
        model = KNNBayes.fit(emb[lib], np.where(y[lib] == 1, 5, 0))
        kb[fold == f] = model.expected(emb[fold == f])
    figures["signals"]["knn_bayes_2fold"] = round(auc(kb, y), 3)
    score2, _ = combine({**sig, "knn_bayes": kb})
    figures["combined_with_knn_bayes"] = round(auc(score2, y), 3)
    figures["per_noise_kind_combined"] = {
        k: round(auc(np.concatenate([score[y == 1], score[np.array(kinds) == k]]),
                     np.concatenate([np.ones((y == 1).sum()), np.zeros((np.array(kinds) == k).sum())])), 3)
        for k in NOISE}
    if args.sample:
        figures["sampled"] = sampled_figures(recs, y, emb, args.sample, args.seed)
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


def labels_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from judge_labels import run, table

    t0 = time.perf_counter()
    figures = run(args)
    figures["seconds"] = round(time.perf_counter() - t0)
    print(json.dumps(figures, indent=1))
    out = Path(__file__).parent / "results" / "quality_labels.md"
    out.parent.mkdir(exist_ok=True)
    lines = [f"# Quality signals against a judge's labels ({Path(args.labels).name})", "",
             f"Pool: {figures['pool']} records of {Path(args.data).name}, {figures['positives']} positives. "
             f"Command: `python {' '.join(sys.argv)}`.", "",
             table([(k, tuple(v)) for k, v in figures["signals"].items()]), "",
             "Purge features with the largest |AUC - 0.5| (as stored; below 0.5 points the other way):", "",
             table([(k, tuple(v)) for k, v in figures["purge_features_top"].items()])]
    if "selectors" in figures:
        sel = {k: v for k, v in figures["selectors"].items() if k != "budget"}
        lines += ["", f"Keep decisions at a budget of {figures['selectors']['budget']} (AUC of yes/no = balanced accuracy):",
                  "", table([(k, tuple(v)) for k, v in sel.items()])]
    if "holdout" in figures:
        lines += ["", "Hold-out (trained on the pool, tested on another file's records):", "",
                  "```", json.dumps(figures["holdout"], indent=1), "```"]
    out.write_text("\n".join(lines) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
