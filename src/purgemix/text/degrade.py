"""Noise injection: corrupt clean records in known ways, with a seed, and label what was done.

Used to measure the purge (``benchmarks/purge_quality.py``) and to build MIXTURE-style training
data (imperfect inputs paired with their clean targets). Every function takes a canonical record
and a ``random.Random`` and returns a new record (the input is never modified) plus a label
``{"type": ..., **details}``; functions that need a property the record lacks (e.g. a long enough
response to truncate) raise ``NotApplicable``.

Types: ``truncate``, ``repeat``, ``template``, ``language``, ``empty``, ``typos``, ``duplicate``,
``near_duplicate``, ``echo``, ``refusal``. ``inject(records, ...)`` applies them to disjoint random
subsets and appends the duplicates.
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any, Callable, Sequence

from ..core.record import INPUT_SEPARATOR, Record, input_of, instruction_of, response_of


class NotApplicable(ValueError):
    """The record cannot take this kind of noise (too short, no input, ...)."""


# --- editing helpers --------------------------------------------------------------------------


def _clone(record: Record) -> Record:
    return copy.deepcopy(record)


def set_response(record: Record, text: str) -> Record:
    for m in record["messages"]:
        if m["role"] == "assistant":
            m["content"] = text
            return record
    record["messages"].append({"role": "assistant", "content": text})
    return record


def set_prompt(record: Record, instruction: str, input_text: str | None = None) -> Record:
    """Replace the instruction (and optionally the input) of the first user turn."""
    if input_text is None:
        input_text = input_of(record)
    if input_text and instruction:
        content = f"{instruction}{INPUT_SEPARATOR}{input_text}"
    else:
        content = instruction or input_text
    for m in record["messages"]:
        if m["role"] == "user":
            m["content"] = content
            break
    if input_text:
        record["meta"]["_input"] = input_text
    else:
        record["meta"].pop("_input", None)
    return record


_SENT = re.compile(r"(?<=[.!?])\s+")


# --- the corruptions --------------------------------------------------------------------------


def truncate(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """Cut the response at 35-85% of its length (at a word boundary or mid-word), no final stop."""
    resp = response_of(record)
    if len(resp.split()) < 12:
        raise NotApplicable("response shorter than 12 words")
    cut = int(len(resp) * rng.uniform(0.35, 0.85))
    if rng.random() < 0.5:  # at a word boundary
        cut = resp.rfind(" ", 0, cut) if resp.rfind(" ", 0, cut) > 0 else cut
    text = resp[:cut].rstrip()
    text = text.rstrip(".!?;:)]}\"'`*").rstrip()
    if not text or text[-1] in ".!?":
        raise NotApplicable("cannot cut mid-sentence")
    return set_response(_clone(record), text), {"type": "truncate", "kept_chars": len(text), "of_chars": len(resp)}


def repeat(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """Degenerate repetition: a sentence or line repeated, the whole answer repeated, or a phrase loop."""
    resp = response_of(record).strip()
    if len(resp.split()) < 4:
        raise NotApplicable("response shorter than 4 words")
    mode = rng.choice(["sentence", "whole", "loop", "lines"])
    if mode == "sentence":
        sents = [s for s in _SENT.split(resp) if s.strip()]
        s = rng.choice(sents[-3:])
        text = resp + (" " + s) * rng.randint(3, 6)
    elif mode == "whole":
        text = "\n\n".join([resp] * rng.randint(3, 4))
    elif mode == "lines":
        lines = [ln for ln in resp.split("\n") if ln.strip()] or [resp]
        ln = rng.choice(lines)
        text = resp + ("\n" + ln) * rng.randint(4, 8)
    else:
        words = resp.split()
        k = rng.randint(3, min(8, len(words)))
        start = rng.randint(0, len(words) - k)
        phrase = " ".join(words[start:start + k])
        text = " ".join(words[: start + k]) + (" " + phrase) * rng.randint(5, 10)
    return set_response(_clone(record), text), {"type": "repeat", "mode": mode}


_TEMPLATES: list[tuple[str, Callable[[Record, random.Random], Record]]] = []


def _tmpl(name):
    def deco(fn):
        _TEMPLATES.append((name, fn))
        return fn

    return deco


@_tmpl("response-marker")
def _t_marker(r, rng):
    return set_response(r, rng.choice(["### Response:\n", "### Response: ", "Response:\n### Response:\n"])
                        + response_of(r))


@_tmpl("trailing-special-token")
def _t_token(r, rng):
    tokens = ["<|im_end|>", "</s>", "<|endoftext|>", "\n<|im_end|>\n<|im_start|>user"]
    return set_response(r, response_of(r) + rng.choice(tokens))


@_tmpl("noinput")
def _t_noinput(r, rng):
    if input_of(r):
        return set_response(r, "<noinput>\n" + response_of(r))
    return set_prompt(r, instruction_of(r), "<noinput>")


@_tmpl("instruction-marker")
def _t_imarker(r, rng):
    return set_prompt(r, "### Instruction:\n" + instruction_of(r))


@_tmpl("placeholder")
def _t_placeholder(r, rng):
    return set_prompt(r, rng.choice(["{instruction}", "{{prompt}}", "<INSERT QUESTION HERE>"]))


@_tmpl("html")
def _t_html(r, rng):
    words = response_of(r).split(" ")
    i = rng.randint(0, len(words))
    words.insert(i, rng.choice(["&nbsp;", "<br>", "<br/>", "</p><p>", "&amp;", "<div>"]))
    return set_response(r, " ".join(words))


@_tmpl("chat-turn")
def _t_chat(r, rng):
    return set_response(r, response_of(r) + "\n\n### Human: " + rng.choice(["Thanks!", "Can you say more?"]))


def template(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """Leave a prompt-template artefact behind (markers, special tokens, <noinput>, placeholders, HTML)."""
    name, fn = rng.choice(_TEMPLATES)
    return fn(_clone(record), rng), {"type": "template", "artefact": name}


FOREIGN = {
    "fr": ["La réponse dépend de plusieurs facteurs importants qu'il faut examiner attentivement.",
           "Il est recommandé de commencer par une analyse détaillée de la situation actuelle.",
           "Ensuite, nous pouvons comparer les différentes options et choisir la meilleure.",
           "Cette méthode est simple, efficace et souvent utilisée par les experts.",
           "En conclusion, il faut tenir compte du contexte avant de prendre une décision.",
           "Les résultats montrent clairement une amélioration par rapport à l'année dernière."],
    "de": ["Die Antwort hängt von mehreren wichtigen Faktoren ab, die man genau prüfen sollte.",
           "Zunächst empfiehlt es sich, die aktuelle Situation gründlich zu analysieren.",
           "Danach können wir die verschiedenen Möglichkeiten vergleichen und die beste auswählen.",
           "Diese Methode ist einfach, wirksam und wird oft von Fachleuten verwendet.",
           "Zusammenfassend muss man den Zusammenhang berücksichtigen, bevor man entscheidet.",
           "Die Ergebnisse zeigen deutlich eine Verbesserung gegenüber dem letzten Jahr."],
    "es": ["La respuesta depende de varios factores importantes que hay que examinar con cuidado.",
           "Se recomienda empezar con un análisis detallado de la situación actual.",
           "Después podemos comparar las diferentes opciones y elegir la mejor.",
           "Este método es sencillo, eficaz y muy utilizado por los expertos.",
           "En conclusión, hay que tener en cuenta el contexto antes de tomar una decisión.",
           "Los resultados muestran claramente una mejora con respecto al año pasado."],
    "it": ["La risposta dipende da diversi fattori importanti che vanno esaminati con attenzione.",
           "Si consiglia di iniziare con un'analisi dettagliata della situazione attuale.",
           "Poi possiamo confrontare le diverse opzioni e scegliere la migliore.",
           "Questo metodo è semplice, efficace e spesso usato dagli esperti.",
           "In conclusione, bisogna considerare il contesto prima di prendere una decisione.",
           "I risultati mostrano chiaramente un miglioramento rispetto all'anno scorso."],
    "pt": ["A resposta depende de vários fatores importantes que devem ser examinados com cuidado.",
           "Recomenda-se começar com uma análise detalhada da situação atual.",
           "Depois podemos comparar as diferentes opções e escolher a melhor.",
           "Este método é simples, eficaz e muito usado pelos especialistas.",
           "Em conclusão, é preciso considerar o contexto antes de tomar uma decisão.",
           "Os resultados mostram claramente uma melhoria em relação ao ano passado."],
    "nl": ["Het antwoord hangt af van verschillende belangrijke factoren die je goed moet bekijken.",
           "Het is aan te raden te beginnen met een grondige analyse van de huidige situatie.",
           "Daarna kunnen we de verschillende mogelijkheden vergelijken en de beste kiezen.",
           "Deze methode is eenvoudig, doeltreffend en wordt vaak door deskundigen gebruikt.",
           "Kortom, je moet rekening houden met de context voordat je een beslissing neemt.",
           "De resultaten laten duidelijk een verbetering zien ten opzichte van vorig jaar."],
}


def language(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """Replace the response with text in another language (about the same number of sentences)."""
    lang = rng.choice(sorted(FOREIGN))
    n = max(1, min(6, len(_SENT.split(response_of(record).strip()))))
    sents = rng.sample(FOREIGN[lang], n)
    return set_response(_clone(record), " ".join(sents)), {"type": "language", "lang": lang}


def empty(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """Empty the response (empty, blank, or a bare non-answer)."""
    text = rng.choice(["", " ", "\n", "N/A", "None", "...", "<nooutput>", "No output."])
    return set_response(_clone(record), text), {"type": "empty", "response": text}


_KEYS = "abcdefghijklmnopqrstuvwxyz"


def typos(record: Record, rng: random.Random, rate: float = 0.08) -> tuple[Record, dict]:
    """Swap, drop, double or replace one letter in about ``rate`` of the response's words."""
    words = response_of(record).split(" ")
    n = 0
    for i, w in enumerate(words):
        if len(w) > 3 and w.isalpha() and rng.random() < rate:
            j = rng.randint(1, len(w) - 2)
            op = rng.randint(0, 3)
            if op == 0:
                w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
            elif op == 1:
                w = w[:j] + w[j + 1:]
            elif op == 2:
                w = w[:j] + w[j] + w[j:]
            else:
                w = w[:j] + rng.choice(_KEYS) + w[j + 1:]
            words[i] = w
            n += 1
    if not n:
        raise NotApplicable("no word to misspell")
    return set_response(_clone(record), " ".join(words)), {"type": "typos", "words": n}


