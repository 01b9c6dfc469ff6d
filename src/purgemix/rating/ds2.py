"""DS2-style LLM rating: rubric prompt from a template file, tolerant JSON parsing, retries,
compression of the overall 1–10 score to six classes (0–5).

A parse failure is recorded as a failure (``RatingResult.error``), never turned into a score.
Retry ``k`` uses ``seed=k`` (and a little temperature after the first, greedy, attempt), so every
attempt has its own cache entry and a re-run replays them from the cache.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import orjson

from ..core.record import Record
from ..models.base import LLM, GenerationParams, Messages
from ..models.parsing import first_object_text
from ..models.prompts import Template, load_template as load_prompt

KEYS = ("rarity", "complexity", "informativeness", "overall")
MAX_TURN_CHARS = 2000


def load_template(name_or_path: str = "ds2_rating") -> Template:
    """A packaged rubric (``prompts/<name>.txt``) or a file path, with ``=== SYSTEM ===`` and ``=== USER ===``
    sections (``models.prompts``); its user part renders ``{{ conversation }}``."""
    p = Path(name_or_path)
    if not (p.suffix == ".txt" and p.exists()):
        p = Path(str(importlib.resources.files("purgemix.rating") / "prompts" / f"{name_or_path}.txt"))
    t = load_prompt(p, name=Path(name_or_path).stem)
    if t.tidy:
        raise ValueError(f"template {name_or_path}: needs '=== SYSTEM ===' and '=== USER ===' sections")
    return t


def render_conversation(messages: Messages, max_chars: int = MAX_TURN_CHARS) -> str:
    """The sample as data for the rater: each turn in a ``<turn role=...>`` block inside ``<sample>``, the
    delimiters escaped in the text (``text.injection.fence``), so an injected "### System:" line or a fake
    closing tag stays inside the sample instead of forging a turn of the prompt."""
    from ..text.injection import fence

    parts = []
    for m in messages:
        c = m["content"]
        if len(c) > max_chars:
            c = c[:max_chars] + " [...]"
        role = m["role"] if m["role"] in ("user", "assistant", "system", "tool") else "other"
        parts.append(f'<turn role="{role}">\n{fence(c)}\n</turn>')
    return "<sample>\n" + "\n".join(parts) + "\n</sample>"


def _rating_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        m = re.match(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*10)?", v)
        return float(m.group(1)) if m else None
    return None


def parse_rating(text: str) -> tuple[dict[str, int] | None, str | None]:
    """``({key: int 1..10}, None)`` or ``(None, reason)``. Needs at least ``overall``."""
    if not text or not text.strip():
        return None, "empty answer"
    found: dict[str, float] = {}
    obj = first_object_text(text)
    if obj is not None:
        cleaned = re.sub(r",\s*}", "}", obj.replace("'", '"'))
        try:
            data = orjson.loads(cleaned)
            if isinstance(data, dict):
                low = {str(k).strip().lower(): v for k, v in data.items()}
                for k in KEYS:
                    v = _rating_number(low.get(k))
                    if v is not None:
                        found[k] = v
        except orjson.JSONDecodeError:
            pass
    if "overall" not in found:  # regex fallback: "overall": 7 / Overall score: 7/10
        for k in KEYS:
            m = re.search(rf'{k}["\']?\s*(?:score)?\s*[:=]\s*"?(\d+(?:\.\d+)?)', text, flags=re.I)
            if m and k not in found:
                found[k] = float(m.group(1))
    if "overall" not in found:
        return None, "no overall score in answer"
    out = {}
    for k, v in found.items():
        if not 0 <= v <= 10:
            return None, f"{k} out of range: {v:g}"
        out[k] = int(round(min(max(v, 1.0), 10.0)))
    return out, None


def compress(overall: int) -> int:
    """DS2's six classes: ``clip(overall, 4, 9) - 4``."""
    return int(min(max(overall, 4), 9) - 4)


