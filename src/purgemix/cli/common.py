"""What every command shares: --json summaries, clear one-line errors, run directories."""

from __future__ import annotations

import functools
import inspect
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar

import orjson
import typer

from ..core.ledger import LedgerError
from ..core.progress import console
from ..core.runlock import RunDirBusy
from ..core.shapes import OUTPUT_SHAPES, SHAPES, MappingError, parse_mapping
from ..io.builtin import BuiltinError
from ..io.readers import SourceError

EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_LEDGER = 4
EXIT_MODEL = 5  # the model failed most requests (wrong key, unreachable server)
EXIT_BUDGET = 6  # the run reached its token or cost cap (answers so far are cached)

JsonOpt = typer.Option(False, "--json", help="Print one machine-readable summary object on stdout.")
# Options that a recipe also sets default to None ("not set"): the verb then takes the value of
# ``recipe.load.DEFAULTS``, the one source of every default (see ``run_settings``).
WorkersOpt = typer.Option(None, "--workers", "-w", min=1, help="Worker processes (local) or CPUs (ray). [default: 1]")
ExecutorOpt = typer.Option(None, "--executor", help="Where stages run: local | ray. [default: local]")
RunDirOpt = typer.Option(None, "--run-dir", help="Run directory (default: purgemix-runs/<command>-<config hash>).")
ForceOpt = typer.Option(False, "--force", help="Recompute every stage instead of resuming.")
StrictOpt = typer.Option(False, "--strict", help="Stop at the first bad input row instead of quarantining it.")
MapOpt = typer.Option(None, "--map", help="Column mapping FIELD=COLUMN (repeatable), e.g. instruction=question.")
ShardOpt = typer.Option(None, "--shard-size", min=1,
                        help="Records per shard (unit of resume and parallelism). [default: 10000]")
MaxBytesOpt = typer.Option(None, "--max-record-bytes", min=1, help="Larger records are quarantined. [default: 1048576]")
FromOpt = typer.Option(None, "--from", help=f"Force the input shape: {', '.join(SHAPES)} (default: detect per record).")
ToOpt = typer.Option("messages", "--to", help=f"Output shape: {', '.join(OUTPUT_SHAPES)}.")
InFormatOpt = typer.Option(None, "--in-format", help="Force the input format: jsonl, json, parquet, csv, hf.")
OutFormatOpt = typer.Option(None, "--format", help="Force the output format (default: from the output's suffix).")



@dataclass
class ReadOptions:
    """How the inputs are read: shape, column mapping, file format, strictness, the record size limit."""

    shape: str | None = None
    mapping: list[str] | None = None
    in_format: str | None = None
    strict: bool = False
    max_record_bytes: int | None = None
    OPTIONS: ClassVar[dict[str, tuple[Any, Any]]] = {
        "shape": (str, FromOpt), "mapping": (list[str], MapOpt), "in_format": (str, InFormatOpt),
        "strict": (bool, StrictOpt), "max_record_bytes": (int, MaxBytesOpt),
    }

    def specs(self, paths: list[str]) -> list[Any]:
        """One ``InputSpec`` per path (``--map`` checked once, a bad mapping is one clear error)."""
        from ..core.pipeline import InputSpec

        maps = parse_mapping(self.mapping)
        return [InputSpec(p, self.in_format, maps, self.shape) for p in paths]


@dataclass
class RunOptions:
    """Where and how a run executes: workers, executor, run directory, resume or not, shard size, --json."""

    workers: int | None = None
    executor: str | None = None
    run_dir: Path | None = None
    force: bool = False
    shard_size: int | None = None
    as_json: bool = False
    OPTIONS: ClassVar[dict[str, tuple[Any, Any]]] = {
        "workers": (int, WorkersOpt), "executor": (str, ExecutorOpt), "run_dir": (Path, RunDirOpt),
        "force": (bool, ForceOpt), "shard_size": (int, ShardOpt), "as_json": (bool, JsonOpt),
    }

    def settings(self, read: ReadOptions | None = None) -> dict[str, Any]:
        """These options (and the reading ones that are run keys) as recipe keys (``run_settings``)."""
        read = read or ReadOptions()
        return run_settings(shard_size=self.shard_size, workers=self.workers, executor=self.executor,
                            strict=read.strict, max_record_bytes=read.max_record_bytes)


