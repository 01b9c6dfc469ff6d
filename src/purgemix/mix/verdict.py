"""An audit of what the mix made: a judge's verdict of each new pair against the pairs it came from.

A new pair that passed every check can still be no better than its best source. The judge (the
strongest configured model: ``models.judge``, else the checker, else the generator) sees the sources
and the new pair as labelled examples, the new pair's position drawn from its id so that position bias
averages out over a run, and names the better one (or a tie). The verdict goes into the new record's
lineage (``judge``: model, verdict ``new`` | ``source`` | ``tie`` | ``unparsed``, why) and the run
report shows it beside the pair. It never decides what is kept: it is an audit.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

from ..models.base import LLM, GenerationParams
from ..models.parsing import first_json_object
from .fuse import generate_batched
from .templates import TemplateSet

VERDICT_SCHEMA = ('{"type": "object", "properties": {"better": {"type": "string"}, "why": {"type": "string"}}, '
                  '"required": ["better", "why"]}')
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def judge_verdicts(judge: LLM, items: Sequence[tuple[str, Sequence[tuple[str, str]], tuple[str, str]]],
                   templates: TemplateSet | None = None) -> list[dict[str, Any]]:
    """``items``: (new record id, source pairs, new pair) -> one verdict dict each, in order."""
    template = (templates or TemplateSet()).get("judge_new_vs_sources")
    convs, layouts = [], []
    for rid, sources, new in items:
        pairs = list(sources[:len(LABELS) - 1])
        at = int(hashlib.blake2b(rid.encode(), digest_size=4).hexdigest(), 16) % (len(pairs) + 1)
        pairs.insert(at, new)
        cands = [{"label": LABELS[k], "instruction": q, "response": a} for k, (q, a) in enumerate(pairs)]
        convs.append(template.messages(candidates=cands))
        layouts.append(LABELS[at])
    params = GenerationParams(temperature=0.0, max_tokens=160, json_schema=VERDICT_SCHEMA)
    gens = generate_batched(judge, convs, params, 512) if convs else []
    name = str(getattr(judge, "name", "?"))
    out = []
    for g, new_label in zip(gens, layouts):
        obj = first_json_object(g.texts[0]) if g.ok else None
        better = str(obj.get("better", "")).strip().strip('"').upper() if isinstance(obj, dict) else ""
        if better.startswith("TIE"):
            verdict = "tie"
        elif better[:1] in LABELS and better[:1]:
            verdict = "new" if better[:1] == new_label else "source"
        else:
            verdict = "unparsed"
        out.append({"model": name, "verdict": verdict, "position": new_label,
                    "why": str(obj.get("why", ""))[:300] if isinstance(obj, dict) else (g.error or "")[:300]})
    return out


def verdict_counts(verdicts: Sequence[dict[str, Any]]) -> dict[str, int]:
    out = {"new": 0, "source": 0, "tie": 0, "unparsed": 0}
    for v in verdicts:
        out[v["verdict"]] = out.get(v["verdict"], 0) + 1
    return out


def audit(stage: Any, made: Sequence[tuple[dict, Sequence[dict]]], record: bool = True) -> None:
    """A generating stage's new records (with their parents) judged against their sources when the stage has
    a ``judge``: the verdict into each record's lineage, the counts into the stage's report. ``record=False``
    (the estimate's probe) only asks: the verdicts are the step's to record."""
    judge = getattr(stage, "judge", None)
    if judge is None or not made:
        return
    from ..core.record import response_of
    from .text import prompt_of

    verdicts = judge_verdicts(judge, [(rec["id"], [(prompt_of(p), response_of(p)) for p in parents],
                                       (prompt_of(rec), response_of(rec))) for rec, parents in made],
                              getattr(stage, "templates", None))
    if not record:
        return
    for (rec, _), v in zip(made, verdicts):
        rec["lineage"]["judge"] = v
    stage._info = {**stage._info, "judge": {"model": verdicts[0]["model"], **verdict_counts(verdicts)}}
