"""purgemix rate IN -o OUT: DS2-style LLM rating of every record (cached, resumable)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    EXIT_MODEL,
    ForceOpt,
    JsonOpt,
    MapOpt,
    RunDirOpt,
    ShardOpt,
    emit,
    fail,
    friendly_errors,
    report_summary,
    run_settings,
)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def rate(
        inputs: list[str] = typer.Argument(..., help="Input file(s).", metavar="IN..."),
        output: str = typer.Option(..., "--output", "-o", help="Output file (canonical messages JSONL keeps the scores)."),
        model: str = typer.Option(None, "--model", "-m",
                                  help="Rater: smollm2-135m | qwen2.5-0.5b | qwen2.5-1.5b | gguf:PATH | hf:PATH | "
                                       "openai:URL#MODEL (a strong server model is the better rater). "
                                       "[default: the recipe default generator, qwen2.5-0.5b]"),
        template: str = typer.Option(None, "--template",
                                     help="Rubric template: packaged name or a .txt path. [default: ds2_rating]"),
        attempts: int = typer.Option(None, "--attempts", min=1,
                                     help="Tries per record when the answer does not parse. [default: 3]"),
        batch_size: int = typer.Option(None, "--batch-size", min=1, help="Records per model call. [default: 64]"),
        concurrency: int = typer.Option(None, "--concurrency", min=1, help="Parallel requests (HTTP backends). [default: 16]"),
        timeout: float = typer.Option(None, "--timeout", min=0.1, help="Seconds per HTTP request. [default: 120]"),
        max_failure_share: float = typer.Option(None, "--max-failure-share", min=0.0, max=1.0,
                                                help="Exit non-zero when more of the records than this share got "
                                                     "no answer from the model. [default: 0.5]"),
        limit: int = typer.Option(0, "--limit", min=0, help="Rate only the first N records (0 = all)."),
        to: str = typer.Option("messages", "--to", help="Output shape."),
        shape: str = typer.Option(None, "--from", help="Force the input shape."),
        mapping: list[str] = MapOpt,
        run_dir: Path = RunDirOpt,
        force: bool = ForceOpt,
        shard_size: int = ShardOpt,
        as_json: bool = JsonOpt,
    ) -> None:
        """Rate every record with an LLM (rarity, complexity, informativeness, overall 1-10 -> score 0-5).

        Answers are cached in SQLite ($PURGEMIX_CACHE): an interrupted or repeated run re-sends only
        what had no answer. Parse failures are recorded in meta._rating, never given a score."""
        from ..core.pipeline import InputSpec, OutputSpec
        from ..core.shapes import parse_mapping
        from ..models import load_llm
        from ..recipe.load import settings_recipe
        from ..recipe.verbs import rate_pipeline

        recipe = settings_recipe({"models.rater": model, "rate.template": template, "rate.attempts": attempts,
                                  "rate.batch_size": batch_size, "rate.concurrency": concurrency,
                                  "rate.timeout": timeout, "rate.max_failure_share": max_failure_share,
                                  **run_settings(shard_size=shard_size, limit=limit)}, name="rate")
        spec = recipe["models"]["rater"] or recipe["models"]["generator"]
        options = ({"concurrency": int(recipe["rate"]["concurrency"]), "timeout": float(recipe["rate"]["timeout"])}
                   if spec.startswith(("openai:", "http")) else {})
        llm = load_llm(spec, **options)  # a missing model is a clear error before any data is read
        maps = parse_mapping(mapping)
        pipe = rate_pipeline(recipe, [InputSpec(p, None, maps, shape) for p in inputs], OutputSpec(output, to, None),
                             llm=llm, run_dir=run_dir, force=force)
        summary = pipe.execute()
        rep = summary.get("reports", {}).get("rate", {})
        c = summary["ratings"] = {k: rep.get(k, 0) for k in ("rated", "parsed", "failed", "attempts")}
        usage = summary["model_usage"] = rep.get("usage", {})
        report_summary(summary)
        from ..core.progress import console

        if c["rated"]:
            console.print(f"  rated {c['rated']:,}: parsed {c['parsed']:,} ({c['parsed'] / c['rated']:.0%}), "
                          f"failed {c['failed']:,}; cache hits {usage.get('cache_hits', 0):,}, "
                          f"misses {usage.get('cache_misses', 0):,}")
        emit(summary, as_json)
        unanswered = int(rep.get("unanswered", 0))
        share = float(recipe["rate"]["max_failure_share"])
        if c["rated"] and unanswered / c["rated"] > share:
            fail(f"{unanswered:,} of {c['rated']:,} records got no answer from {llm.name} (more than "
                 f"{share:.0%}; first error: {rep.get('first_error') or 'see the run events'}); a wrong key or "
                 f"an unreachable server? The answers that came are cached: a re-run asks only for the others",
                 EXIT_MODEL)

