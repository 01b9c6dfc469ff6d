"""purgemix select DATA... --strategy NAME -n N -o OUT"""

from __future__ import annotations

import typer

from .common import ReadOptions, RunOptions, emit, fail, friendly_errors, report_summary, with_options


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    @with_options
    def select(
        inputs: list[str] = typer.Argument(None, help="Input file(s): the pool to select from.", metavar="DATA..."),
        strategy: str = typer.Option(None, "--strategy", "-s", help="A registered selector (--list shows them). "
                                     "[default: random]"),
        n: int = typer.Option(None, "-n", "--n", min=1, help="Records to keep. [default: 1000]"),
        output: str = typer.Option(None, "--output", "-o", help="The kept records."),
        scorer: str = typer.Option(None, "--scorer", help="Causal LM for IFD, perplexity and LESS gradients. [default: smollm2-135m, the protocol's base model]"),
        embedder: str = typer.Option(None, "--embedder", help="Embedder for knn, kcenter, deita. [default: minilm]"),
        rater: str = typer.Option(None, "--rater", help="LLM of the rated selectors (alpagasus, deita, instag, ds2, "
                                  "ds2-raw), e.g. hf:qwen2.5-0.5b or openai:URL#MODEL. [default: the generator, "
                                  "qwen2.5-0.5b]"),
        limit: int = typer.Option(None, "--limit", min=1, help="Use only the first N input records."),
        seed: int = typer.Option(None, "--seed", help="Seed of random choices. [default: 0]"),
        list_selectors: bool = typer.Option(False, "--list", help="Print every selector with its rule and exit."),
        to: str = typer.Option("messages", "--to", help="Output shape."),
        read: ReadOptions = None,
        run: RunOptions = None,
    ) -> None:
        """Keep N records of a pool by one of the data-selection baselines (random, length, knn, kcenter, ifd,
        superfilter, perplexity, ...); the rest are dropped with 'not selected by NAME' in the ledger."""
        from ..core.pipeline import OutputSpec
        from ..core.progress import console
        from ..select.base import SELECTORS
        from ..select.stage import make_selector

        if list_selectors:
            make_selector("random")  # registers them all
            for name, cls in sorted(SELECTORS.items()):
                doc = " ".join((cls.__doc__ or "").split())
                console.print(f"[bold]{name}[/]  {doc}", highlight=False, soft_wrap=True)
            return
        if not inputs or not output:
            fail("select needs DATA and -o OUT: purgemix select pool.jsonl --strategy length -n 500 -o out.jsonl", 2)
        from ..recipe.load import settings_recipe
        from ..recipe.verbs import select_pipeline

        try:
            make_selector(strategy or "random")
        except KeyError as e:
            fail(str(e.args[0]), 2)
        recipe = settings_recipe({**run.settings(read), "select.strategy": strategy, "select.n": n,
                                  "models.scorer": scorer, "models.embedder": embedder, "models.rater": rater,
                                  "run.seed": seed, "limit": limit},
                                 name="select")
        pipe = select_pipeline(recipe, read.specs(inputs), OutputSpec(output, to), run_dir=run.run_dir,
                               force=run.force)
        summary = pipe.execute()
        report_summary(summary)
        emit(summary, run.as_json)
