"""purgemix purge IN... -o OUT [--rules FILE] [--dry-run]"""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    OutFormatOpt,
    ReadOptions,
    RunOptions,
    ToOpt,
    console,
    emit,
    fail,
    friendly_errors,
    report_summary,
    start_workers,
    with_options,
)


def register(app: typer.Typer) -> None:
    @app.command()
    @friendly_errors
    @with_options
    def purge(
        inputs: list[str] = typer.Argument(None, help="Input file(s); duplicates across files count.", metavar="IN..."),
        output: str = typer.Option(None, "--output", "-o", help="Kept records (reports are written next to it)."),
        rules: str = typer.Option(None, "--rules", help="Rule file (YAML; default: the shipped default rules)."),
        dry_run: bool = typer.Option(False, "--dry-run", help="Only score and report; write no data."),
        priors: str = typer.Option(None, "--priors", help="Priors from a reference dataset (a STEM.priors.json "
                                   "of an earlier purge) instead of fitting them on the input."),
        no_dedup: bool = typer.Option(False, "--no-dedup", help="Skip exact and near-duplicate removal."),
        no_near: bool = typer.Option(False, "--no-near", help="Exact duplicates only (no MinHash-LSH)."),
        threshold: float = typer.Option(None, "--near-threshold", min=0.05, max=1.0,
                                        help="Jaccard similarity (word 3-grams) from which records are "
                                        "near-duplicates. [default: 0.7]"),
        num_perm: int = typer.Option(None, "--num-perm", min=8, help="MinHash permutations. [default: 128]"),
        ngram: int = typer.Option(None, "--ngram", min=1, help="Word n-grams of the MinHash. [default: 3]"),
        keep_by: str = typer.Option(None, "--keep-by",
                                    help="Which member of a duplicate group to keep: FEATURE:max|min or 'first'. "
                                         "[default: response.words:max]"),
        tokenizer: str = typer.Option(None, "--tokenizer",
                                      help="Token counter: regex | hf:PATH/tokenizer.json. [default: regex]"),
        report_dir: Path = typer.Option(None, "--report-dir", help="Where reports go (default: next to OUT)."),
        list_features: bool = typer.Option(False, "--list-features", help="Print every feature and exit."),
        to: str = ToOpt,
        out_format: str = OutFormatOpt,
        read: ReadOptions = None,
        run: RunOptions = None,
    ) -> None:
        """Score every record with cheap features, drop duplicates and rule hits, and report why."""
        if not list_features and inputs and (output or dry_run):
            start_workers(run.executor, run.workers)  # a usage error below needs no workers
        from ..purge.rules import RuleError, load_rules

        if list_features:
            from ..purge.features.base import SCORERS

            for s in SCORERS.values():
                for role in s.roles:
                    for f, spec in s.features.items():
                        console.print(f"{role}.{f}  [{spec.direction}]  {spec.formula}  ({s.name} v{s.version})",
                                      highlight=False, soft_wrap=True)
            return
        if not inputs:
            fail("purge needs at least one input: purgemix purge IN -o OUT", 2)
        if not output and not dry_run:
            fail("purge needs -o OUT (or --dry-run to only score and report)", 2)
        if keep_by is not None and keep_by != "first":
            from ..purge.features.base import feature_catalog

            feat, _, mode = keep_by.partition(":")
            if mode not in ("", "max", "min") or feat not in feature_catalog():
                fail(f"--keep-by '{keep_by}': use FEATURE:max, FEATURE:min or first, with a feature from "
                     f"--list-features (e.g. response.words:max)", 2)
        if priors:
            import orjson

            try:
                ref = orjson.loads(Path(priors).read_bytes())
            except (OSError, orjson.JSONDecodeError) as e:
                fail(f"--priors {priors}: cannot read ({e})", 2)
            if not isinstance(ref, dict) or "features" not in ref:
                fail(f"--priors {priors}: not a purgemix priors file (write one with purgemix purge REF --dry-run)", 2)
        try:
            ruleset = load_rules(rules)
        except RuleError as e:
            fail(str(e), 2)
        from ..recipe.verbs import run_purge

        summary = run_purge(
            read.specs(inputs), output, rules=ruleset, to=to, out_format=out_format, dry_run=dry_run,
            report_dir=report_dir, run_dir=run.run_dir, force=run.force, priors=priors,
            dedup=False if no_dedup else None, near=False if no_near else None, threshold=threshold, num_perm=num_perm,
            ngram=ngram, keep_by=keep_by, tokenizer=tokenizer, workers=run.workers, executor=run.executor,
            shard_size=run.shard_size, strict=read.strict or None, max_record_bytes=read.max_record_bytes,
        )
        report_summary(summary)
        for w in summary.get("warnings") or []:
            console.print(f"[yellow]warning:[/] {w}", highlight=False)
        emit(summary, run.as_json)