def with_options(fn: Callable) -> Callable:
    """Give a command the shared option groups it names by annotation (``read: ReadOptions``, ``run:
    RunOptions``): their options join the command's own on the command line, and the command gets each
    group as one object. Typer reads the signature set here."""
    hints = typing.get_type_hints(fn)
    sig = inspect.signature(fn)
    groups = {n: hints[n] for n in sig.parameters if getattr(hints.get(n), "OPTIONS", None)}
    params = [p for n, p in sig.parameters.items() if n not in groups]
    params += [inspect.Parameter(f, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=ann)
               for cls in groups.values() for f, (ann, opt) in cls.OPTIONS.items()]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for name, cls in groups.items():
            kwargs[name] = cls(**{f: kwargs.pop(f) for f in cls.OPTIONS})
        return fn(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)
    return wrapper


def run_settings(*, shard_size: int | None = None, workers: int | None = None, executor: str | None = None,
                 strict: bool = False, max_record_bytes: int | None = None, seed: int | None = None,
                 limit: int | None = None) -> dict[str, Any]:
    """The shared run options as recipe keys (None and False: not set, the recipe's default stands)."""
    return {"run.shard_size": shard_size, "run.workers": workers, "run.executor": executor,
            "run.strict": strict or None, "run.max_record_bytes": max_record_bytes, "run.seed": seed,
            "limit": limit or None}


def start_workers(executor: str | None, workers: int | None) -> None:
    """Start the local worker pool before the command imports its stages (see ``executors.local.warm_up``)."""
    if (executor or "local") == "local" and (workers or 1) > 1:
        from ..executors.local import warm_up

        warm_up(workers)


def emit(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(orjson.dumps(summary, default=str).decode() + "\n")
        sys.stdout.flush()


def fail(message: str, code: int = EXIT_INPUT) -> None:
    from ..core.secrets import redact

    console.print(f"[bold red]error:[/] {redact(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def friendly_errors(fn: Callable) -> Callable:
    """Known failures become one clear line on stderr and a non-zero exit, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from ..core.pipeline import StrictError
        from ..models.budget import BudgetExceeded
        from ..models.registry import ModelNotAvailable
        from ..recipe.build import RunConfigError
        from ..recipe.load import RecipeError

        try:
            return fn(*args, **kwargs)
        except (SourceError, BuiltinError, MappingError) as e:
            fail(str(e), EXIT_INPUT)
        except StrictError as e:
            fail(str(e), EXIT_INPUT)
        except (RecipeError, RunConfigError, ModelNotAvailable) as e:
            fail(str(e), EXIT_USAGE)
        except LedgerError as e:
            fail(str(e), EXIT_LEDGER)
        except BudgetExceeded as e:
            fail(f"stopped: {e}", EXIT_BUDGET)
        except RunDirBusy as e:
            fail(str(e), EXIT_USAGE)
        except FileNotFoundError as e:
            fail(f"{e.filename}: no such file or directory", EXIT_INPUT)
        except IsADirectoryError as e:
            fail(f"{e.filename}: is a directory", EXIT_INPUT)
        except PermissionError as e:
            fail(f"{e.filename or 'a file'}: permission denied ({e.strerror or 'not writable'}); "
                 f"choose a folder you can write to (-o, --run-dir)", EXIT_INPUT)
        except OSError as e:
            import errno

            if e.errno != errno.ENOSPC:
                raise
            fail(f"no space left on the device{' writing ' + str(e.filename) if e.filename else ''}; free some "
                 f"space and run the same command again: the finished shards are kept", EXIT_INPUT)
        except KeyboardInterrupt:
            fail("interrupted; re-run the same command to resume", 130)

    return wrapper


def report_summary(summary: dict[str, Any]) -> None:
    """Human summary on stderr."""
    parts = [f"read {summary.get('read', 0):,}", f"written {summary.get('written', 0):,}"]
    if summary.get("quarantined"):
        parts.append(f"quarantined {summary['quarantined']:,}")
    dropped = summary.get("dropped") or {}
    if dropped:
        parts.append(f"dropped {sum(dropped.values()):,}")
    console.print(f"[green]done[/] in {summary.get('elapsed_seconds', 0):.1f}s: " + ", ".join(parts))
    for reason, n in sorted(dropped.items(), key=lambda kv: -kv[1])[:10]:
        console.print(f"  dropped {n:,}: {reason}")
    outs = summary.get("outputs") or {}
    for k, v in outs.items():
        if v:
            console.print(f"  {k}: {v}")
