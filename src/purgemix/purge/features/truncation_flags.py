"""Truncation flags: structural checks of one response, does it stop where it was cut off?

``flags(text, ...)`` checks whether a response ends open (no final punctuation), inside an unclosed
code fence or bracket, on an empty or open list item, on a comma or function word, on a fragment seen
nowhere else in the batch, on a list line that lacks the ``key: value`` shape of the lines before it,
or on words that the same response continues everywhere else ("... Judas Priest\\n... Judas"); on a
label list item without its label ("Cooking: Indoor Activity\\nSurfing: Outdoor"), on a new sentence
of a word or two ("... of March. Betrayal"), or short of what the prompt asks for (``asked``): before
the last item it asks to classify each of, with fewer items than it asks for, or on a name of the
prompt that it always continues ("... Lisa Brummel, Ginny" / "Ginny Gilder").

Separate from ``truncation_evidence``: these checks read one response (and its prompt) at a time and
fit nothing; the evidence is fitted to the pool and uses them (to leave the cuts they explain out of
its rates, and to measure how many random cuts they catch).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import NamedTuple

# words that almost never end a complete English answer: an answer that stops on one was cut off
CONNECTORS = frozenset("""a an the and or but nor of to with for in on at by from as that which who whom whose
is are was were be been being has have had its their his her our your my this these those such very more most
than if because while although though whereas into onto about between through during including like unlike
via per versus vs so then also not no can could would should will shall may might must do does did""".split())

# a letter's closing ("Yours sincerely,\nJane") or a hashtag legitimately ends without punctuation
SIGNOFF = re.compile(r"(?:^|[\n.!?][ \t]*)(?:(?:yours )?(?:sincerely|faithfully|truly|cordially|respectfully|"
                     r"affectionately)|(?:(?:best|kind|warm|warmest) )?regards|yours|cheers|best wishes|with love|good luck|enjoy|"
                     r"bon app[e\u00e9]tit|happy \w+ing|"
                     r"warmly|thank you|thanks|love|with (?:respect|gratitude|appreciation))\b[^\n]{0,40}(?:\n[^\n]{0,60})?$|"
                     r"#\w+$|"
                     # a closing line that ends on a comma, then up to three short lines: "Yours,\n\nJane\nRecruiter"
                     r"\n[^\n]{1,40},[ \t]*\n\s*(?:[^\n]{1,40}\n){0,2}[^\n]{1,40}$|"
                     # a signature or attribution after the last sentence: "... Best of luck! - Harry",
                     # "... hold the world together." - Woodrow Wilson
                     r"[.!?][\"'\u201d\u2019]?[ \t]+[-\u2013\u2014~][ \t]?(?-i:[A-Z])[\w.']*(?:[ \t](?-i:[A-Z])[\w.']*){0,2}$", re.I)

WORD = re.compile(r"\w+")
LIST_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*\u2022+]|[a-zA-Z][.)])(?:\s+|$)")
TERMINAL = set(".!?)]}\"'\u201d\u2019>`*;\u3002\uff01\uff1f|%")
CODE_LINE = re.compile(r"^\s*(?:def |class |import |from \w+ import|return\b|if .*:$|for .*:$|while .*:$|#include|"
                       r"public |private |function |var |let |const |SELECT |INSERT |<\w+|\}|\{)", re.M)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
# "key: value" / "key - value" lines (a classification or mapping list)
_KEYED = (re.compile(r"^[^:\n]{1,60}:\s*\S"), re.compile(r"^[^\n]{1,60}\s[-\u2013\u2014]\s+\S"))

MIN_WORDS = 4  # end_evidence is computed for open answers of at least this many words


class Asked(NamedTuple):
    """What a prompt asks the answer to cover: ``items``, the items of a list it asks to classify or label each
    of ("Classify each as hot or cold: snow, fire, lava"), ``count``, the number of things it asks for ("Name ten
    Shakespeare plays"; 0 when it names none), and ``text``, the prompt itself (instruction and input)."""

    items: tuple[str, ...] = ()
    count: int = 0
    text: str = ""


NO_ASK = Asked()
# a worked answer that ends on its result ("... 60/10 = 6 dollars per day", "= $14400", "= 1,200 dollars"): the
# style of math solutions (GSM8K), complete without a full stop
RESULT_END = re.compile(r"=\s*[-$€£]?\s*\d[\d,]*(?:\.\d+)?\s*%?(?:\s+[A-Za-z$%][\w'-]*){0,5}\s*$")


def flags(text: str, code_task: bool, vocab: dict[str, int], ask: Asked = NO_ASK) -> tuple[int, ...]:
    """(ends_open, unbalanced_fence, unclosed_brackets, list_cut, truncated, ends_open_prose, candidate);
    ``candidate`` is 1 for an open prose-or-list ending that ``end_evidence`` should judge (not code, not
    a letter closing, not a label list that ends on one of its labels). ``ask``: what the prompt asks the
    answer to cover (``asked``)."""
    return detailed_flags(text, code_task, vocab, ask)[:7]


def detailed_flags(text: str, code_task: bool, vocab: dict[str, int], ask: Asked = NO_ASK) -> tuple[int, ...]:
    """``flags`` plus ``soft``: 1 when ``truncated`` rests only on the last word or line (a function word, an
    unseen fragment, an open line after closed sentence lines, a word continued elsewhere), checks that the
    pool's own ending statistics may overrule (``truncation_evidence.columns``), and ``codeish``: 1 when the answer holds code."""
    t = text.rstrip()
    if not t:
        return 0, 0, 0, 0, 0, 0, 0, 0, 0
    fence = t.count("```") % 2
    unclosed = 0
    for o, c in ("()", "[]", "{}"):
        unclosed += max(0, t.count(o) - t.count(c))
    last_line = t.rsplit("\n", 1)[-1]
    last = t[-1]
    ends_open = int(last not in TERMINAL and (last.isalnum() or last in ":,-(/&+=\u2013\u2014"))
    list_cut = 0
    lines = [ln for ln in t.split("\n") if ln.strip()]
    items = [ln for ln in lines if LIST_ITEM.match(ln)]
    if items and LIST_ITEM.match(last_line):
        body = LIST_ITEM.sub("", last_line).strip()
        closed = [ln for ln in items[:-1] if ln.rstrip()[-1:] in TERMINAL]
        if not body:
            list_cut = 1
        elif ends_open and len(items) > 1 and len(closed) >= (len(items) - 1) * 0.8:
            list_cut = 1  # earlier items end with punctuation, the last one stops open
    code_lines = len(CODE_LINE.findall(t))
    # a code task's answer counts as code only when it has some code (instructions that merely mention
    # "class" or "function" are often about something else)
    codeish = "```" in t or code_lines >= 2 or (code_task and code_lines >= 1)
    truncated = 0
    prose = 0
    candidate = 0
    soft = 0
    if fence or list_cut:
        truncated = 1
    elif ends_open and not codeish and not SIGNOFF.search(t[-120:]) and not RESULT_END.search(t[-80:]):
        words = t.split()
        n = len(words)
        candidate = int(n >= MIN_WORDS)
        in_list = bool(items) and LIST_ITEM.match(last_line) is not None
        # a "key: value" table ("Day 6: ...\nDay 7: ...") is a list too, not prose
        in_list = in_list or (len(lines) >= 3 and all(_KEYED[0].match(ln.strip()) for ln in lines[-3:]))
        sentences = len(_SENTENCE_END.findall(t))
        if not in_list and n >= 12 and (sentences >= 1 or n >= 25) and last not in "0123456789":
            prose = 1  # a prose answer of a few sentences that stops open
        tail = WORD.findall(words[-1].lower())
        lw = tail[-1] if tail else ""
        prev = [ln.rstrip() for ln in lines[:-1]]
        labels = _label_list(lines)
        if last in ":,-(/&+=\u2013\u2014" and n >= 3:
            truncated = 1  # stops on a colon, comma, dash or an opening mark
        elif labels > 0:
            candidate = 0  # "Soup: Hot\nIce Cream: Cold\nPasta: Hot": ends on a label the list repeats
        elif labels < 0:
            truncated = 1  # "Hiking: Outdoor Activity\nCooking: Indoor Activity\nSurfing: Outdoor"
        elif _stops_short(t, lines, items, ask):
            truncated = 1  # "Classify ...: ring, glove, mask" answered "Ring: Hand\nGlove"
        elif _stub_sentence(lines):
            truncated = 1  # a new sentence cut after a word or two: "... on the Ides of March. Betrayal"
        elif ask.text and _name_continues(t, ask.text):
            truncated = 1  # "... Lisa Brummel, Ginny" where the prompt only has "Ginny Gilder"
        elif len(prev) >= 2 and len(last_line.split()) >= 3 and all(
                p[-1] in ".!" and 3 <= len(p.split()) <= 25 for p in prev[-3:]):
            truncated = soft = 1  # the earlier lines are sentences that end properly, the last one does not
        elif len(prev) >= 2 and len(last_line.split()) == 1 and len(last_line.strip()) <= 3 and \
                min(len(p.split()) for p in prev[-3:]) >= 2:
            truncated = 1  # a list of multi-word lines that ends on a stub ("Syrah: Red\nR")
        elif lw in CONNECTORS and n >= 3 and "\n" not in t[-len(words[-1]) - 2:]:
            truncated = soft = 1  # stops on a function word: "... whereas a"
        elif lw and lw.isalpha() and len(lw) <= 8 and words[-1].isalpha() and words[-1].islower() \
                and vocab.get(lw, 0) < 2 and n >= 5 \
                and sentences >= 1:
            truncated = soft = 1  # stops on a fragment seen nowhere else in the batch: cut mid-word
        elif unclosed and n >= 8:
            truncated = 1
        elif len(prev) >= 2 and _keyed_cut(prev[-3:], last_line):
            truncated = 1  # "Milan: Italy\nFlorence: Italy\nZurich"
        elif n >= 6 and len(lines) >= 3 and _continued_elsewhere(t, lw):
            truncated = soft = 1  # "... Judas Priest\nPainkiller - Judas"
    return ends_open, fence, unclosed, list_cut, truncated, prose, candidate, soft, int(codeish)


def _keyed_cut(prev: list[str], last_line: str) -> bool:
    """The earlier lines all read ``key: value`` (or ``key - value``) and the last one has no value."""
    if len(last_line.split()) > 4:
        return False
    for pat in _KEYED:
        if all(pat.match(p.strip()) for p in prev) and not pat.match(last_line.strip()):
            sep = ":" if pat is _KEYED[0] else None
            if sep is None or sep not in last_line:
                return True
    return False


# "key: value", "key - value", "key is value" segments of a label list (lines, or comma-separated on one line)
_LABEL_SEP = re.compile(r"\s*(?::|\s[-\u2013\u2014]|\s(?:is|are)\b)\s+")
_SEGMENTS = re.compile(r"[,;]\s+")


def _label(seg: str) -> str | None:
    m = _LABEL_SEP.search(seg)
    if m is None or m.start() == 0:
        return None
    return seg[m.end():].strip().rstrip(".!?;,\"' \t").lower()


def _label_list(lines: list[str]) -> int:
    """A list that gives each item one of a few labels ("Pizza: Hot\nIce Cream: Cold\nSoup: Hot", or the same
    on one line, separated by commas): +1 when the last item's label is one the earlier items use, -1 when
    the last item has no label or a label that only starts one of theirs ("Surfing: Outdoor", "Sevilla: La"),
    0 when the answer is no such list. At least three earlier items, all labelled, at most half as many
    distinct labels as items (at least two allowed) and one used twice."""
    if not lines:
        return 0
    candidates = []
    if len(lines) >= 4:
        candidates.append([ln.strip() for ln in lines])
    one_line = _SEGMENTS.split(lines[-1].strip())
    if len(one_line) >= 4:
        candidates.append(one_line)
    for segs in candidates:
        seen = [_label(s) for s in segs[-9:-1]]
        if not all(seen):
            continue
        counts = Counter(seen)
        if len(counts) > max(3, len(seen) // 2) or max(counts.values()) < 2:
            continue
        last = _label(segs[-1])
        if last is None:
            return -1
        if last in counts:
            return 1
        if any(v.startswith(last) for v in counts):
            return -1
    return 0


_NUMBERS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                       "fourteen fifteen sixteen seventeen eighteen nineteen twenty".split())}
# a number of things asked for: the number (not of years, times, ...), then an asking word up to 30 characters before it
_ASK_NUMBER = re.compile(r"\b(\d{1,2}|" + "|".join(list(_NUMBERS)[3:]) + r")\b(?!\s*(?:%|percent|years?|months?|weeks?|"
                         r"days?|hours?|minutes?|seconds?|times|-|:|th\b|st\b|nd\b|rd\b|and\b|or\b|to\b))")
