"""purgemix curate IN -o OUT: correct rated scores with the statistical prior, add long-tail scores."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import ForceOpt, JsonOpt, RunDirOpt, emit, fail, friendly_errors, report_summary


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def curate(
        inputs: list[str] = typer.Argument(..., help="Rated file(s) (output of purgemix rate).", metavar="IN..."),
        output: str = typer.Option(..., "--output", "-o", help="Output file (messages JSONL keeps the scores)."),
        embedder: str = typer.Option(None, "--embedder", "-e",
                                     help="minilm | static | st:PATH | openai:URL#MODEL. [default: minilm]"),
        score_key: str = typer.Option("ds2.score", "--score", help="The raw 0-5 score to correct."),
        k: int = typer.Option(None, "--k", min=2, help="Neighbours voting in the correction. [default: 10]"),
        threshold: float = typer.Option(None, "--threshold", min=0.0, max=1.0,
                                        help="Accept a corrected score when its posterior is at least this. "
                                             "[default: 0.5]"),
        longtail_k: int = typer.Option(10, "--longtail-k", min=1, help="Neighbours of the long-tail score."),
        run_dir: Path = RunDirOpt,
        force: bool = ForceOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Estimate the score-transition matrix from nearest-neighbour agreement and correct every score
        (raw kept as ds2.score, corrected as ds2.curated, plus ds2.confidence and ds2.longtail)."""
        from ..core.pipeline import InputSpec, OutputSpec
        from ..core.progress import console
        from ..models.registry import ModelNotAvailable
        from ..recipe.load import settings_recipe
        from ..recipe.verbs import curate_pipeline

        recipe = settings_recipe({"models.embedder": embedder, "quality.curate.k": k,
                                  "quality.curate.threshold": threshold}, name="curate")
        pipe = curate_pipeline(recipe, [InputSpec(p) for p in inputs], OutputSpec(output, "messages", None),
                               score_key=score_key, longtail_k=longtail_k, run_dir=run_dir, force=force)
        try:
            pipe.stages[0].emb  # load now: a missing model is a clear error, not a traceback mid-run
        except ModelNotAvailable as e:
            fail(str(e), 2)
        summary = pipe.execute()
        rep = summary.get("reports", {}).get("curate")
        if rep:
            summary["curation"] = rep
            if "changed" in rep:
                console.print(f"  curated {rep['rated']:,} rated records: {rep['changed']:,} scores corrected; "
                              f"raw {rep['raw_histogram']} -> curated {rep['curated_histogram']}")
        report_summary(summary)
        emit(summary, as_json)
