"""The driver: ingest -> stages -> export, resumable, on any executor, with a balanced ledger.

Re-running the same pipeline over the same run directory skips every complete shard and stage
and redoes only what is missing; ``force=True`` recomputes everything.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from .. import __version__
from ..executors import make_executor
from ..io.readers import Source, fingerprint, source_labels
from ..io.writers import Writer, check_writable
from . import shard_tasks
from .ingest import STAGE as INGEST, IdRegistry
from .ledger import LedgerError, check_ledger
from .progress import progress_bar
from .rundir import RunDir, StageDir, atomic_write_json, package_versions, read_json
from .stage import FitMapStage, GlobalStage, MapStage, Stage


class StrictError(Exception):
    """--strict: the first bad input row stops the run."""


@dataclass
class InputSpec:
    path: str
    format: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    shape: str | None = None


@dataclass
class OutputSpec:
    path: str
    shape: str = "messages"
    format: str | None = None


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.blake2b(orjson.dumps(config, option=orjson.OPT_SORT_KEYS, default=str), digest_size=8).hexdigest()


class Pipeline:
    def __init__(
        self,
        inputs: list[InputSpec],
        stages: list[Stage],
        output: OutputSpec | None,
        run_dir: str | os.PathLike | None = None,
        *,
        executor: str = "local",
        workers: int = 1,
        shard_size: int = 10_000,
        strict: bool = False,
        force: bool = False,
        max_record_bytes: int = 1 << 20,
        limit: int | None = None,
        command: str = "run",
        extra_config: dict[str, Any] | None = None,
        on_stage: Callable[[str], None] | None = None,
        label: str | None = None,
    ):
        self.inputs = inputs
        self.stages = stages
        self.output = output
        self.label = label
        self.executor_name = executor
        self.workers = workers
        self.shard_size = shard_size
        self.strict = strict
        self.force = force
        self.max_record_bytes = max_record_bytes
        self.limit = limit
        self.command = command
        self.extra_config = extra_config or {}
        self.on_stage = on_stage
        self.sources = [Source.open(i.path, i.format, max_record_bytes) for i in inputs]
        self.run = RunDir(run_dir if run_dir is not None else self.default_run_dir())

    # -- configuration and manifest ----------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "inputs": [
                {"path": str(s.path.resolve()), "format": s.format, "mapping": i.mapping, "shape": i.shape}
                for i, s in zip(self.inputs, self.sources)
            ],
            "stages": [{"name": s.name, "version": s.version, "params": s.params()} for s in self.stages],
            "output": None if self.output is None else vars(self.output) | {"path": str(Path(self.output.path).resolve())},
            "shard_size": self.shard_size,
            "max_record_bytes": self.max_record_bytes,
            "limit": self.limit,
            **self.extra_config,
        }

    def default_run_dir(self) -> Path:
        """``purgemix-runs/COMMAND[-LABEL]-HASH``: the same job gets the same folder, so running it again
        resumes it. The hash covers the configuration except the stages that declare ``names_run_dir =
        False`` (the purge's rules: a run with other rules reuses the stored scores and duplicate decisions and
        only applies the rules again, in the same folder)."""
        key = self.config()
        key["stages"] = [c for c, s in zip(key["stages"], self.stages) if s.names_run_dir]
        return Path("purgemix-runs") / "-".join(x for x in (self.command, self.label, config_hash(key)) if x)

    # -- running -----------------------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        t_start = time.perf_counter()
        with self.run.locked():  # before anything is read or cleared: a second run on this folder fails here
            executor = make_executor(self.executor_name, self.workers)
            try:
                return self._execute(executor, t_start)
            finally:
                executor.close()

    def _execute(self, executor, t_start: float) -> dict[str, Any]:
        # the workers start up (a fresh interpreter each, importing numpy and the stages) while the driver
        # fingerprints the inputs and writes the manifest
        executor.start()
        self.run.path.mkdir(parents=True, exist_ok=True)
        if self.output is not None:  # a read-only output folder is an error now, not after the whole run
            check_writable(self.output.path)
        config = self.config()
        fingerprints = [fingerprint(s.path) for s in self.sources]
        ingest_fp = config_hash({"inputs": config["inputs"], "fingerprints": [f["blake2b"] for f in fingerprints],
                                 "shard_size": self.shard_size, "max_record_bytes": self.max_record_bytes,
                                 "limit": self.limit})
        manifest = self.run.manifest()
        manifest.update(
            {
                "purgemix": __version__,
                "config": config,
                "config_hash": config_hash(config),
                "inputs": fingerprints,
                "versions": package_versions(),
                "executor": {"name": self.executor_name, "workers": self.workers},
                "argv": sys.argv,
            }
        )
        manifest.setdefault("stages", {})
        self.run.write_manifest(manifest)
        # stage folders of another configuration (a killed run with other stages) are not this run's
        self.run.keep_stages({f"00-{INGEST}", f"{len(self.stages) + 1:02d}-export",
                              *(f"{k:02d}-{st.name}" for k, st in enumerate(self.stages, 1))})
        prev = self._ingest(executor, ingest_fp, manifest, self._early_prepare(ingest_fp))
        upstream = ingest_fp
        k = 0
        while k < len(self.stages):
            stage = self.stages[k]
            upstream = stage.fingerprint(upstream)
            nxt = self.stages[k + 1] if k + 1 < len(self.stages) else None
            if isinstance(nxt, MapStage) and not isinstance(stage, GlobalStage):
                # a plain map after a (fit-)map stage: both in one pass per shard
                fp2 = nxt.fingerprint(upstream)
                prev = self._run_pair(executor, k + 1, stage, nxt, prev, upstream, fp2, manifest)
                upstream = fp2
                k += 2
            else:
                prev = self._run_stage(executor, k + 1, stage, prev, upstream, manifest)
                k += 1
        written = self._export(executor, prev, upstream, manifest) if self.output else None
        ledger = check_ledger(self.run, executor)
        atomic_write_json(self.run.path / "ledger.json", ledger)
        manifest["ledger"] = {k: ledger[k] for k in ("balanced", "inputs", "outputs")}
        manifest["elapsed_seconds"] = round(time.perf_counter() - t_start, 3)
        self.run.write_manifest(manifest)
        if not ledger["balanced"]:
            raise LedgerError(f"ledger of {self.run.path} does not balance: {'; '.join(ledger['problems'][:5])}")
        return self.summary(manifest, ledger, written)

    def _announce(self, name: str) -> None:
        if self.on_stage:
            self.on_stage(name)

    def _early_prepare(self, ingest_fp: str) -> tuple[FitMapStage, str] | None:
        """The first stage and its folder when its prepare pass can run inside the ingest tasks: a fit stage
        with a prepare pass right after ingest, not yet fitted (with ``force`` the folder is cleared later)."""
        first = self.stages[0] if self.stages else None
        if self.force or not isinstance(first, FitMapStage) or first.prepare is None:
            return None
        d = self.run.stage(1, first.name)
        d.prepare(first.fingerprint(ingest_fp))
        if d.complete or (d.path / "state.json").exists():
            return None
        return first, str(d.path)

    def _ingest(self, executor, fp: str, manifest: dict[str, Any], prepare=None) -> StageDir:
        out = self.run.stage(0, INGEST)
        out.prepare(fp, self.force)
        if out.complete:
            return out
        self._announce(INGEST)
        t0 = time.perf_counter()
        registry = IdRegistry()
        index = 0

        labels = source_labels([s.path for s in self.sources])

        def tasks():
            nonlocal index
            remaining = self.limit
            for src, spec, label in zip(self.sources, self.inputs, labels):
                for rows in src.batches(self.shard_size):
                    if remaining is not None:  # --limit: rows past it are not read at all
                        if remaining <= 0:
                            return
                        rows = rows[:remaining]
                        remaining -= len(rows)
                    i = index
                    index += 1
                    if out.is_done(i):
                        yield (shard_tasks.done_counters, (str(out.path), i), {})
                    else:
                        yield (shard_tasks.ingest_and_write,
                               (rows, str(out.path), i, prepare),
                               {"source_name": label, "unit": src.unit, "mapping": spec.mapping,
                                "shape": spec.shape})

        counters = []
        with progress_bar("ingest", total=None, unit="records") as bar:
            results = executor.imap(shard_tasks.dispatch, ((t, {}) for t in tasks()))
            for i, c in enumerate(results):
                counters.append(c)
                if self.strict and c.get("quarantined"):
                    first = next(e for e in out.read_events(i) if e["outcome"] == "quarantined")
                    unit = "line" if "line" in first else ("item" if "item" in first else "row")
                    raise StrictError(f"{first['source']}:{first[unit]}: {first['reason']} (--strict stops at the first bad {unit})")
                self._assign_ids(out, i, registry)
                bar.advance(c["in"])
        total = shard_tasks.sum_counters(counters)
        total["shards"] = len(counters)
        total["seconds"] = round(time.perf_counter() - t0, 3)
        self._write_quarantine(out, len(counters))
        out.mark_complete(total)
        manifest["stages"][INGEST] = total
        self.run.write_manifest(manifest)
        return out

    def _assign_ids(self, out: StageDir, index: int, registry: IdRegistry) -> None:
        import numpy as np

        hashes = np.load(out.path / f"{out.shard_name(index)}.ids.npy")
        # Renames depend only on the order of ids, so recomputing them on resume gives the same.
        renames = registry.assign(_LazyIds(out, index), hashes)
        atomic_write_json(out.path / f"{out.shard_name(index)}.renames.json", renames)

    def _write_quarantine(self, out: StageDir, n: int) -> None:
        path = self.run.path / "quarantine.jsonl"
        rows = (e for i in range(n) for e in out.read_events(i) if e["outcome"] == "quarantined")
        with Writer(path, "jsonl") as w:
            w.write(rows)

    def _run_pair(self, executor, pos: int, stage: Stage, then: MapStage, prev: StageDir, fp: str, fp2: str,
                  manifest) -> StageDir:
        """``stage`` at ``pos`` and the map stage ``then`` after it, fused per shard (``shard_tasks.process_pair``)."""
        mid, out = self.run.stage(pos, stage.name), self.run.stage(pos + 1, then.name)
        mid.prepare(fp, self.force)
        out.prepare(fp2, self.force)
        if mid.complete:
            return self._run_stage(executor, pos + 1, then, mid, fp2, manifest)
        self._announce(stage.name)
        t0 = time.perf_counter()
        n_in = prev.info()["shards"]
        state = self._fit_state(executor, stage, prev, mid, n_in)
        fitted = time.perf_counter() - t0
        self._announce(then.name)
        pending = [i for i in range(n_in) if not (mid.is_done(i) and out.is_done(i))]
        _map_pending(executor, f"{stage.name} + {then.name}", n_in, shard_tasks.process_pair,
                     [((stage, then, str(prev.path), str(mid.path), str(out.path), i, state), {}) for i in pending])
        # each stage's share of the fused pass's wall time, in proportion to its workers' time per shard
        passed = time.perf_counter() - t0 - fitted
        own = [sum(d.done_info(i).get("seconds", 0) for i in range(n_in)) for d in (mid, out)]
        share = [x / sum(own) if sum(own) else 0.5 for x in own]
        for d, st, sec in ((mid, stage, fitted + passed * share[0]), (out, then, passed * share[1])):
            total = shard_tasks.sum_counters([d.done_info(i) for i in range(n_in)])
            total["shards"] = n_in
            total["seconds"] = round(sec, 3)
            total["fused"] = [stage.name, then.name]
            _declare(st, total)
            d.mark_complete(total)
            manifest["stages"][st.name] = total
        self.run.write_manifest(manifest)
        return out

    def _fit_state(self, executor, stage: Stage, prev: StageDir, out: StageDir, n_in: int) -> Any:
        """A fit-map stage's state: the stored one on resume, else prepare (if any) and fit. None for a map."""
        if not isinstance(stage, FitMapStage):
            return None
        state_path = out.path / "state.json"
        if state_path.exists():
            return read_json(state_path)
        if stage.prepare is not None:
            self._prepare(executor, stage, prev, out, n_in)
        with progress_bar(f"{stage.name}: fit", total=None, unit="records") as bar:
            state = stage.fit_dir(prev, out) if stage.fit_dir is not None else \
                stage.fit(_counting(prev.iter_records(), bar))
        atomic_write_json(state_path, state)
        return state

    def _run_stage(self, executor, pos: int, stage: Stage, prev: StageDir, fp: str, manifest) -> StageDir:
        out = self.run.stage(pos, stage.name)
        out.prepare(fp, self.force)
        if out.complete:
            return out
        self._announce(stage.name)
        t0 = time.perf_counter()
        n_in = prev.info()["shards"]
        if isinstance(stage, GlobalStage):
            counters = self._run_global(stage, prev, out)
        else:
            state = self._fit_state(executor, stage, prev, out, n_in)
            pending = [i for i in range(n_in) if not out.is_done(i)]
            _map_pending(executor, stage.name, n_in, shard_tasks.process_shard,
                         [((stage, str(prev.path), str(out.path), i, state), {}) for i in pending])
            counters = [out.done_info(i) for i in range(n_in)]
        total = shard_tasks.sum_counters(counters)
        total["shards"] = len(counters)
        total["seconds"] = round(time.perf_counter() - t0, 3)
        _declare(stage, total)
        out.mark_complete(total)
        manifest["stages"][stage.name] = total
        self.run.write_manifest(manifest)
        return out

    def _prepare(self, executor, stage: FitMapStage, prev: StageDir, out: StageDir, n_in: int) -> None:
        """A fit stage's shard-parallel prepare pass (``FitMapStage.prepare``), resumable per shard."""
        pending = [i for i in range(n_in) if not (out.path / f"{out.shard_name(i)}.prep.json").exists()]
        _map_pending(executor, f"{stage.name}: prepare", n_in, shard_tasks.prepare_shard,
                     [((stage, str(prev.path), str(out.path), i), {}) for i in pending])

    def _run_global(self, stage: GlobalStage, prev: StageDir, out: StageDir) -> list[dict]:
        # Global stages restart from their first shard; their expensive calls are cached.
        for p in out.path.glob("*.done.json"):
            p.unlink()
        counters = []
        with progress_bar(stage.name, total=None, unit="records") as bar:
            for i, result in enumerate(stage.run(_counting(prev.iter_records(), bar))):
                c = shard_tasks.count_result(0, result)
                out.write_shard(i, result.records, result.events, c)
                counters.append(c)
        # Arrays a stage wants kept for reports (e.g. cluster assignments), written atomically.
        import numpy as np

        for name, arrays in stage.artifacts().items():
            tmp = out.path / f".{name}.tmp.npz"
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, out.path / name)
        n_in = sum(prev.done_info(i)["out"] for i in range(prev.info()["shards"]))
        if counters:
            counters[0]["in"] = n_in
        else:
            out.write_shard(0, [], [], {"in": n_in, "out": 0})
            counters = [{"in": n_in, "out": 0}]
        return counters

    def _export(self, executor, prev: StageDir, upstream: str, manifest: dict[str, Any]) -> dict[str, Any]:
        assert self.output is not None
        out = self.run.stage(len(self.stages) + 1, "export")
        fp = config_hash({"upstream": upstream, "output": vars(self.output)})
        out.prepare(fp, self.force)
        target = Path(self.output.path)
        if out.complete and target.exists() and out.info().get("output_bytes") == _size(target):
            return out.info()
        self._announce("export")
        t0 = time.perf_counter()
        events: list[dict] = []
        kept_ids = []  # 64-bit id hashes, 8 bytes a record
        n_in = 0
        n_shards = prev.info()["shards"]
        # Workers turn shards into serialised rows, in part files; the driver only appends them in order. A
        # shard with many records (the first shards of a pool hold most of the survivors of the dedup) is
        # split into parts, so one worker does not export it alone while the other waits.
        for stale in out.path.glob("*.part.jsonl"):  # left by an interrupted export
            stale.unlink()
        args = []
        for i in range(n_shards):
            cuts = list(range(0, prev.done_info(i).get("out", 0), shard_tasks.EXPORT_PART)) or [0]
            for k, lo in enumerate(cuts):
                part = str(out.path / f"{out.shard_name(i)}.{k}.part.jsonl")
                rows = (lo, lo + shard_tasks.EXPORT_PART) if len(cuts) > 1 else None
                args.append(((str(prev.path), i, self.output.shape, part, rows), {}))
        with Writer(target, self.output.format) as w, progress_bar("export", total=len(args), unit="parts") as bar:
            for part, shard_events, ids, n in executor.map_shards(shard_tasks.export_shard, args):
                n_in += n
                w.append_jsonl_file(part, len(ids))
                os.unlink(part)
                kept_ids.append(ids)
                events.extend(shard_events)
                bar.advance(1)
        import numpy as np

        kept = np.concatenate(kept_ids) if kept_ids else np.empty(0, np.int64)
        info = {
            "in": n_in,
            "out": len(kept),
            "dropped": dict(Counter(e["reason"] for e in events)),
            "shards": 1,
            "output": str(target),
            "output_bytes": _size(target),
            "seconds": round(time.perf_counter() - t0, 3),
        }
        out.write_shard(0, [], events, info)
        # The ledger's view of what was written: ids only (the file itself is the records).
        np.save(out.path / "output_ids.npy", kept)
        out.mark_complete(info)
        manifest["stages"]["export"] = info
        self.run.write_manifest(manifest)
        return info

    def summary(self, manifest: dict[str, Any], ledger: dict[str, Any], written: dict[str, Any] | None) -> dict:
        dropped: Counter = Counter()
        for name, c in manifest["stages"].items():
            for reason, n in (c.get("dropped") or {}).items():
                dropped[f"{name}:{reason}"] += n
        ingest = manifest["stages"].get(INGEST, {})
        out = {
            "command": self.command,
            "read": ingest.get("in", 0),
            "written": (written or {}).get("out", ledger["outputs"]),
            "dropped": dict(dropped),
            "merged": ledger["merged"],
            "rewritten": ledger["rewritten"],
            "quarantined": ingest.get("quarantined", 0),
            "outputs": {
                "data": (written or {}).get("output"),
                "run_dir": str(self.run.path),
                "manifest": str(self.run.manifest_path),
                "quarantine": str(self.run.path / "quarantine.jsonl"),
                "ledger": str(self.run.path / "ledger.json"),
            },
            "ledger_balanced": ledger["balanced"],
            "elapsed_seconds": manifest["elapsed_seconds"],
        }
        reports = self.reports(manifest)
        if reports:
            out["reports"] = reports
        return out

    def reports(self, manifest: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """What each of this pipeline's stages learnt (``Stage.report()``), by stage name, as stored when the
        stage completed: also for a stage that completed in an earlier process."""
        stored = (manifest or self.run.manifest()).get("stages") or {}
        return {s.name: stored[s.name]["report"] for s in self.stages if (stored.get(s.name) or {}).get("report")}


class _LazyIds:
    """Ids of one ingest shard, read from disk only if a collision needs their text."""

    def __init__(self, out: StageDir, index: int):
        self.out, self.index, self._ids = out, index, None

    def __getitem__(self, i: int) -> str:
        if self._ids is None:
            self._ids = self.out.read_ids(self.index, renamed=False)
        return self._ids[i]


def _map_pending(executor, label: str, n_shards: int, task, args: list) -> None:
    """Run ``task`` on the pending shards (``args``, one per shard) in any order, on a progress bar that counts
    the shards already done (a resumed run) as done."""
    with progress_bar(label, total=n_shards, unit="shards") as bar:
        bar.advance(n_shards - len(args))
        for _ in executor.map_shards(task, args, ordered=False):
            bar.advance(1)


def _declare(stage: Stage, total: dict[str, Any]) -> None:
    """A finished stage's ``report()`` and declared report ``section`` go with its counters (stage folder and
    manifest), so the report reads them there, also for a stage that finished in an earlier process."""
    learnt = stage.report()
    if learnt:
        total["report"] = learnt
    if stage.section:
        total["section"] = stage.section


def _counting(batches, bar):
    for b in batches:
        bar.advance(len(b))
        yield b


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size if path.exists() else -1
