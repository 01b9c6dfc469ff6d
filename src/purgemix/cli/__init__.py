"""The ``purgemix`` command. Each verb lives in its own module with a ``register(app)``."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="purgemix",
    help="Purge noisy SFT data with statistics and rules, then mix what is left into better pairs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# verb modules, in the order --help lists them
VERBS = ["demo", "run", "convert", "profile", "purge", "ledger", "rate", "curate", "split", "mix", "report", "evaluate", "select", "models"]

for _verb in VERBS:
    importlib.import_module(f"{__name__}.{_verb}").register(app)


def main() -> None:
    import os

    # Models come from installed packages, never from a hub; their libraries' own progress bars and
    # load reports would interleave with ours on stderr.
    for key, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_VERBOSITY", "error"),
                       ("HF_HUB_DISABLE_PROGRESS_BARS", "1"), ("TQDM_DISABLE", "1"),
                       ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(key, value)
    app()
