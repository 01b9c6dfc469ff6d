"""Checks of a fused pair: symbolic rules, the LLM error checklist, and the repair table.

Every check returns a list of errors ``{"type": ..., "detail": ...}``; an empty list is a pass.
The LLM checklist's JSON is parsed tolerantly; when it cannot be parsed that is recorded as its
own outcome (``checklist_unparsed``), never read as a pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from ..models.parsing import first_json_object
from ..text.tokens import word_count
from .text import key_terms

Error = dict[str, str]

# error type -> operator (template) of the next repair cycle. Fixed, documented, overridable.
REPAIR_TABLE: dict[str, str] = {
    "missing_key_terms": "fact_completion",
    "missing_information": "fact_completion",
    "factual_error": "consistency_repair",
    "contradiction": "consistency_repair",
    "truncated": "direct_answer",
    "incomplete_answer": "direct_answer",
    "not_self_contained": "merged_corpus",
    "format_error": "merged_corpus",
    "generation_failed": "same",  # retry the operator that failed
    "injection": "consistency_repair",  # rewrite without the directive the sources carried
    "unchanged": "same",  # ask again, told that the answer came back as it was
}
DEFAULT_REPAIR = "consistency_repair"
# when several errors are found, the first of these decides the template
REPAIR_PRIORITY = (
    "generation_failed", "injection", "format_error", "unchanged", "truncated", "incomplete_answer", "not_self_contained",
    "contradiction", "factual_error", "missing_key_terms", "missing_information",
)
CHECKLIST_TYPES = ("factual_error", "contradiction", "missing_information", "incomplete_answer",
                   "not_self_contained", "format_error")


def repair_operator(errors: Sequence[Error], previous: str, table: dict[str, str] | None = None) -> str:
    """The operator of the next cycle for these errors (``previous`` when the table says 'same')."""
    table = REPAIR_TABLE if table is None else table
    types = [e.get("type", "") for e in errors]
    ranked = sorted(types, key=lambda t: REPAIR_PRIORITY.index(t) if t in REPAIR_PRIORITY else len(REPAIR_PRIORITY))
    for t in ranked:
        if t in table:
            op = table[t]
            return previous if op == "same" else op
    return DEFAULT_REPAIR


@dataclass(frozen=True)
class SymbolicChecks:
    """Rule checks of a fused pair against its sources (thresholds configurable)."""

    min_key_term_recall: float = 0.5
    key_terms_per_source: int = 6
    min_response_words: int = 3
    min_instruction_words: int = 3
    # a response this similar to a source's (difflib ratio over words) is the source back, not a new pair
    max_source_similarity: float = 0.9

    def params(self) -> dict[str, Any]:
        return dict(vars(self))

    def __call__(self, instruction: str, response: str, sources: Sequence[tuple[str, str]],
                 finish_reason: str | None = None, prompt: str | None = None) -> list[Error]:
        errors: list[Error] = []
        errors += self.key_terms(instruction, response, sources)
        errors += self.complete(response, finish_reason)
        errors += self.self_contained(instruction)
        errors += self.format(instruction, response)
        errors += self.copied(instruction, response, sources, prompt)
        errors += self.injection(instruction, response)
        errors += self.unchanged(response, sources)
        return errors

    def unchanged(self, response: str, sources: Sequence[tuple[str, str]]) -> list[Error]:
        """A rewrite or fusion whose response is a source's response again (or nearly: a word changed, a
        sentence appended) is not a new pair. Small generators do this often: measured on 10 1-to-1
        rewrites with qwen2.5-0.5b, 4 of the 8 that passed every other check were identical to their
        source. Compared on words (case and punctuation ignored), so a re-spaced copy is still a copy."""
        from difflib import SequenceMatcher

        new = _norm(response).split()
        if not new:
            return []
        for k, (_, res) in enumerate(sources, 1):
            old = _norm(res).split()
            if not old:
                continue
            ratio = SequenceMatcher(None, new, old, autojunk=False).ratio()
            if ratio >= self.max_source_similarity:
                return [{"type": "unchanged",
                         "detail": f"the response is {ratio:.0%} the same as source {k}'s: improve it, do not copy it"}]
        return []

    def injection(self, instruction: str, response: str) -> list[Error]:
        """A new pair must not carry text addressed to a model or rater (a directive, a fake score object, a
        fake turn): sources are untrusted, and a fusion copies what it is given."""
        from ..text.injection import findings

        found = findings(instruction + "\n" + response)
        if found:
            return [{"type": "injection", "detail": f"the pair holds text addressed to a model: {', '.join(found)}"}]
        return []

    def copied(self, instruction: str, response: str, sources: Sequence[tuple[str, str]],
               prompt: str | None = None) -> list[Error]:
        """Two failure modes of small generators that every other check lets through: the new
        instruction restates the fusion prompt's own directions ("Treat the samples as one small
        corpus. Write one richer instruction ..."), or it already contains the answer (the
        response's list pasted into the instruction). Compared on word 5-grams."""
        ins = _grams(instruction)
        if not ins:
            return []
        if prompt:
            source_grams = set().union(*(_grams(a + "\n" + b) for a, b in sources)) if sources else set()
            directive = _grams(prompt) - source_grams  # what the prompt says beyond the sources
            shared = len(ins & directive)
            if shared >= 3 or shared / len(ins) >= 0.2:
                return [{"type": "format_error", "detail": f"instruction copies the task's directions "
                                                           f"({shared} of its word 5-grams)"}]
        resp = _grams(response)
        if len(resp) >= 8 and len(resp & ins) / len(resp) >= 0.5:
            return [{"type": "format_error", "detail": "instruction already contains the response"}]
        return []

    def key_terms(self, instruction: str, response: str, sources: Sequence[tuple[str, str]]) -> list[Error]:
        from ..text.injection import strip

        terms: list[str] = []
        for ins, res in sources:  # an injected directive's words are not key terms to keep
            for t in key_terms(strip(ins + "\n" + res), self.key_terms_per_source):
                if t not in terms:
                    terms.append(t)
        if not terms:
            return []
        text = (instruction + "\n" + response).lower()
        missing = [t for t in terms if t not in text]
        recall = 1 - len(missing) / len(terms)
        if recall < self.min_key_term_recall:
            return [{"type": "missing_key_terms",
                     "detail": f"kept {recall:.0%} of the key terms; missing: {', '.join(missing[:8])}"}]
        return []

    def complete(self, response: str, finish_reason: str | None = None) -> list[Error]:
        r = response.strip()
        if finish_reason == "length":
            return [{"type": "truncated", "detail": "generation stopped at the token limit"}]
        if word_count(r) < self.min_response_words:
            return [{"type": "incomplete_answer", "detail": f"response has fewer than {self.min_response_words} words"}]
        if r.count("```") % 2:
            return [{"type": "truncated", "detail": "unclosed code block"}]
        if _unbalanced(r):
            return [{"type": "truncated", "detail": "unbalanced brackets at the end"}]
        last = r.splitlines()[-1].strip() if r else ""
        if re.search(r"(\.\.\.|…|[,;:\-–(]|\b(and|or|the|a|an|to|of|with|for|is|are)\b)$", last, re.I) \
                and not re.match(r"^\s*([-*•]|\d+[.)])", last):
            return [{"type": "truncated", "detail": f"response ends mid-sentence: '…{last[-40:]}'"}]
        return []

    def self_contained(self, instruction: str) -> list[Error]:
        ins = instruction.strip()
        if word_count(ins) < self.min_instruction_words:
            return [{"type": "not_self_contained", "detail": "instruction is too short to be answerable"}]
        if _DANGLING.search(ins):
            return [{"type": "not_self_contained",
                     "detail": f"instruction refers to missing context: '{_DANGLING.search(ins).group(0)}'"}]
        return []

    def format(self, instruction: str, response: str) -> list[Error]:
        for part, text in (("instruction", instruction), ("response", response)):
            if _LEFTOVER.search(text):
                return [{"type": "format_error",
                         "detail": f"{part} contains template residue '{_LEFTOVER.search(text).group(0)}'"}]
        if _norm(instruction) == _norm(response):
            return [{"type": "format_error", "detail": "response repeats the instruction"}]
        return []


