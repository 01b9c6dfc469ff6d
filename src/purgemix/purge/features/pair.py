"""The ``pair`` scorer: how the response relates to its instruction and input (word overlap, echoes,
a bare repeat) and whether the instruction asks for a translation.

Its own module because it is the one scorer of the ``pair`` role: it writes one column per record
pair, not per role.
"""

from __future__ import annotations

import re

import numpy as np

from .base import Batch, Feature, scorer

_TRANSLATE = re.compile(r"\btranslat|\b(?:in|into|to) (?:french|spanish|german|italian|portuguese|chinese|japanese|"
                        r"korean|russian|arabic|hindi|dutch|swedish|latin|greek|turkish|polish|vietnamese|"
                        r"indonesian|hebrew|mandarin|cantonese|another language|other languages)\b|"
                        r"\b(?:french|spanish|german|italian|portuguese|chinese|japanese|korean|russian|arabic|latin|"
                        r"hindi|dutch) (?:word|phrase|sentence|text|translation|equivalent|version|for)\b", re.I)


# the instruction casts the speaker (or the writer of the answer) as an AI: then "As an AI ..." is the role
_AI_PERSONA = re.compile(
    r"\b(?:you are|you're|you are now|as|play(?:ing)?|pretend(?: to be| you are)?|imagine (?:you are|being)|act as|"
    r"role ?-?play(?:ing)?(?: as)?|take on the role of|in the role of|written by|from the perspective of)\s+"
    r"(?:an?\s+|the\s+)?(?:[\w-]+\s+){0,3}?(?:ai|a\.i\.|artificial intelligence|language model|chatbot|chat bot|robot|"
    r"android|virtual assistant|computer program|machine)\b|\bsentient (?:ai|machine|robot)\b|"
    r"\bfuture (?:ai|language model)\b|\bai[- ](?:therapist|coach|judge|chef|assistant|companion|character|tutor|"
    r"counselor|counsellor|advisor|doctor|lawyer|teacher|guide)\b", re.I)


# the instruction asks for verse: a chorus or refrain repeats by design
_VERSE_TASK = re.compile(r"\b(?:songs?|lyrics?|poems?|poetry|chorus|refrain|chant|rap|verses?|rhymes?|jingle|anthem|"
                         r"limerick|ballad|lullaby|hymn|sonnet|ode)\b", re.I)


# the instruction asks for symbols by nature: code, a pattern, a table, a formula, markup, data
_STRUCTURED_TASK = re.compile(
    r"\b(?:code|program|function|script|snippet|regex|regexp|regular expression|pattern|sql|query|json|yaml|xml|"
    r"csv|tables?|matrix|matrices|arrays?|equations?|formula|expression|html|css|markdown|latex|syntax|command|bash|"
    r"shell|coordinates?|boolean|truth table|parse tree|tree|ascii|emoji|emoticon|symbols?|notation|binary|hex|"
    r"hexadecimal|url|path|programming|python|java|javascript|c\+\+|ruby|go|rust|php|swift|kotlin|typescript)\b",
    re.I)


@scorer("pair", "2", ("pair",), {
    "overlap": Feature("|instruction words & response words| / |response words| (distinct \\w+ words)", "none"),
    "echo": Feature("fraction of the response's word 3-grams found in the instruction (1 = repeats it)", "high"),
    "echo_input": Feature("fraction of the response's word 3-grams found in the input", "none"),
    "echo_exact": Feature("1 if the response's \\w+ words contain those of the instruction (>= 2 words) with at most "
                          "15 more characters (a bare repeat, maybe after 'Sure!'), or the response is a short input "
                          "unchanged", "high", "flag"),
    "translation_task": Feature("1 if the instruction asks for a translation or an answer in another language",
                                "none", "flag"),
    "ai_persona": Feature("1 if the instruction or input casts the speaker as an AI (role-play of an AI coach, a letter "
                          "by a sentient AI): an 'As an AI' line is then the role, not a disclaimer", "none", "flag"),
    "verse_task": Feature("1 if the instruction asks for a song, poem, chant or rhyme (a chorus repeats by design)",
                          "none", "flag"),
    "structured_task": Feature("1 if the instruction asks for code, a pattern, a table, a formula, markup or data "
                               "(answers that are mostly symbols by nature)", "none", "flag"),
})
def _pair(b: Batch, role: str):
    ri, rr, rin = b.words("instruction"), b.words("response"), b.words("input")
    overlap = np.zeros(b.n)
    echo = np.zeros(b.n)
    echo_in = np.zeros(b.n)
    exact = np.zeros(b.n, dtype=np.int64)
    res_texts, in_texts = b.texts["response"], b.texts["input"]
    for i, (r, s, x) in enumerate(zip(rr, ri, rin)):
        if not r:
            continue
        rs = set(r)
        overlap[i] = len(rs.intersection(s)) / len(rs)
        if len(r) >= 3:
            g = set(zip(r, r[1:], r[2:]))  # word 3-grams; the other side is not made a set
            if len(s) >= 3:
                echo[i] = len(g.intersection(zip(s, s[1:], s[2:]))) / len(g)
            if len(x) >= 3:
                echo_in[i] = len(g.intersection(zip(x, x[1:], x[2:]))) / len(g)
        if len(s) >= 2:
            rn = " ".join(r)
            sn = " ".join(s)
            if len(rn) - len(sn) <= 15 and sn in rn:
                exact[i] = 1
                continue
        if x and len(r) <= 20 and res_texts[i].split() == in_texts[i].split():
            exact[i] = 1  # a short input returned character for character (edits of punctuation are answers)
    trans = np.fromiter((1 if _TRANSLATE.search(t) else 0 for t in b.texts["instruction"]), dtype=np.int64,
                        count=b.n)
    persona = np.fromiter((1 if _AI_PERSONA.search(t) or _AI_PERSONA.search(x) else 0
                           for t, x in zip(b.texts["instruction"], in_texts)), dtype=np.int64, count=b.n)
    verse = np.fromiter((1 if _VERSE_TASK.search(t) else 0 for t in b.texts["instruction"]), dtype=np.int64,
                        count=b.n)
    return {"overlap": overlap, "echo": echo, "echo_input": echo_in, "echo_exact": exact, "translation_task": trans,
            "ai_persona": persona, "verse_task": verse,
            "structured_task": np.fromiter((1 if _STRUCTURED_TASK.search(t) else 0 for t in b.texts["instruction"]),
                                           dtype=np.int64, count=b.n)}
