"""The default quality signal: calibrated signals combined into one score (``quality.score``, 0–1).

Why not a bare zero-shot rating: small local raters (Qwen2.5-0.5B/1.5B) put most ratings on one
value (AUC 0.50–0.58 against a strong judge), and SmolLM2-135M cannot rate at all, while the
likelihood of the response given the instruction and IFD under Qwen2.5-0.5B carry real signal. So:

================  =========================================  =========  =================
signal            from                                       better     default weight
================  =========================================  =========  =================
``likelihood``    ``-ifd.loss_cond`` (response NLL | prompt)  higher     0.30
``ifd``           ``ifd.ifd`` (cond / uncond loss)            lower      0.25
``rating``        ``ds2.curated`` or ``ds2.score`` (0–5)      higher     0.15 (0.60 strong)
``knn_bayes``     expected class from a rated library (0–5)  higher     0.25
``rules``         truncation, repetition, echo, refusal      higher     multiplier (veto)
================  =========================================  =========  =================

Each available signal is turned into its percentile rank within the pool (so scales and
miscalibration do not matter; ties share a rank), oriented so that higher is better, and the
score is the weighted mean over the signals a record has (weights renormalised), multiplied by
the rule score (1 = no rule fired; a truncated answer halves it, a looping one drives it to 0).
Rules are a veto rather than a vote because the failures they catch fool the likelihood: a
looping or cut-off answer is *more* predictable than a good one. (``rules_gate=False`` makes
them an ordinary vote with weight 0.20.) When the rating comes from a strong server model, pass
``strong_rater=True``: its weight becomes 0.60 and it dominates. A record with no other signal
gets 0.5 × its rule score. ``fit_weights`` learns weights from labelled records (logistic
regression on the percentiles) when the user has labels.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np

from ..core.record import Record, instruction_of, response_of

DEFAULT_WEIGHTS = {"likelihood": 0.30, "ifd": 0.25, "rules": 0.20, "rating": 0.15, "knn_bayes": 0.25}  # rules: used when rules_gate=False
STRONG_RATING_WEIGHT = 0.60

_REFUSAL = re.compile(r"\b(as an ai( language model)?|i('m| am) (sorry|unable)|i cannot (help|provide|answer)|"
                      r"i can't (help|provide|answer))\b", re.I)
_END = re.compile(r"""[.!?)\]}"'`*>:;\u3002\uff01\uff1f]\s*$|^\S+$|\d\s*$""")


def rule_features(instruction: str, response: str) -> dict[str, float]:
    words = response.split()
    n = len(words)
    trigrams = [tuple(words[i:i + 3]) for i in range(max(0, n - 2))]
    repetition = 1.0 - len(set(trigrams)) / len(trigrams) if trigrams else 0.0
    truncated = float(n > 8 and not _END.search(response.strip()))
    iw, rw = set(instruction.lower().split()), set(response.lower().split())
    echo = float(bool(rw) and len(iw & rw) / max(len(rw), 1) > 0.9 and len(rw) > 3)
    refusal = float(bool(_REFUSAL.search(response[:300])))
    empty = float(n == 0)
    return {"truncated": truncated, "repetition": round(repetition, 4), "echo": echo, "refusal": refusal,
            "empty": empty}


def rules_score(f: dict[str, float]) -> float:
    penalty = 0.5 * f["truncated"] + 1.5 * f["repetition"] + 0.5 * f["echo"] + 0.5 * f["refusal"] + f["empty"]
    return max(0.0, 1.0 - penalty)