_ASK_VERB = re.compile(r"\b(?:list|name|give|tell|provide|suggest|recommend|write|what are|top|best|first|last|me)\b"
                       r"[^.?!\n]{0,30}$")
# a prompt that wants every item of its list in the answer: "classify each", "tell me whether", "hot or cold"
_ASK_EACH = re.compile(r"\b(?:classify|categori[sz]e|label|sort|group|whether|each|either|or)\b")
# ... unless the list holds the labels: "classify the text into one of the following categories: news, sports"
_ASK_ONE = re.compile(r"\bone of\b|\b(?:categor(?:y|ies)|class(?:es)?|labels?|options?|choices?|areas?|types?)\s*$")
_ITEM_SPLIT = re.compile(r"\s*[,;]\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")
_INLINE_NUMBER = re.compile(r"(?:^|\s)(\d{1,2})[.)]\s+\S")


def asked(instruction: str, input_: str = "") -> Asked:
    """``Asked`` of an instruction (the items and count are read from its first paragraph) and its input."""
    first = instruction.split("\n\n", 1)[0].lower()
    count = 0
    for m in _ASK_NUMBER.finditer(first):
        if _ASK_VERB.search(first, max(0, m.start() - 40), m.start()):
            g = m.group(1)
            count = _NUMBERS.get(g) or int(g)
            count = count if 3 <= count <= 20 else 0
            break
    items: tuple[str, ...] = ()
    k = max(first.rfind(":"), first.rfind("?"))
    if k > 0 and _ASK_EACH.search(first, 0, k) and not _ASK_ONE.search(first, 0, k):
        tail = first[k + 1:].strip().rstrip(".?!")
        parts = [p.strip() for p in (tail.split("\n") if "\n" in tail else _ITEM_SPLIT.split(tail))]
        parts = [p for p in parts if p]
        if len(parts) >= 3 and all(len(p.split()) <= 5 for p in parts):
            items = tuple(parts)
    return Asked(items, count, instruction + "\n" + input_ if input_ else instruction)


