"""purgemix rate IN -o OUT: DS2-style LLM rating of every record (cached, resumable)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    ForceOpt,
    JsonOpt,
    MapOpt,
    RunDirOpt,
    ShardOpt,
    default_run_dir,
    emit,
    fail,
    friendly_errors,
    report_summary,
)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    def rate(
        inputs: list[str] = typer.Argument(..., help="Input file(s).", metavar="IN..."),
        output: str = typer.Option(..., "--output", "-o", help="Output file (canonical messages JSONL keeps the scores)."),
        model: str = typer.Option("qwen2.5-0.5b", "--model", "-m",
                                  help="Rater: smollm2-135m | qwen2.5-0.5b | qwen2.5-1.5b | gguf:PATH | hf:PATH | "
                                       "openai:URL#MODEL (a strong server model is the better rater)."),
        template: str = typer.Option("ds2_rating", "--template", help="Rubric template: packaged name or a .txt path."),
        attempts: int = typer.Option(3, "--attempts", min=1, help="Tries per record when the answer does not parse."),
        batch_size: int = typer.Option(64, "--batch-size", min=1, help="Records per model call."),
        concurrency: int = typer.Option(16, "--concurrency", min=1, help="Parallel requests (HTTP backends)."),
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
        from ..core.pipeline import InputSpec, OutputSpec, Pipeline, config_hash
        from ..core.shapes import parse_mapping
        from ..models import load_llm
        from ..models.registry import ModelNotAvailable
        from ..rating.stages import RateStage
        options = {"concurrency": concurrency} if model.startswith(("openai:", "http")) else {}
        try:
            llm = load_llm(model, **options)
        except ModelNotAvailable as e:
            fail(str(e), 2)
        stage = RateStage(model, template=template, attempts=attempts, batch_size=batch_size, llm=llm)
        maps = parse_mapping(mapping)
        pipe = Pipeline([InputSpec(p, None, maps, shape) for p in inputs], [stage], OutputSpec(output, to, None),
                        run_dir or ".", force=force, shard_size=shard_size, limit=limit or None, command="rate")
        if run_dir is None:
            pipe.run.path = default_run_dir("rate", config_hash(pipe.config()))
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