def percentile(x: np.ndarray) -> np.ndarray:
    """Average-rank percentiles in [0, 1] over the finite values; NaN stays NaN."""
    out = np.full(len(x), np.nan)
    ok = np.isfinite(x)
    v = x[ok]
    if len(v) == 0:
        return out
    if len(v) == 1:
        out[ok] = 0.5
        return out
    order = np.argsort(v, kind="mergesort")
    ranks = np.empty(len(v))
    sv = v[order]
    i = 0
    while i < len(v):  # average ranks of ties
        j = i
        while j + 1 < len(v) and sv[j + 1] == sv[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2
        i = j + 1
    out[ok] = ranks / (len(v) - 1)
    return out


def signals(records: Sequence[Record], *, rating_key: str | None = None, knn_bayes: Any = None,
            embeddings: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Raw signals, oriented so that higher is better; NaN where a record lacks one."""
    n = len(records)

    def get(key: str) -> np.ndarray:
        return np.array([float(r.get("scores", {}).get(key, np.nan)) if isinstance(
            r.get("scores", {}).get(key), (int, float)) else np.nan for r in records])

    out = {"likelihood": -get("ifd.loss_cond"), "ifd": -get("ifd.ifd")}
    out["rules"] = np.array([rules_score(rule_features(instruction_of(r), response_of(r))) for r in records])
    if rating_key is None:
        cur, raw = get("ds2.curated"), get("ds2.score")
        out["rating"] = np.where(np.isfinite(cur), cur, raw)
    else:
        out["rating"] = get(rating_key)
    if knn_bayes is not None and embeddings is not None and n:
        out["knn_bayes"] = knn_bayes.expected(embeddings)
    return {k: v for k, v in out.items() if np.isfinite(v).any()}


def combine(sig: dict[str, np.ndarray], weights: dict[str, float] | None = None, *,
            strong_rater: bool = False, rules_gate: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    if strong_rater:
        w["rating"] = STRONG_RATING_WEIGHT
    gate = sig.get("rules") if rules_gate else None
    if gate is not None:
        w["rules"] = 0.0  # a veto, not a vote (see module doc)
    pct = {k: percentile(v) for k, v in sig.items() if w.get(k, 0) > 0}
    if gate is not None and not pct:
        pct = {"rules": percentile(gate)}
        w["rules"] = 1.0
        gate = None
    if not pct:
        raise ValueError("no quality signal available")
    num = np.zeros(len(next(iter(pct.values()))))
    den = np.zeros_like(num)
    for k, p in pct.items():
        ok = np.isfinite(p)
        num[ok] += w[k] * p[ok]
        den[ok] += w[k]
    score = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    if gate is not None:  # no other signal: neutral 0.5, still vetoed by the rules
        score = np.where(np.isfinite(score), score, 0.5) * np.clip(gate, 0.0, 1.0)
        pct["rules"] = percentile(gate)
    return score, pct


def quality_scores(records: Sequence[Record], *, weights: dict[str, float] | None = None, strong_rater: bool = False,
                   knn_bayes: Any = None, embeddings: np.ndarray | None = None,
                   prefix: str = "quality") -> list[Record]:
    """Write ``{prefix}.score`` (0–1) and each signal's percentile ``{prefix}.<signal>`` into records."""
    sig = signals(records, knn_bayes=knn_bayes, embeddings=embeddings)
    score, pct = combine(sig, weights, strong_rater=strong_rater)
    out = []
    for i, r in enumerate(records):
        s = dict(r.get("scores") or {})
        if np.isfinite(score[i]):
            s[f"{prefix}.score"] = round(float(score[i]), 6)
            # the 0–5 scale of a curated DS2 rating, so HQ/LQ cuts read the same on either
            s[f"{prefix}.class"] = int(round(5 * float(score[i])))
        for k, p in pct.items():
            if np.isfinite(p[i]):
                s[f"{prefix}.{k}"] = round(float(p[i]), 6)
        out.append({**r, "scores": s})
    return out


def fit_weights(pct: dict[str, np.ndarray], labels: np.ndarray, *, l2: float = 1e-2, steps: int = 2000,
                lr: float = 0.5) -> dict[str, float]:
    """Non-negative weights from labelled records (logistic regression on percentiles, NaN -> 0.5)."""
    keys = sorted(pct)
    X = np.stack([np.nan_to_num(pct[k] - 0.5, nan=0.0) for k in keys], 1)
    y = np.asarray(labels, dtype=float)
    w, b = np.zeros(len(keys)), 0.0
    for _ in range(steps):
        z = 1 / (1 + np.exp(-(X @ w + b)))
        g = z - y
        w -= lr * (X.T @ g / len(y) + l2 * w)
        b -= lr * g.mean()
        w = np.maximum(w, 0.0)  # a signal may be ignored, not reversed
    total = w.sum() or 1.0
    return {k: float(v / total) for k, v in zip(keys, w)}


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC (Mann–Whitney), ties counted half; NaN scores are left out."""
    s, y = np.asarray(scores, float), np.asarray(labels, int)
    ok = np.isfinite(s)
    s, y = s[ok], y[ok]
    pos, neg = s[y == 1], s[y == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    r = percentile(s) * (len(s) - 1) + 1  # average ranks 1..n
    return float((r[y == 1].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
