"""ENTP two-to-one fusion with a symbolic feedback loop (and the 1-to-1 rewrite control).

``Fuser.fuse(groups)`` takes groups of source records (two for fusion, one for the rewrite
control) and returns one ``FusionOutcome`` per group, in order. Every step is batched: all
groups of a cycle go to the LLM in one ``generate`` call (cut into ``batch_size`` chunks), then all
candidates are checked (rules, then the LLM checklist, also batched), and the failing ones are
re-prompted with the template the repair table picks for their errors, at most ``max_cycles``
times. Groups that still fail come back with ``ok=False`` and their reasons.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..core.record import Record, response_of
from ..models.base import LLM, Generation, GenerationParams, Messages, config_params
from .checks import REPAIR_TABLE, Error, SymbolicChecks, parse_checklist, repair_operator
from .templates import TemplateSet
from .text import CHECKLIST_SCHEMA, INSTRUCTION_GRAMMAR, PAIR_GRAMMAR, parse_pair, prompt_of, tagged

FUSION_OPERATORS = ("direct_answer", "merged_corpus", "consistency_repair", "fact_completion", "compose", "rewrite")
# operators whose attempt is two generations: the instruction, then a fresh answer to it (``compose``). Their
# repair cycles stay with them: the answer step is told the previous attempt's problems.
TWO_STEP = ("compose",)


@dataclass
class FusionConfig:
    operator: str = "merged_corpus"  # the operator of the first attempt
    feedback: bool = True  # False: the no-feedback control (checks recorded, never acted on)
    max_cycles: int = 2  # repair cycles after the first attempt
    llm_check: bool = True  # run the LLM error checklist on pairs that pass the rules
    check_retries: int = 1  # re-asks of the checker when its JSON cannot be parsed
    generation: GenerationParams = field(default_factory=lambda: GenerationParams(temperature=0.7, max_tokens=1024))
    check_generation: GenerationParams = field(default_factory=lambda: GenerationParams(temperature=0.0, max_tokens=512))
    batch_size: int = 512  # conversations per generate call
    # output shaped by a grammar where the backend supports one (llama.cpp): the pair's tags and the
    # checklist's JSON cannot come back malformed. Other backends ignore it; the parsers stay tolerant.
    constrained: bool = True

    def __post_init__(self) -> None:
        if self.operator not in FUSION_OPERATORS:
            raise ValueError(f"unknown fusion operator '{self.operator}' (known: {', '.join(FUSION_OPERATORS)})")
        if self.max_cycles < 0:
            raise ValueError("max_cycles must be >= 0")

    def params(self) -> dict[str, Any]:
        return config_params(self)


@dataclass
class FusionOutcome:
    parents: list[str]
    ok: bool
    instruction: str = ""
    response: str = ""
    operator: str = ""  # operator of the final attempt
    template: dict[str, str] = field(default_factory=dict)  # {"name", "hash"} of the final attempt
    cycles: int = 0  # repair cycles used
    errors: list[Error] = field(default_factory=list)  # final errors (why it failed), [] when ok
    checks: dict[str, Any] = field(default_factory=dict)  # the final attempt's rule/checklist results
    history: list[dict[str, Any]] = field(default_factory=list)  # every attempt, in order

    @property
    def reason(self) -> str:
        return ", ".join(sorted({e["type"] for e in self.errors})) or "ok"


def _source_pairs(records: Sequence[Record]) -> list[dict[str, str]]:
    return [{"instruction": prompt_of(r), "response": response_of(r)} for r in records]


def generate_batched(llm: LLM, conversations: list[Messages], params: GenerationParams,
                     batch_size: int) -> list[Generation]:
    """One ``generate`` call per chunk of ``batch_size`` conversations; a short answer is an error."""
    out: list[Generation] = []
    for i in range(0, len(conversations), max(1, batch_size)):
        chunk = conversations[i:i + batch_size]
        gens = list(llm.generate(chunk, params))
        if len(gens) != len(chunk):
            gens = gens[: len(chunk)] + [Generation(error="backend returned fewer results")] * (len(chunk) - len(gens))
        out.extend(gens)
    return out


class Fuser:
    def __init__(self, llm: LLM, *, config: FusionConfig | None = None, templates: TemplateSet | None = None,
                 checks: SymbolicChecks | None = None, checker: LLM | None = None,
                 repair_table: dict[str, str] | None = None):
        self.llm = llm
        self.config = config or FusionConfig()
        self.templates = templates or TemplateSet()
        self.checks = checks or SymbolicChecks()
        self.checker = checker or llm
        self.repair_table = dict(REPAIR_TABLE if repair_table is None else repair_table)
        self.repair_table.setdefault("checklist_unparsed", "same")

    def fuse(self, groups: Sequence[Sequence[Record]]) -> list[FusionOutcome]:
        cfg = self.config
        n = len(groups)
        sources = [_source_pairs(g) for g in groups]
        src_tuples = [[(s["instruction"], s["response"]) for s in ss] for ss in sources]
        outcomes = [FusionOutcome(parents=[r["id"] for r in g], ok=False) for g in groups]
        op = [cfg.operator] * n
        previous: list[dict[str, str] | None] = [None] * n
        errors: list[list[Error]] = [[] for _ in range(n)]
        active = list(range(n))
        cycle = 0
        while active:
            templates = {i: self.templates.get(op[i]) for i in active}
            convs = [templates[i].messages(sources=sources[i], previous=previous[i],
                                           errors=errors[i] if previous[i] else []) for i in active]
            params = cfg.generation if cfg.generation.seed is None or cycle == 0 else \
                dataclasses.replace(cfg.generation, seed=cfg.generation.seed + cycle)
            gens = self._generate(active, op, convs, sources, errors, previous, params)
            candidates: dict[int, tuple[str, str]] = {}
            attempt_errors: dict[int, list[Error]] = {}
            checks: dict[int, dict[str, Any]] = {}
            for i, conv, gen in zip(active, convs, gens):
                if not gen.ok:
                    attempt_errors[i] = [{"type": "generation_failed", "detail": str(gen.error or "no text")[:300]}]
                    continue
                parsed = parse_pair(gen.texts[0])
                if parsed is None:
                    attempt_errors[i] = [{"type": "format_error",
                                          "detail": "no instruction/response found in the output"}]
                    continue
                candidates[i] = parsed
                finish = gen.finish_reasons[0] if gen.finish_reasons else None
                # the task's own words: a repaired pair may repeat the previous attempt quoted in the prompt
                prompt = "\n".join(m["content"] for m in conv)
                for quoted in (previous[i] or {}).values():
                    prompt = prompt.replace(quoted, " ") if quoted else prompt
                rule_errors = self.checks(parsed[0], parsed[1], src_tuples[i], finish, prompt=prompt)
                checks[i] = {"rules": rule_errors}
                attempt_errors[i] = list(rule_errors) if cfg.feedback else []
            if cfg.feedback and cfg.llm_check:
                to_check = [i for i in candidates if not attempt_errors[i]]
                for i, errs in zip(to_check, self._checklist([sources[i] for i in to_check],
                                                              [candidates[i] for i in to_check])):
                    checks[i]["llm"] = errs
                    attempt_errors[i] = list(errs)
            still: list[int] = []
            for i in active:
                errs = attempt_errors[i]
                o = outcomes[i]
                o.history.append({"cycle": cycle, "operator": op[i], "template": templates[i].hash,
                                  "errors": errs})
                o.operator, o.template, o.cycles = op[i], templates[i].ref(), cycle
                o.checks = checks.get(i, {})
                if i in candidates:
                    o.instruction, o.response = candidates[i]
                if not errs:
                    o.ok, o.errors = True, []
                    continue
                o.errors = errs
                if cfg.feedback and cycle < cfg.max_cycles:
                    if i in candidates:
                        previous[i] = {"instruction": candidates[i][0], "response": candidates[i][1]}
                    errors[i] = errs
                    op[i] = op[i] if op[i] in TWO_STEP else repair_operator(errs, op[i], self.repair_table)
                    if op[i] == "rewrite" and len(groups[i]) > 1:
                        op[i] = cfg.operator
                    still.append(i)
            active = still
            cycle += 1
        return outcomes

    def _generate(self, active: list[int], op: list[str], convs: list[Messages], sources: list, errors: list,
                  previous: list, params: GenerationParams) -> list[Generation]:
        """One attempt per active group. One-step operators: the pair in one generation (shaped by
        ``PAIR_GRAMMAR`` when constrained). Two-step operators: the instruction (``INSTRUCTION_GRAMMAR``),
        then its answer from ``compose_answer`` with the sources as notes, joined into the pair's tags."""
        cfg = self.config
        gens: list[Generation | None] = [None] * len(active)
        for two in (False, True):
            idx = [k for k, i in enumerate(active) if (op[i] in TWO_STEP) == two]
            if not idx:
                continue
            grammar = (INSTRUCTION_GRAMMAR if two else PAIR_GRAMMAR) if cfg.constrained else None
            first = generate_batched(self.llm, [convs[k] for k in idx], dataclasses.replace(params, grammar=grammar),
                                     cfg.batch_size)
            for k, g in zip(idx, first):
                gens[k] = g
            if not two:
                continue
            answer_t = self.templates.get("compose_answer")
            asked: list[tuple[int, str]] = []
            for k, g in zip(idx, first):
                ins = tagged(g.texts[0], "instruction") if g.ok else None
                if ins:
                    asked.append((k, ins))
            words = max(60, int(params.max_tokens * 0.5))  # ~0.75 words a token, with room to finish
            second = generate_batched(self.llm, [answer_t.messages(
                instruction=ins, sources=sources[active[k]], words=words,
                errors=errors[active[k]] if previous[active[k]] else []) for k, ins in asked],
                dataclasses.replace(params, grammar=None), cfg.batch_size)
            for (k, ins), g2 in zip(asked, second):
                g1 = gens[k]
                gens[k] = g2 if not g2.ok else Generation(
                    texts=[f"<instruction>\n{ins}\n</instruction>\n<response>\n{g2.texts[0].strip()}\n</response>"],
                    finish_reasons=g2.finish_reasons, tokens_in=g1.tokens_in + g2.tokens_in,
                    tokens_out=g1.tokens_out + g2.tokens_out, cached=g1.cached and g2.cached)
        return gens  # type: ignore[return-value]

    def _checklist(self, sources: list[list[dict[str, str]]], candidates: list[tuple[str, str]]) -> list[list[Error]]:
        """The LLM error checklist for each candidate; unparsable answers are re-asked
        ``check_retries`` times, then recorded as a ``checklist_unparsed`` error."""
        cfg = self.config
        template = self.templates.get("check_errors")
        result: list[list[Error] | None] = [None] * len(candidates)
        raw: list[str] = [""] * len(candidates)
        pending = list(range(len(candidates)))
        for attempt in range(cfg.check_retries + 1):
            if not pending:
                break
            convs = [template.messages(sources=sources[j], candidate={"instruction": candidates[j][0],
                                                                      "response": candidates[j][1]})
                     for j in pending]
            params = cfg.check_generation if attempt == 0 else dataclasses.replace(
                cfg.check_generation, seed=(cfg.check_generation.seed or 0) + attempt,
                temperature=max(cfg.check_generation.temperature, 0.3))
            if cfg.constrained:
                params = dataclasses.replace(params, json_schema=CHECKLIST_SCHEMA)
            gens = generate_batched(self.checker, convs, params, cfg.batch_size)
            nxt = []
            for j, gen in zip(pending, gens):
                text = gen.texts[0] if gen.ok else ""
                parsed = parse_checklist(text) if gen.ok else None
                if parsed is None:
                    raw[j] = text[:300] if gen.ok else f"checker error: {gen.error}"
                    nxt.append(j)
                else:
                    result[j] = parsed
            pending = nxt
        return [r if r is not None else [{"type": "checklist_unparsed", "detail": raw[j]}]
                for j, r in enumerate(result)]
