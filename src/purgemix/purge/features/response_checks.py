"""The ``response_checks`` scorer: signals of a bad answer that only a response can have (refusals,
AI disclaimers, non-answers, truncation, repeated sentences, invalid Python or JSON).

Its own module because it is the one scorer that reads the other roles to judge the response (the
instruction decides whether code or JSON is asked for) and the one that runs the truncation checks
of ``truncation_flags`` and ``truncation_evidence`` over the batch.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Sequence

import numpy as np

from .base import ROLES, Batch, Feature, count_hits, scorer
from .truncation_evidence import columns as truncation_columns

_REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid),? but I (?:can(?:not|'t)|am (?:not able|unable)|won't)"
    r"|I (?:can(?:not|'t)|am unable to|won't|will not) (?:help|assist|provide|fulfil+|comply|do that|answer|create|"
    r"generate|write|complete) (?:with )?(?:that|this|your|the)"
    r"|I (?:must|have to) (?:respectfully )?(?:decline|refuse)"
    r"|(?:this|that|your) request (?:is|goes) against"
    r"|I'm not able to (?:help|assist|provide|comply))", re.I)
_DISCLAIMER = re.compile(
    r"\bas an? (?:AI|artificial intelligence|large language model|language model|AI language model|AI assistant)\b"
    r"|\bI(?:'m| am) (?:just |only )?an? (?:AI|language model|AI language model|virtual assistant)\b"
    r"|\bI do not have (?:personal )?(?:opinions|feelings|emotions|beliefs|access to (?:the internet|real-time))"
    r"|\bmy (?:training data|knowledge cutoff)\b", re.I)
_NON_ANSWER = re.compile(r"^\W*(?:n/?a|none|null|nan|no (?:output|answer|response)|not applicable|<no ?output>|"
                         r"i don'?t know|unknown|tbd|\.\.\.|-|\?+)?\W*$", re.I)
_CODE_TASK = re.compile(r"\b(?:code|program|function|script|python|java|javascript|c\+\+|sql|query|regex|regular "
                        r"expression|algorithm|class|method|html|css|json|xml|bash|shell|compile|implement|snippet|"
                        r"syntax|debug|api)\b", re.I)
_FENCE = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_PY_HINT = re.compile(r"\bpython\b|\bdef \w+\(|^\s*import \w+|^\s*from \w+ import|print\(", re.I | re.M)

_REFUSAL_HINTS = ("sorry", "afraid", "cannot", "can't", "unable", "won't", "will not", "decline", "refuse",
                  "against", "not able")
_DISCLAIMER_HINTS = (" ai", "artificial", "language model", "opinions", "feelings", "emotions", "beliefs",
                     "access to", "training data", "knowledge cutoff", "assistant")


@scorer("response_checks", "7", ("response",), {
    "refusal": Feature("1 if a refusal phrase occurs (I'm sorry, but I cannot ..., I must decline ...)", "high",
                       "flag"),
    "ai_disclaimer": Feature("hits of AI-disclaimer phrases (As an AI language model, I do not have opinions ...)",
                             "high", "int"),
    "non_answer": Feature("1 if empty or only a non-answer (N/A, none, no output, ..., I don't know)", "high", "flag"),
    "ends_open": Feature("1 if the last character is a letter, digit, comma or an opening mark", "high", "flag"),
    "unbalanced_fence": Feature("number of ``` fences is odd", "high", "flag"),
    "unclosed_brackets": Feature("sum over (), [], {} of max(0, openers - closers)", "high", "int"),
    "list_cut": Feature("1 if the answer ends in a list item that is empty or stops open while the earlier items "
                        "are closed", "high", "flag"),
    "truncated": Feature("1 if unbalanced_fence or list_cut, or a non-code answer that ends open on a comma/dash, "
                         "on a function word (the, and, of, whereas ...), on a lower-case fragment seen fewer than "
                         "twice in the batch (a word cut in half), with unclosed brackets, or short of what the "
                         "prompt asks for (the last item to classify, the number of items, a name it continues)",
                         "high", "flag"),
    "ends_open_prose": Feature("1 if a prose answer (>= 12 words, >= 1 full sentence, not code, not a list) ends "
                               "open (no final punctuation)", "high", "flag"),
    "end_evidence": Feature("log Bayes factor 'complete' vs 'cut here' of an open answer (>= 4 words, not code): "
                            "how often the pool ends a sentence or line on its last word(s) against how often a "
                            "random cut would leave them, plus the log share of open endings among the pool's "
                            "answers of the same shape (without the cuts the structural checks find, nor the "
                            "share of cuts they miss); NaN for answers that end closed", "low"),
    "sentence_repeats": Feature("most occurrences of one sentence or line of >= 3 words (case-folded)", "high",
                                "int"),
    "python_invalid": Feature("1 if a Python code block (```python, or Python-looking code for a Python task) does "
                              "not compile; NaN without Python code", "high", "flag"),
    "json_invalid": Feature("1 if the instruction asks for JSON and no valid JSON value is found in the response; "
                            "NaN otherwise", "high", "flag"),
})
def _response_checks(b: Batch, role: str):
    texts = b.texts["response"]
    lower = b.lower("response")
    instr = b.texts["instruction"]
    code_task = [bool(_CODE_TASK.search(i)) for i in instr]
    vocab = b.cached("vocab", lambda: _vocab(b))
    trunc, evidence = truncation_columns(texts, lower, b.words("response"), code_task, vocab,
                                         _Joined(b.words("instruction"), b.words("input")),
                                         _Joined(b.lower("instruction"), b.lower("input"), "\n"),
                                         instr, b.texts["input"])
    py = np.full(b.n, np.nan)
    js = np.full(b.n, np.nan)
    for i, (t, ins) in enumerate(zip(texts, b.lower("instruction"))):
        if "```" in t or ("python" in ins and _PY_HINT.search(t)):
            py[i] = _python_invalid(t, "python" in ins)
        if "json" in ins:
            js[i] = _json_invalid(t)
    return {
        "refusal": np.minimum(count_hits(_REFUSAL, texts, lower, _REFUSAL_HINTS), 1),
        "ai_disclaimer": count_hits(_DISCLAIMER, texts, lower, _DISCLAIMER_HINTS),
        "non_answer": np.fromiter((1 if _NON_ANSWER.match(t) else 0 for t in texts), dtype=np.int64, count=b.n),
        "ends_open": trunc[:, 0],
        "unbalanced_fence": trunc[:, 1],
        "unclosed_brackets": trunc[:, 2],
        "list_cut": trunc[:, 3],
        "truncated": trunc[:, 4],
        "ends_open_prose": trunc[:, 5],
        "end_evidence": evidence,
        "sentence_repeats": np.fromiter((_sentence_repeats(t) for t in lower), dtype=np.int64, count=b.n),
        "python_invalid": py,
        "json_invalid": js,
    }


class _Joined:
    """``a[i] + sep + b[i]`` made when item i is asked for: the truncation evidence reads the prompts (the
    instruction and input joined) of the open answers and of a sample, not of every record."""

    def __init__(self, a: Sequence, b: Sequence, sep=None):
        self.a, self.b, self.sep = a, b, sep

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int):
        return self.a[i] + self.b[i] if self.sep is None else self.a[i] + self.sep + self.b[i]


def _vocab(b: Batch) -> dict[str, int]:
    """Word counts over the batch (instructions, inputs, responses), minus each response's last word."""
    from collections import Counter
    from itertools import chain

    c: Counter = Counter(chain.from_iterable(chain.from_iterable(b.words(role) for role in ROLES)))
    for ws in b.words("response"):
        if ws:
            c[ws[-1]] -= 1
    return c


