"""The ``artefacts`` scorer: leftovers of the data's making (prompt-template markers, unfilled
placeholders, HTML remnants) in any role.

Its own module because these are the patterns of a broken export, not of a bad answer: they apply
to every role, unlike the response checks.
"""

from __future__ import annotations

import re

import numpy as np

from .base import ALL, Batch, Feature, count_hits, scorer

_TEMPLATE = re.compile(
    r"<\s*no\s*_?input\s*>|<\s*no\s*_?output\s*>|^\s*#{2,4}\s*(?:Instruction|Response|Input|Output|Human|Assistant|"
    r"System|Answer|Question)\b\s*:?|<\|(?:im_start|im_end|endoftext|eot_id|start_header_id|end_header_id|system|user|"
    r"assistant|end)\|>|\[/?INST\]|<</?SYS>>|</?s>|^\s*(?:Human|Assistant|USER|ASSISTANT)\s*:", re.I | re.M)
_PLACEHOLDER = re.compile(
    r"\{\{\s*\w+\s*\}\}|\{(?:instruction|input|output|response|question|answer|text|context|prompt|query|topic|"
    r"name)\}|<(?:INSERT|PLACEHOLDER|YOUR|TODO)[^>]{0,40}>|\[(?:insert|placeholder|TODO)[^\]]{0,40}\]"
    r"|\bLorem ipsum\b|\bTODO:|\bXXX+\b", re.I)
_HTML = re.compile(r"&(?:nbsp|amp|lt|gt|quot|apos|#\d{2,5});|<br\s*/?>|</?(?:p|div|span|b|i|strong|em|li|ul|ol|"
                   r"h[1-6]|table|tr|td|a)(?:\s[^<>]{0,80})?>", re.I)
_MARKUP_TASK = re.compile(r"\b(?:html|css|xml|tag|tags|web ?page|website|markup|svg|jsx|react|angular|vue|php|"
                          r"entity|entities|escape|encode|javascript|js)\b", re.I)

_TEMPLATE_HINTS = ("<", "#", "[", "human", "assistant", "user")
_PLACEHOLDER_HINTS = ("{", "<", "[", "lorem", "todo", "xxx")
_HTML_HINTS = ("&", "<")


@scorer("artefacts", "1", ALL, {
    "template_markers": Feature("hits of leftover prompt-template markers (<noinput>, ### Response:, "
                                "<|im_end|>, [INST], </s>, 'Assistant:' line starts)", "high", "int"),
    "placeholders": Feature("hits of unfilled placeholders ({{x}}, {instruction}, <INSERT ...>, [TODO ...], "
                            "Lorem ipsum)", "high", "int"),
    "html_remnants": Feature("HTML entities and common tags, outside a markup/code task", "high", "int"),
})
def _artefacts(b: Batch, role: str):
    texts = b.texts[role]
    lower = b.lower(role)
    html = count_hits(_HTML, texts, lower, _HTML_HINTS)
    markup_task = b.cached("markup_task", lambda: np.fromiter(
        (bool(_MARKUP_TASK.search(t)) for t in b.texts["instruction"]), dtype=bool, count=b.n))
    html[markup_task] = 0
    return {"template_markers": count_hits(_TEMPLATE, texts, lower, _TEMPLATE_HINTS),
            "placeholders": count_hits(_PLACEHOLDER, texts, lower, _PLACEHOLDER_HINTS),
            "html_remnants": html}
