"""IFD and perplexity with a small causal LM (chat template applied; both losses stored).

``score_records(scorer, records)`` returns one ``ScoredResponse`` per record: the mean NLL of the
first assistant turn given the conversation before it (``loss_conditional``) and given an empty user
turn (``loss_unconditional``). IFD = conditional / unconditional; perplexity = exp(conditional).
Results are cached in SQLite by (scorer, prompt, response).
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Iterator, Sequence

import orjson

from ..core.record import Record
from ..core.stage import GlobalStage, Result, register_stage
from ..models.base import ScoredResponse


def split_prompt(record: Record) -> tuple[list[dict[str, str]], str]:
    msgs = record["messages"]
    for i, m in enumerate(msgs):
        if m["role"] == "assistant":
            return [{"role": x["role"], "content": x["content"]} for x in msgs[:i]], m["content"]
    return [{"role": x["role"], "content": x["content"]} for x in msgs], ""


DEFAULT_MAX_LENGTH = 1024  # HFCausalLM's default; scores at this length keep the key they always had


def score_key_params(scorer: Any) -> dict[str, Any]:
    """Everything besides the model and the text that changes a score: the tokens the scorer reads. A run at
    1,024 tokens must not reuse scores computed at 192."""
    params: dict[str, Any] = {"kind": "score", "v": 1}
    max_length = getattr(scorer, "max_length", DEFAULT_MAX_LENGTH)
    if max_length != DEFAULT_MAX_LENGTH:
        params["max_length"] = int(max_length)
    return params


def score_records(scorer: Any, records: Sequence[Record], store: Any = None,
                  counts: dict[str, int] | None = None) -> list[ScoredResponse]:
    """The scores of ``records`` (cached ones from ``store``); ``counts`` gets ``scored`` and ``cached`` added."""
    from ..models.cache import SQLiteStore, request_key

    store = store or SQLiteStore()
    pairs = [split_prompt(r) for r in records]
    keys = [request_key(scorer.name, score_key_params(scorer), p + [{"role": "assistant", "content": resp}])
            for p, resp in pairs]
    found = store.get_many("score", keys)
    out: list[ScoredResponse | None] = [None] * len(records)
    todo = []
    for i, k in enumerate(keys):
        if k in found:
            out[i] = ScoredResponse(**orjson.loads(found[k]))
        elif not pairs[i][1].strip():
            out[i] = ScoredResponse(error="no assistant turn")
        else:
            todo.append(i)
    if counts is not None:
        counts["scored"] = counts.get("scored", 0) + len(todo)
        counts["cached"] = counts.get("cached", 0) + len(found)
    from ..core.progress import progress_bar

    with progress_bar(f"{getattr(scorer, 'name', 'scorer')}: scoring", total=len(todo), unit="records") as bar:
        for s in range(0, len(todo), 16):
            chunk = todo[s:s + 16]
            res = scorer.score([pairs[i][0] for i in chunk], [pairs[i][1] for i in chunk])
            store.put_many("score", [(keys[i], orjson.dumps(r.__dict__)) for i, r in zip(chunk, res)
                                     if r.error is None])
            for i, r in zip(chunk, res):
                out[i] = r
            bar.advance(len(chunk))
    return out  # type: ignore[return-value]


def apply_scores(record: Record, r: ScoredResponse, prefix: str = "ifd") -> Record:
    scores = dict(record.get("scores") or {})
    if r.error is None and r.loss_conditional is not None:
        scores[f"{prefix}.loss_cond"] = round(r.loss_conditional, 6)
        scores[f"{prefix}.loss_uncond"] = round(r.loss_unconditional or 0.0, 6)
        if r.ifd is not None:
            scores[f"{prefix}.ifd"] = round(r.ifd, 6)
        scores[f"{prefix}.ppl"] = round(math.exp(min(r.loss_conditional, 50.0)), 4)
        scores[f"{prefix}.tokens"] = r.tokens
    return {**record, "scores": scores}


@register_stage
class IFDStage(GlobalStage):
    """``ifd.loss_cond``, ``ifd.loss_uncond``, ``ifd.ifd``, ``ifd.ppl``, ``ifd.tokens`` per record."""

    name = "ifd"
    section = "rating.ifd"
    version = "1"
    reads = ("messages",)
    writes = ("scores.ifd.*",)

    def __init__(self, model: str = "qwen2.5-0.5b", *, prefix: str = "ifd", batch_size: int = 64, scorer: Any = None):
        self.model = model
        self.prefix = prefix
        self.batch_size = batch_size
        self._scorer = scorer
        self._counts: dict[str, int] = {}

    def params(self) -> dict[str, Any]:
        return {"model": self.model, "prefix": self.prefix}

    @property
    def scorer(self):
        if self._scorer is None:
            from ..models import LazyScorer

            self._scorer = LazyScorer(self.model)  # loaded only if some record is not in the cache
        return self._scorer

    def report(self) -> dict[str, Any]:
        """Records scored by the model in this run and those found in the cache (what the scoring cost)."""
        return {"model": self.model, **self._counts}

    def run(self, batches: Iterable[list[Record]]) -> Iterator[Result]:
        self._counts: dict[str, int] = {"scored": 0, "cached": 0}
        for records in batches:
            for s in range(0, len(records), self.batch_size):
                chunk = records[s:s + self.batch_size]
                res = score_records(self.scorer, chunk, counts=self._counts)
                yield Result(records=[apply_scores(r, x, self.prefix) for r, x in zip(chunk, res)])