_SENT_SPLIT = re.compile(r"[.!?\n]+")


def _sentence_repeats(lower: str) -> int:
    if len(lower) < 40:
        return 0
    parts = [" ".join(p.split()) for p in _SENT_SPLIT.split(lower)]
    parts = [p for p in parts if p.count(" ") >= 2]
    if len(parts) < 3:
        return 0
    if len(set(parts)) == len(parts):
        return 1  # the usual case, without counting
    from collections import Counter

    return max(Counter(parts).values())


_CODE_LINE = re.compile(
    r"^\s*(?:def \w+\s*\(|class \w+|import \w|from [\w.]+ import |for .+ in .+:\s*$|while .+:\s*$|if .+:\s*$|"
    r"elif .+:\s*$|else\s*:\s*$|try\s*:\s*$|except\b.*:\s*$|finally\s*:\s*$|with .+:\s*$|return\b|print\(|@\w+|"
    r"[A-Za-z_][\w.\[\]'\"]*\s*(?:[-+*/%]|//|\*\*)?=\s*\S|[A-Za-z_][\w.]*\(.*\)\s*$|pass\s*$|break\s*$|"
    r"continue\s*$|raise\b|yield\b|[\]\)\}],?\s*$)")


def _code_run(text: str) -> str | None:
    """The longest run of lines that look like Python in an unfenced response (indented lines after a code
    line, and blank lines inside, belong to it); None when fewer than two lines look like code. Prose about
    Python is not code, and a prose lead-in before the code is not part of it."""
    best: list[str] = []
    best_code = 0
    run: list[str] = []
    code = 0
    for line in text.split("\n"):
        is_code = bool(_CODE_LINE.match(line)) or (bool(run) and (line[:1] in (" ", "\t") or not line.strip()))
        if is_code:
            run.append(line)
            code += bool(line.strip())
            if code > best_code:
                best, best_code = list(run), code
        else:
            run, code = [], 0
    if best_code < 2:
        return None
    import textwrap

    return textwrap.dedent("\n".join(best)).strip("\n")


def _python_invalid(text: str, python_task: bool) -> float:
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    codes = [body for lang, body in blocks if lang in ("python", "py", "python3") or (not lang and python_task)]
    if not blocks and python_task:
        run = _code_run(text)
        codes = [run] if run else []
    if not codes:
        return float("nan")
    for code in codes:
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return 1.0
    return 0.0


_JSON_START = re.compile(r"[\[{]")


def _json_invalid(text: str) -> float:
    candidates = [body for _, body in _FENCE.findall(text)] or [text]
    dec = json.JSONDecoder()
    for c in candidates:
        c = c.strip()
        for k, m in enumerate(_JSON_START.finditer(c)):
            if k >= 20:  # bounded work on long texts full of brackets
                break
            try:
                dec.raw_decode(c, m.start())
                return 0.0
            except (ValueError, RecursionError):
                continue
    return 1.0