def duplicate(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """An exact copy (half of the time with different case, spacing or final punctuation)."""
    r = _clone(record)
    variant = "verbatim"
    if rng.random() < 0.5:
        variant = rng.choice(["spacing", "case", "punct"])
        resp = response_of(r)
        if variant == "spacing":
            resp = "  " + resp.replace(" ", "  ") + "\n"
        elif variant == "case":
            resp = resp.upper() if rng.random() < 0.3 else resp.lower()
        else:
            resp = resp.rstrip(".") if resp.endswith(".") else resp + "."
        set_response(r, resp)
    r["id"] = f"{record['id']}-dup"
    return r, {"type": "duplicate", "of": record["id"], "variant": variant}


_FILLERS = ["really", "also", "very", "quite", "just", "actually", "indeed", "simply"]


def near_duplicate(record: Record, rng: random.Random, rate: float = 0.04) -> tuple[Record, dict]:
    """A copy with about ``rate`` of the response's words changed (at least one), e.g. a paraphrase
    by a near-identical generator; needs at least 40 words so the copy stays above ~0.8 Jaccard."""
    words = response_of(record).split(" ")
    total = len((instruction_of(record) + " " + input_of(record)).split()) + len(words)
    if total < 40 or len(words) < 20:
        raise NotApplicable("too short for a near-duplicate")
    k = max(1, int(len(words) * rate))
    for _ in range(k):
        i = rng.randrange(len(words))
        op = rng.randint(0, 2)
        if op == 0:
            words.insert(i, rng.choice(_FILLERS))
        elif op == 1 and len(words) > 1:
            words.pop(i)
        else:
            words[i] = rng.choice(_FILLERS)
    r = set_response(_clone(record), " ".join(words))
    r["id"] = f"{record['id']}-near"
    return r, {"type": "near_duplicate", "of": record["id"], "edits": k}


def echo(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """The response repeats the instruction (sometimes with a lead-in)."""
    ins = instruction_of(record)
    if len(ins.split()) < 3:
        raise NotApplicable("instruction shorter than 3 words")
    text = rng.choice(["", "", "Sure! ", "Answer: "]) + ins
    return set_response(_clone(record), text), {"type": "echo"}


REFUSALS = [
    "I'm sorry, but I cannot help with that request.",
    "I'm sorry, but I can't provide that information.",
    "As an AI language model, I do not have personal opinions, so I cannot answer this question.",
    "I am unable to assist with that.",
    "I must respectfully decline to answer this question.",
    "As an AI, I cannot complete this task. Please consult a professional.",
]


def refusal(record: Record, rng: random.Random) -> tuple[Record, dict]:
    """Replace the response with (or prefix it by) a refusal or an AI disclaimer."""
    text = rng.choice(REFUSALS)
    if rng.random() < 0.3:
        text = text + " " + response_of(record)
    return set_response(_clone(record), text), {"type": "refusal"}


NOISES: dict[str, Callable[..., tuple[Record, dict]]] = {
    "truncate": truncate, "repeat": repeat, "template": template, "language": language, "empty": empty,
    "typos": typos, "duplicate": duplicate, "near_duplicate": near_duplicate, "echo": echo, "refusal": refusal,
}
ADDS_RECORD = {"duplicate", "near_duplicate"}  # these add a copy; the others replace the record


def inject(records: Sequence[Record], types: Sequence[str] | None = None, rate: float = 0.03, seed: int = 0,
           ) -> tuple[list[Record], dict[str, dict[str, Any]]]:
    """Corrupt ``rate`` of the records with each type (disjoint subsets). Returns the new list
    (originals first, in order, with replaced records in place; copies appended in random order) and
    ``{id: label}`` for every noisy record (copies are labelled, their originals are not)."""
    types = list(types or NOISES)
    unknown = [t for t in types if t not in NOISES]
    if unknown:
        raise ValueError(f"unknown noise type(s) {', '.join(unknown)}; use {', '.join(NOISES)}")
    rng = random.Random(seed)
    out = list(records)
    order = list(range(len(records)))
    rng.shuffle(order)
    labels: dict[str, dict[str, Any]] = {}
    used: set[int] = set()
    added: list[Record] = []
    want = max(1, int(len(records) * rate))
    for t in types:
        done = 0
        for i in order:  # records a type cannot take stay available to the next types
            if done >= want:
                break
            if i in used:
                continue
            try:
                new, label = NOISES[t](records[i], rng)
            except NotApplicable:
                continue
            used.add(i)
            if t in ADDS_RECORD:
                added.append(new)
            else:
                out[i] = new
            labels[new["id"]] = label
            done += 1
    rng.shuffle(added)
    return out + added, labels