@dataclass
class RatingResult:
    scores: dict[str, int] | None = None
    error: str | None = None
    attempts: int = 0
    raw: list[str] = field(default_factory=list)
    injection: list[str] = field(default_factory=list)  # kinds of text addressed to the rater (text.injection)
    model_overall: int | None = None  # the rater's own overall before the injection cap

    @property
    def ok(self) -> bool:
        return self.scores is not None

    @property
    def score(self) -> int | None:
        return compress(self.scores["overall"]) if self.scores else None


def rating_params(attempt: int, max_tokens: int = 64) -> GenerationParams:
    return GenerationParams(temperature=0.0 if attempt == 0 else 0.7, top_p=1.0, max_tokens=max_tokens,
                            stop=("}",), seed=attempt)


def rate_conversations(llm: LLM, conversations: Sequence[Messages], *, template: Template | None = None,
                       attempts: int = 3, max_tokens: int = 64, render: Any = None,
                       cap_injected: bool = True) -> list[RatingResult]:
    """Rate each conversation; failed parses are retried up to ``attempts`` times in all. ``render`` turns a
    conversation into the template's ``conversation`` text (default ``render_conversation``). ``cap_injected``:
    a sample that addresses its rater gets overall 1 (``_cap_injected``)."""
    template = template or load_template()
    render = render or render_conversation
    prompts = [template.messages(conversation=render(c)) for c in conversations]
    results = [RatingResult() for _ in prompts]
    pending = list(range(len(prompts)))
    for attempt in range(attempts):
        if not pending:
            break
        gens = llm.generate([prompts[i] for i in pending], rating_params(attempt, max_tokens))
        still = []
        for i, g in zip(pending, gens):
            r = results[i]
            r.attempts += 1
            if g.error:
                r.error = f"request failed: {g.error}"
                still.append(i)
                continue
            text = g.texts[0] if g.texts else ""
            r.raw.append(text)
            scores, err = parse_rating(text)
            if scores is None:
                r.error = f"parse failed: {err}"
                still.append(i)
            else:
                r.scores, r.error = scores, None
        pending = still
    if cap_injected:
        _cap_injected(conversations, results)
    return results


def _cap_injected(conversations: Sequence[Messages], results: list[RatingResult]) -> None:
    """A sample that addresses its rater gets the lowest overall, whatever the model said. Measured: fencing
    the sample and telling the rater it is data did not stop Qwen2.5-0.5B from rating injected twins above
    their clean originals (10-11 of 12 per kind, ``benchmarks/injection.py``); the symbolic check finds
    them all, so the rule is enforced here, not asked of the model."""
    from ..text.injection import findings

    for conv, r in zip(conversations, results):
        kinds = findings("\n".join(m["content"] for m in conv))
        if kinds and r.scores is not None:
            r.injection = kinds
            r.model_overall = r.scores.get("overall")
            r.scores = {**r.scores, "overall": 1}


def apply_rating(record: Record, r: RatingResult, prefix: str = "ds2", model: str = "") -> Record:
    """Write a rating into a record: ``scores[prefix.*]`` when parsed, else the failure in
    ``meta._rating`` and ``scores[prefix.parsed] = 0`` (no score is invented)."""
    scores = dict(record.get("scores") or {})
    meta = dict(record.get("meta") or {})
    if r.ok:
        for k, v in r.scores.items():  # type: ignore[union-attr]
            scores[f"{prefix}.{k}"] = v
        scores[f"{prefix}.score"] = r.score
        scores[f"{prefix}.parsed"] = 1
        meta.pop("_rating", None)
        if r.injection:  # capped: keep why, and what the model had said
            scores[f"{prefix}.injection"] = 1
            meta["_rating"] = {"injection": r.injection, "model_overall": r.model_overall, "model": model}
    else:
        for k in [*KEYS, "score"]:
            scores.pop(f"{prefix}.{k}", None)
        scores[f"{prefix}.parsed"] = 0
        meta["_rating"] = {"error": r.error, "attempts": r.attempts, "model": model,
                           "last_answer": (r.raw[-1][:300] if r.raw else None)}
    return {**record, "scores": scores, "meta": meta}