def _answer_items(t: str, lines: list[str], items: list[str]) -> int:
    """How many items a list answer gives: its list-item lines, its lines (less headers that end on a colon), its
    inline numbers ("1. ... 2. ..."), or the comma-separated items of its last line; 0 when it is no list."""
    if len(items) >= 2:
        return len(items)
    body = [ln for ln in lines if not ln.rstrip().endswith(":")]
    if len(body) >= 3:
        return len(body)
    nums = [int(x) for x in _INLINE_NUMBER.findall(t)]
    if nums and nums == list(range(1, len(nums) + 1)):
        return len(nums)
    segs = _ITEM_SPLIT.split(lines[-1].rsplit(":", 1)[-1].strip()) if lines else []
    return len(segs) if len(segs) >= 3 else 0


def _starts_word(text: str, prefix: str) -> bool:
    k = text.find(prefix)
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] == "_"):
        k = text.find(prefix, k + 1)
    return k >= 0


def _stops_short(t: str, lines: list[str], items: list[str], ask: Asked) -> bool:
    """An open answer that stops before it covers what the prompt asks for: it names two or more of the items the
    prompt asks to classify each of, but not the last one, or it lists fewer things than the prompt asks for."""
    if ask.items:
        low = t.lower()
        # an item counts as named when its first four letters start a word (plurals, typos: "fireeworks")
        found = [_starts_word(low, p[:4]) for p in ask.items]
        if sum(found) >= 2 and not found[-1]:
            return True
    if ask.count:
        k = _answer_items(t, lines, items)
        if 0 < k < ask.count:
            return True
    return False