_DANGLING = re.compile(
    r"\b(the (above|following|given|previous|provided) (samples?|text|passage|question|questions|answers?|"
    r"pairs?|instructions?|responses?|examples?)|(samples?|question|pair) (1|2|one|two)\b|"
    r"both (samples|questions|pairs)|these (two )?(samples|pairs|questions)|as mentioned above)",
    re.I,
)
_LEFTOVER = re.compile(r"</?(instruction|response|previous_\w+|think|answer)>|\{\{|\}\}|^#{2,}\s*Sample\b",
                       re.I | re.M)


def _grams(text: str, n: int = 5) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _norm(s: str) -> str:
    return re.sub(r"\W+", " ", s.lower()).strip()


def _unbalanced(text: str) -> bool:
    tail = text[-200:]
    return any(tail.count(o) > tail.count(c) and text.count(o) > text.count(c) for o, c in ("()", "[]", "{}"))


# --- the LLM checklist --------------------------------------------------------------------------


def parse_checklist(text: str) -> list[Error] | None:
    """Errors from the checker's JSON; ``None`` when no usable JSON object is found (a recorded
    parse failure, never a pass). Accepts ``{"errors": [...]}`` with items as objects or strings."""
    obj = first_json_object(text or "")
    if not isinstance(obj, dict):
        return None
    items = obj.get("errors")
    if items is None:
        if "pass" in obj and isinstance(obj["pass"], bool):
            return [] if obj["pass"] else [{"type": "unspecified", "detail": "checker failed the pair"}]
        return None
    if not isinstance(items, list):
        return None
    out: list[Error] = []
    for item in items:
        if isinstance(item, str):
            out.append({"type": _error_type(item), "detail": item})
        elif isinstance(item, dict):
            t = str(item.get("type") or item.get("error") or item.get("name") or "unspecified")
            out.append({"type": _error_type(t), "detail": str(item.get("detail") or item.get("explanation") or "")})
    return out


def _error_type(s: str) -> str:
    t = re.sub(r"[^a-z]+", "_", s.lower()).strip("_")
    for known in CHECKLIST_TYPES:
        if t == known or t.startswith(known):
            return known
    return t or "unspecified"
