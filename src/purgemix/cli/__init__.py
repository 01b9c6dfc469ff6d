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
VERBS = ["demo", "run", "convert", "profile", "purge", "ledger", "rate", "curate", "split", "mix", "report"]

for _verb in VERBS:
    importlib.import_module(f"{__name__}.{_verb}").register(app)


def main() -> None:
    app()