# a full stop after a lower-case letter (not a list number, not an initial), then white space
_FULL_STOP = re.compile(r"(?<=[a-z)\"'\u201d%])[.!?][\"')\]\u201d\u2019]*\s+")
_ABBREVIATIONS = frozenset("mr mrs ms dr st jr sr vs mt ft no co etc inc ltd vol approx".split())
_STUB = re.compile(r"[A-Z][\w'\u2019-]*(?: [A-Za-z][\w'\u2019-]*)?")


def _stub_sentence(lines: list[str]) -> bool:
    """The answer ends on a sentence of one or two words (the first capitalised) after a full sentence of at
    least six words, on the same line or the line before: a cut right after the next sentence began."""
    parts = _FULL_STOP.split(lines[-1].strip())
    if _STUB.fullmatch(parts[-1].strip()) is None:
        return False
    if len(parts) >= 2:
        before = parts[-2].split()
        return len(before) >= 6 and before[-1].lower() not in _ABBREVIATIONS
    prev = lines[-2].strip() if len(lines) >= 2 else ""
    return prev[-1:] in (".", "!", "?") and len(prev.split()) >= 6


_NAME_WORD = re.compile(r"[\w'\u2019-]+")


def _name_continues(t: str, prompt: str) -> bool:
    """The answer ends on two capitalised words that the prompt has, but always followed by another capitalised
    word: a name copied from the prompt and cut ("... Lisa Brummel, Ginny" / "Ginny Gilder", "Yas Marina" /
    "Yas Marina Blue")."""
    ws = _NAME_WORD.findall(t[-60:])
    if len(ws) < 2 or not (ws[-1][:1].isupper() and ws[-2][:1].isupper()):
        return False
    first, last = ws[-2], ws[-1]
    found = False
    k = prompt.find(last)
    while k >= 0:
        e = k + len(last)
        if (k == 0 or not _is_word_char(prompt[k - 1])) and (e >= len(prompt) or not _is_word_char(prompt[e])):
            gap = prompt[max(0, k - len(first) - 3):k]
            j = gap.rfind(first)
            sep = gap[j + len(first):] if j >= 0 else ""
            if j >= 0 and 1 <= len(sep) <= 3 and not any(c.isalnum() or c == "_" or c == "\n" for c in sep) and \
                    (k - len(gap) + j == 0 or not _is_word_char(prompt[k - len(gap) + j - 1])):
                if prompt[e:e + 1] != " " or not prompt[e + 1:e + 2].isupper():
                    return False
                found = True
        k = prompt.find(last, k + 1)
    return found


def _is_word_char(c: str) -> bool:
    return c.isalnum() or c in "_'\u2019-"


_ENDS_IN = re.compile(r"(\w+)[\"')\]*]*(?:[.!?,;:]|[ \t]*\n)")


def _continued_elsewhere(t: str, lw: str) -> bool:
    """The response's last word occurs at least twice earlier in the same response, always followed by more
    words on its line and never at the end of a line, sentence or list item."""
    if not lw or len(lw) < 3:
        return False
    lower = t.lower()
    ws = WORD.findall(lower)
    if len(ws) < 4 or ws[-1] != lw:
        return False
    body = lower[: lower.rfind(lw)]
    if (" " + lw) not in body and ("\n" + lw) not in body:
        return False
    ended = sum(1 for w in _ENDS_IN.findall(body) if w == lw)
    if ended:
        return False
    return len(re.findall(r"\b" + re.escape(lw) + r"[ \t]+\w", body)) >= 2

