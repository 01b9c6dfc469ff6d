"""A deterministic responder for ``FakeLLM`` that speaks the mix prompts (tests, demos).

``MixResponder(...)`` answers fusion/rewrite prompts with a tagged pair built from the sources,
checklist prompts with JSON, and distillation prompts with ``<think>…</think><answer>Q: … A: …
</answer>``. Switches make it misbehave in controlled ways (bad first attempts, unparsable
checklists, bad format) so the feedback loop and the failure paths can be tested.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"### Sample \d+\nInstruction:\n(?P<i>.*?)\n\nResponse:\n(?P<r>.*?)(?=\n\n### Sample|\n\nTask:|\Z)", re.S)
_QA = re.compile(r"^Q: (?P<i>.*?)\nA: (?P<r>.*?)(?=\nQ: |\n\nMerge them)", re.S | re.M)


@dataclass
class MixResponder:
    truncate_first: bool = False  # first fusion attempt ends mid-sentence (repair cycle fixes it)
    always_truncate: bool = False  # every fusion attempt is truncated (pair dropped)
    checklist_errors: tuple[str, ...] = ()  # error types the checklist reports on first sight
    checklist: str = "json"  # json | garbage | fenced
    distil_format: str = "exact"  # exact | loose | broken
    calls: dict[str, int] = field(default_factory=dict)

    def __call__(self, conv, sample: int) -> str:
        text = conv[-1]["content"]
        if "strict reviewer" in text:
            return self._check(text)
        if "strict judge of instruction-tuning data" in text:  # the audit: the example with the longest answer
            blocks = re.findall(r"### Example (\w)\nInstruction:\n.*?\n\nResponse:\n(.*?)(?=\n### Example|\nAnswer with)", text, re.S)
            best = max(blocks, key=lambda b: len(b[1]))[0] if blocks else "tie"
            return '{"better": "%s", "why": "the most complete answer"}' % best
        if "<think>" in text:
            return self._distil(text, sample)
        if "Here is a draft answer to improve" in text:  # step 2 of compose on one source: an edit of the draft
            draft = re.search(r"Draft:\n(.*?)\n+(?:Your previous answer|Answer in at most)", text, re.S)
            body = draft.group(1).strip().rstrip(". ") if draft else "The answer"
            return f"To answer this fully and clearly: {body}. That covers every part of the question asked."
        if "Background notes you may use" in text:  # step 2 of the two-step compose operator
            notes = re.findall(r"^- (.*)$", text, re.M)
            return " ".join(n.rstrip(". ") + "." for n in notes) + " Both parts of the request are answered above."
        return self._fuse(text)

    def _count(self, key: str) -> int:
        self.calls[key] = self.calls.get(key, 0) + 1
        return self.calls[key]

    def _fuse(self, text: str) -> str:
        self._count("fuse")
        sources = [(m.group("i").strip(), m.group("r").strip()) for m in _SAMPLE.finditer(text)]
        repair = "<previous_instruction>" in text
        instruction = "Explain the following together: " + " Also, ".join(s[0].rstrip("?.") for s in sources) + "."
        response = " ".join(s[1].rstrip(". ") + "." for s in sources)
        if len(sources) == 1:  # a rewrite that changes its source (a copy fails the `unchanged` check)
            response = "To answer this fully and clearly: " + response + " That covers every part of the question asked."
        if self.always_truncate or (self.truncate_first and not repair):
            response = response.rstrip(".") + " and the"
        return f"<instruction>\n{instruction}\n</instruction>\n<response>\n{response}\n</response>"

    def _check(self, text: str) -> str:
        n = self._count("check")
        if self.checklist == "garbage":
            return "Looks fine to me!"
        errors = []
        if self.checklist_errors and "<previous" not in text:
            key = re.search(r"### New pair\nInstruction:\n(.*?)\n", text, re.S)
            seen_key = f"seen:{key.group(1) if key else n}"
            if seen_key not in self.calls:
                self.calls[seen_key] = 1
                errors = [{"type": t, "detail": "fake"} for t in self.checklist_errors]
        body = '{"errors": ' + str(errors).replace("'", '"') + "}"
        return f"```json\n{body}\n```" if self.checklist == "fenced" else body

    def _distil(self, text: str, sample: int) -> str:
        self._count("distil")
        pairs = [(m.group("i").strip(), m.group("r").strip()) for m in _QA.finditer(text)]
        q = " ".join(p[0] for p in pairs)
        a = " ".join(p[1] for p in pairs) if sample == 0 else pairs[0][1] if pairs else ""
        if self.distil_format == "broken":
            return f"Here is my merged pair: {q} {a}"
        body = f"<think>merge {len(pairs)} samples</think><answer>Q: {q}\nA: {a}</answer>"
        return body if self.distil_format == "exact" else "Sure. " + body.replace("</answer>", "")
