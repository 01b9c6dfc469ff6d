"""Quality signals and selectors measured against a judge's labels (``quality_auc.py --labels FILE``).

The positives are the records of the pool whose exact (instruction, input, output) triple is in FILE (for
``alpagasus_helpful_t45.json``: a strong LLM judge rated them >= 4.5 of 5; 355 of the 9,229 Alpaca records);
every other record of the pool is a negative. Nothing here was fitted to these labels except the rows
marked "learned", which are cross-validated (5 folds, out-of-fold predictions) and, with ``--holdout``,
also trained on the whole pool and tested on another file's records (not in the pool) with the same labels.

Printed: the AUC of every signal with a stratified bootstrap 95% CI (signals oriented as the library uses
them, higher = better; purge features as stored, so an AUC below 0.5 means the feature points the other
way), the default quality score, learned combinations, and each selector's keep decision at a budget
(the AUC of a yes/no decision is its balanced accuracy).

The records are scored as ``purgemix select`` reads them (the ingest's records, so its IFD cache is
shared). The ``run`` recipes compute the quality score after the purge's text normalisation, which changes
the text of some records slightly (38 of 300 in one check, a median loss difference of 0.07).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from purgemix.core.record import Record

LLM_SELECTORS = ("alpagasus", "deita", "instag", "ds2-raw", "ds2")


def labelled_pool(data: str, labels: str, *, limit: int | None = None, negatives: int = 0,
                  seed: int = 0) -> tuple[list[Record], np.ndarray]:
    """The records of ``data`` (Alpaca JSON) and 1 where the judge's file holds the same triple; with
    ``negatives``, every positive and a seeded random sample of that many negatives, in file order (the AUC
    does not depend on the class balance, and a 0.5B scorer costs ~1.5 s per record on 2 cores)."""
    from purgemix.core.shapes import alpaca_to_record

    def triple(r: dict) -> tuple[str, str, str]:
        return (r.get("instruction") or "").strip(), (r.get("input") or "").strip(), (r.get("output") or "").strip()

    positives = {triple(r) for r in json.load(open(labels))}
    rows = json.load(open(data))[:limit]
    recs = [alpaca_to_record({**r, "id": f"{Path(data).stem}-{i}"}, Path(data).name) for i, r in enumerate(rows)]
    y = np.array([triple(r) in positives for r in rows], dtype=int)
    if negatives and negatives < int((y == 0).sum()):
        neg = np.random.default_rng(seed).choice(np.flatnonzero(y == 0), negatives, replace=False)
        keep = np.sort(np.concatenate([np.flatnonzero(y == 1), neg]))
        recs, y = [recs[i] for i in keep], y[keep]
    return recs, y


def auc_ci(scores: np.ndarray, y: np.ndarray, *, resamples: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """ROC AUC and a stratified bootstrap 95% interval (positives and negatives resampled apart)."""
    from scipy.stats import rankdata

    s = np.asarray(scores, float)
    ok = np.isfinite(s)
    s, y = s[ok], np.asarray(y)[ok]
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if not len(pos) or not len(neg):
        return float("nan"), float("nan"), float("nan")

    def one(p: np.ndarray, n: np.ndarray) -> float:
        r = rankdata(np.concatenate([s[p], s[n]]))
        return float((r[:len(p)].sum() - len(p) * (len(p) + 1) / 2) / (len(p) * len(n)))

    rng = np.random.default_rng(seed)
    boot = [one(rng.choice(pos, len(pos)), rng.choice(neg, len(neg))) for _ in range(resamples)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return one(pos, neg), float(lo), float(hi)


def scorer_signals(recs: list[Record], specs: Sequence[str], max_length: int) -> dict[str, np.ndarray]:
    """Likelihood, IFD and the response-alone loss under each causal LM (cached by request)."""
    from purgemix.models import LazyScorer
    from purgemix.rating.ifd import score_records

    out = {}
    for spec in specs:
        t0 = time.perf_counter()
        res = score_records(LazyScorer(spec, max_length=max_length), recs)  # loaded only for uncached records
        cond = np.array([r.loss_conditional if r.error is None else np.nan for r in res], float)
        unc = np.array([r.loss_unconditional if r.error is None else np.nan for r in res], float)
        out[f"{spec} likelihood (-NLL | prompt)"] = -cond
        out[f"{spec} IFD (lower)"] = -(cond / unc)
        out[f"{spec} response-alone likelihood"] = -unc
        print(f"scored {len(recs)} with {spec} in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return out


def embedding_signals(recs: list[Record], embedder: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from purgemix.core.record import instruction_of, response_of
    from purgemix.models import load_embedder
    from purgemix.rating.stages import embed_text
    from purgemix.vectors.neighbours import longtail

    emb = load_embedder(embedder)
    whole = np.asarray(emb.embed([embed_text(r) for r in recs]), np.float32)
    ins = np.asarray(emb.embed([instruction_of(r) for r in recs]), np.float32)
    res = np.asarray(emb.embed([response_of(r) or " " for r in recs]), np.float32)
    cos = (ins * res).sum(1) / (np.linalg.norm(ins, axis=1) * np.linalg.norm(res, axis=1) + 1e-9)
    return {"instruction-response cosine": cos, "long-tail (kNN distance)": longtail(whole, k=10)}, whole


def purge_signals(recs: list[Record]) -> dict[str, np.ndarray]:
    from purgemix.purge.features.base import score_records

    copy = [{**r, "scores": {}} for r in recs]
    score_records(copy)
    keys = sorted({k for r in copy for k, v in r["scores"].items() if isinstance(v, (int, float))})
    out = {}
    for k in keys:
        v = np.array([float(r["scores"][k]) if isinstance(r["scores"].get(k), (int, float)) else np.nan
                      for r in copy])
        if np.isfinite(v).sum() > 1 and np.nanstd(v) > 0:
            out[f"purge {k}"] = v
    return out


def learned(features: dict[str, np.ndarray], y: np.ndarray, *, folds: int = 5, seed: int = 0,
            kind: str = "logistic") -> tuple[np.ndarray, Any]:
    """Out-of-fold probabilities of a model on the given features (NaN imputed with the median), and the model
    refitted on everything (for a hold-out test)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.stack([features[k] for k in sorted(features)], 1)

    def model():
        if kind == "logistic":
            return make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                                 LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000))
        return HistGradientBoostingClassifier(max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                                              class_weight="balanced", random_state=seed)

    oof = np.full(len(y), np.nan)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y):
        oof[test] = model().fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    return oof, model().fit(X, y)


