"""``purgemix profile``'s run: ingest with a stage-less pipeline, accumulate the profile (``report/profile.py``)
over the ingest shards, in the driver or shard-parallel, and write ``profile.json`` and ``profile.html``
(``report/profile_page.py``). Separate from both so the statistics never import the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .profile import ProfileAcc, profile_records, profile_shard, rebatch


def profile_pipeline(pipe, *, out_dir: str | Path | None = None, tokenizer: str = "regex", by: str | None = None,
                     top: int = 30, bins: int = 30) -> dict[str, Any]:
    """Ingest with ``pipe`` (a ``Pipeline`` with no stages and no output, so the run directory,
    manifest, quarantine and ledger exist as for any command), profile the ingested records, write
    ``profile.json`` and ``profile.html`` to ``out_dir`` (default: the run directory) and return the
    command summary with the profile under ``"profile"``."""
    import time

    import orjson

    from .. import __version__
    from ..core.ingest import STAGE as INGEST
    from ..core.progress import progress_bar
    from ..core.rundir import atomic_write_bytes
    from ..executors import make_executor
    from .profile_page import render_html

    t0 = time.perf_counter()
    run = pipe.execute()
    ingest = pipe.run.stage(0, INGEST)
    info = ingest.info()
    t1 = time.perf_counter()
    with progress_bar("profile", total=info.get("out", 0), unit="records") as bar:
        if pipe.workers == 1 and pipe.executor_name == "local":  # in process, in small batches: a smooth bar
            acc = profile_records(rebatch(ingest.iter_records(), 2000), tokenizer, by, on_batch=bar.advance)
        else:  # shards in parallel, partial profiles merged in shard order
            acc = ProfileAcc(by=by)
            executor = make_executor(pipe.executor_name, pipe.workers)
            try:
                args = [((str(ingest.path), i, tokenizer, by), {}) for i in range(info["shards"])]
                for part in executor.map_shards(profile_shard, args):
                    acc.merge(part)
                    bar.advance(part.records)
            finally:
                executor.close()
    result = {
        "purgemix": __version__,
        "inputs": [{"path": str(s.path), "name": s.name, "format": s.format} for s in pipe.sources],
        "tokenizer": tokenizer,
        "read": run["read"],
        "quarantined": run["quarantined"],
        **acc.result(top, bins),
        "approximations": "length quantiles: exact below 256, else within ~1.1% (fixed log bins);"
                          " leading words: first word of the instruction, not a part-of-speech tagger",
    }
    out = Path(out_dir) if out_dir is not None else pipe.run.path
    out.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out / "profile.json", out / "profile.html"
    atomic_write_bytes(json_path, orjson.dumps(result, option=orjson.OPT_INDENT_2))
    atomic_write_bytes(html_path, render_html(result).encode("utf-8"))
    _readable(json_path, html_path)
    seconds = round(time.perf_counter() - t1, 3)
    manifest = pipe.run.manifest()
    manifest["profile"] = {"json": str(json_path), "html": str(html_path), "tokenizer": tokenizer, "by": by,
                           "seconds": seconds}
    pipe.run.write_manifest(manifest)
    return {
        "command": "profile",
        "read": run["read"],
        "records": acc.records,
        "quarantined": run["quarantined"],
        "outputs": {"json": str(json_path), "html": str(html_path), **{k: v for k, v in run["outputs"].items()
                                                                       if k != "data"}},
        "ledger_balanced": run["ledger_balanced"],
        "elapsed_seconds": round(time.perf_counter() - t0, 3),
        "profile": result,
    }


def _readable(*paths: Path) -> None:
    """Reports are for sharing: the usual permissions (umask), not the 0600 of a temporary file."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for p in paths:
        os.chmod(p, 0o666 & ~mask)