def knn_bayes_cv(emb: np.ndarray, y: np.ndarray, *, folds: int = 5, seed: int = 0) -> np.ndarray:
    """kNN-Bayes expected class, each fold scored against the others as the rated library (5 = positive)."""
    from purgemix.rating.knn_bayes import KNNBayes

    fold = np.random.default_rng(seed).permutation(len(y)) % folds
    out = np.full(len(y), np.nan)
    for f in range(folds):
        lib = fold != f
        out[fold == f] = KNNBayes.fit(emb[lib], np.where(y[lib] == 1, 5, 0)).expected(emb[fold == f])
    return out


def selector_decisions(recs: list[Record], y: np.ndarray, names: Sequence[str], budget: int, embedder: str,
                       llm: Any = None) -> dict[str, np.ndarray]:
    """1 where the selector keeps the record at the budget; run on records carrying ``ifd.*`` and
    ``superfilter.*`` scores."""
    from purgemix.models import load_embedder
    from purgemix.select.stage import SelectStage

    emb = load_embedder(embedder)
    out = {}
    for name in names:
        t0 = time.perf_counter()
        st = SelectStage(name, budget, embedder=emb, llm=llm)
        kept = {r["id"] for res in st.run([[{**r, "scores": dict(r["scores"])} for r in recs]]) for r in res.records}
        out[name] = np.array([r["id"] in kept for r in recs], dtype=float)
        print(f"select {name}: {len(kept)} kept in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    return out


def with_scores(recs: list[Record], specs: dict[str, str], max_length: int) -> list[Record]:
    """``recs`` with ``PREFIX.*`` IFD scores under each scorer (``{"ifd": "qwen2.5-0.5b", ...}``)."""
    from purgemix.models import LazyScorer
    from purgemix.rating.ifd import apply_scores, score_records

    for prefix, spec in specs.items():
        res = score_records(LazyScorer(spec, max_length=max_length), recs)
        recs = [apply_scores(r, x, prefix=prefix) for r, x in zip(recs, res)]
    return recs


def table(rows: list[tuple[str, tuple[float, float, float]]]) -> str:
    out = ["| signal | AUC | 95% CI |", "|---|---:|---|"]
    out += [f"| {k} | {a:.3f} | {lo:.3f}–{hi:.3f} |" for k, (a, lo, hi) in rows]
    return "\n".join(out)


def run(args: Any) -> dict[str, Any]:
    from purgemix.rating.quality import combine, signals

    recs, y = labelled_pool(args.data, args.labels, limit=args.limit, negatives=args.negatives, seed=args.seed)
    print(f"pool {len(recs)} records, {int(y.sum())} judge positives", file=sys.stderr)
    scorers = [s for s in args.scorers.split(",") if s]
    default_scorer = scorers[0] if scorers else "qwen2.5-0.5b"
    recs = with_scores(recs, {"ifd": default_scorer, "superfilter": "smollm2-135m"}, args.max_length)
    sig: dict[str, np.ndarray] = {}
    sig.update(scorer_signals(recs, scorers, args.max_length))
    emb_sig, emb = embedding_signals(recs, args.embedder)
    sig.update(emb_sig)
    sig["response words"] = np.array([len((r["messages"][-1]["content"]).split()) for r in recs], float)
    base = signals(recs)
    sig["rules (quality.rules)"] = base["rules"]
    default, _ = combine(base)
    sig["default quality score (likelihood + IFD, rules veto)"] = default
    # the same recipe with the signals oriented as the selection papers orient them, no labels used: Cherry
    # keeps high IFD, "Long is more" keeps long answers
    ifd_up = -sig[f"{default_scorer} IFD (lower)"]
    lit, _ = combine({"ifd": ifd_up, "length": sig["response words"], "rules": base["rules"]},
                     {"ifd": 0.5, "length": 0.5})
    sig["papers' orientation: high IFD + long answers, rules veto (no labels)"] = lit
    sig["kNN-Bayes on the labels (5-fold CV)"] = knn_bayes_cv(emb, y)
    purge = purge_signals(recs)
    model_feats = {**{k: v for k, v in sig.items() if not k.startswith(("default", "kNN-Bayes"))}, **purge}
    t0 = time.perf_counter()
    sig["learned: logistic regression, all features (5-fold CV)"], logit = learned(model_feats, y)
    sig["learned: gradient boosting, all features (5-fold CV)"], boost = learned(model_feats, y, kind="boost")
    print(f"learned combinations in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    figures: dict[str, Any] = {"pool": len(recs), "positives": int(y.sum()), "data": args.data,
                               "labels": args.labels, "scorers": scorers}
    rows = [(k, auc_ci(v, y)) for k, v in sig.items()]
    purge_rows = sorted(((k, auc_ci(v, y, resamples=200)) for k, v in purge.items()),
                        key=lambda kv: -abs(kv[1][0] - 0.5))[:args.top_features]
    figures["signals"] = {k: list(map(lambda x: round(x, 3), v)) for k, v in rows}
    figures["purge_features_top"] = {k: list(map(lambda x: round(x, 3), v)) for k, v in purge_rows}
    if args.holdout:
        figures["holdout"] = holdout(args, scorers, {"logistic": logit, "boost": boost}, sorted(model_feats))
    names = [s for s in args.selectors.split(",") if s]
    if names:
        budget = args.budget or int(y.sum())
        llm = None
        if any(n in LLM_SELECTORS for n in names):
            from purgemix.models import load_llm

            llm = load_llm(args.rater or "qwen2.5-0.5b")
        dec = selector_decisions(recs, y, names, budget, args.embedder, llm)
        figures["selectors"] = {"budget": budget,
                                **{k: list(map(lambda x: round(x, 3), auc_ci(v, y))) for k, v in dec.items()}}
    return figures


def holdout(args: Any, scorers: list[str], models: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Train on the pool, test on ``--holdout``'s records that are not in the pool (labels from the same file)."""
    from purgemix.rating.quality import combine, signals

    recs, y = labelled_pool(args.holdout, args.labels, negatives=args.negatives, seed=args.seed)
    seen = {(r["messages"][0]["content"], r["messages"][-1]["content"]) for r in labelled_pool(args.data, args.labels)[0]}
    keep = [i for i, r in enumerate(recs) if (r["messages"][0]["content"], r["messages"][-1]["content"]) not in seen]
    recs, y = [recs[i] for i in keep], y[keep]
    if args.holdout_limit:
        recs, y = recs[:args.holdout_limit], y[:args.holdout_limit]
    recs = with_scores(recs, {"ifd": scorers[0] if scorers else "qwen2.5-0.5b"}, args.max_length)
    sig = {**scorer_signals(recs, scorers, args.max_length), **embedding_signals(recs, args.embedder)[0],
           "response words": np.array([len(r["messages"][-1]["content"].split()) for r in recs], float)}
    base = signals(recs)
    sig["rules (quality.rules)"] = base["rules"]
    feats = {**sig, **purge_signals(recs)}
    X = np.stack([feats.get(k, np.full(len(recs), np.nan)) for k in keys], 1)
    out = {"records": len(recs), "positives": int(y.sum()),
           "default quality score": [round(x, 3) for x in auc_ci(combine(base)[0], y)]}
    for name, m in models.items():
        out[f"learned {name} (trained on the pool)"] = [round(x, 3) for x in auc_ci(m.predict_proba(X)[:, 1], y)]
    best = max(sig, key=lambda k: auc_ci(sig[k], y, resamples=1)[0])
    out[f"best single signal here: {best}"] = [round(x, 3) for x in auc_ci(sig[best], y)]
    return out
