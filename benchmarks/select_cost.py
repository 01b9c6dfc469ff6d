"""What each selector costs on a pool, and how much their choices overlap.

    python benchmarks/select_cost.py [--data ../shared/data/alpaca_random_9k.json] [-n 500]
        [--selectors random,length,...] [--limit N] [--llm-limit 100] [--rater hf:qwen2.5-0.5b]
        [--cache DIR] [--force]

Each selector runs as ``purgemix select`` in a fresh run directory (a subprocess, so its wall time and
CPU-seconds include loading its models), then once more in another fresh directory over the same cache: the
second run must find every stored score and make no new model call. The model cache is the benchmark's own (``--cache``, default
``benchmarks/.cache/select``), so the first selector that needs a signal pays for it and later ones that share
it (``ifd`` and ``perplexity`` share the IFD passes) show what they add; the "scored" and "LLM calls"
columns say which. The rated selectors (one LLM call or two per record, ~1-3 s each on 2 cores) run on the
first ``--llm-limit`` records; their per-record cost is measured there and the table says so.

Resumable: one JSON per selector under ``benchmarks/results/select_cost/``; a finished selector is not run
again without ``--force``. The table goes to ``benchmarks/results/select_cost.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import write_result  # noqa: E402

ALL = ("random", "length", "knn", "kcenter", "superfilter", "ifd", "perplexity", "less",
       "alpagasus", "deita", "instag", "ds2-raw", "ds2")
LLM = ("alpagasus", "deita", "instag", "ds2-raw", "ds2")


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def select(args: argparse.Namespace, name: str, out: Path, run_dir: Path, limit: int | None) -> dict:
    cmd = [sys.executable, "-m", "purgemix", "select", args.data, "--strategy", name, "-n", str(args.n),
           "-o", str(out), "--run-dir", str(run_dir), "--json"]
    if limit:
        cmd += ["--limit", str(limit)]
    if args.rater and name in LLM:
        cmd += ["--rater", args.rater]
    env = {**os.environ, "PURGEMIX_CACHE": str(Path(args.cache).resolve()), "PURGEMIX_NO_PROGRESS": "1",
           "HF_HUB_OFFLINE": "1"}
    cpu0, t0 = children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall, cpu = time.perf_counter() - t0, children_cpu() - cpu0
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return {"wall_s": round(wall, 1), "cpu_s": round(cpu, 1), **costs(manifest)}


def costs(manifest: dict) -> dict:
    """Model work the run did, from the stages' reports in the manifest."""
    scored = cached = calls = hits = tok_in = tok_out = 0
    kept = None
    for st in (manifest.get("stages") or {}).values():
        rep = (st or {}).get("report") or {}
        scored += int(rep.get("scored", 0)) if "cached" in rep else 0  # the ifd stage's passes
        scored += int((rep.get("selector") or {}).get("gradient_passes", 0))  # LESS's own
        cached += int(rep.get("cached", 0))
        for role in ("llm", "usage"):
            u = rep.get(role, {}).get("usage", {}) if role == "llm" else (rep.get("usage") or {})
            calls += int(u.get("cache_misses", 0))
            hits += int(u.get("cache_hits", 0))
            tok_in += int(u.get("tokens_in", 0))
            tok_out += int(u.get("tokens_out", 0))
        if "kept" in rep and "strategy" in rep:
            kept = rep["kept"]
    ledger = manifest.get("ledger") or {}
    return {"scored": scored, "score_cache_hits": cached, "llm_calls": calls, "llm_cache_hits": hits,
            "tokens_in": tok_in, "tokens_out": tok_out, "kept": kept, "balanced": ledger.get("balanced")}


def kept_ids(path: Path) -> set[str]:
    return {json.loads(line)["id"] for line in path.read_text().splitlines() if line.strip()}


def measure(args: argparse.Namespace, name: str) -> dict:
    root = Path(args.root) / name
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    limit = args.llm_limit if name in LLM else args.limit
    first = select(args, name, root / "selected.jsonl", root / "run", limit)
    # a fresh run directory over the same cache: every signal must come from the cache (no new model work)
    again = select(args, name, root / "again.jsonl", root / "run-again", limit)
    same = kept_ids(root / "selected.jsonl") == kept_ids(root / "again.jsonl")
    return {"selector": name, "records": limit or count(args.data), "n": args.n, "first": first, "again": again,
            "same_choice_again": same, "ids": sorted(kept_ids(root / "selected.jsonl"))}


def count(path: str) -> int:
    return len(json.load(open(path)))


def table(rows: list[dict], load: tuple[float, float, float]) -> str:
    out = [f"Machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the end.",
           "", "| selector | records | first run: wall s | CPU s | records scored by a LM | LLM calls | tokens in / out "
           "| second run: wall s | new LM work | same choice | ledger balanced |", "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        f, a = r["first"], r["again"]
        new = a["scored"] + a["llm_calls"]
        out.append(f"| {r['selector']} | {r['records']} | {f['wall_s']} | {f['cpu_s']} | {f['scored']} | "
                   f"{f['llm_calls']} | {f['tokens_in']} / {f['tokens_out']} | {a['wall_s']} | {new} | "
                   f"{'yes' if r['same_choice_again'] else 'NO'} | {f['balanced']} |")
    full = [r for r in rows if r["records"] == max(x["records"] for x in rows)]
    if len(full) > 1:
        out += ["", f"Jaccard overlap of the kept sets (n = {full[0]['n']}, the {full[0]['records']}-record runs):", "",
                "| | " + " | ".join(r["selector"] for r in full) + " |", "|---|" + "---:|" * len(full)]
        for a in full:
            sa = set(a["ids"])
            cells = [f"{len(sa & set(b['ids'])) / max(1, len(sa | set(b['ids']))):.2f}" for b in full]
            out.append(f"| {a['selector']} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(HERE.parents[1] / "shared" / "data" / "alpaca_random_9k.json"))
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--selectors", default=",".join(ALL))
    ap.add_argument("--limit", type=int, default=None, help="the first N records for every selector")
    ap.add_argument("--llm-limit", type=int, default=100, help="the first N records for the rated selectors")
    ap.add_argument("--rater", default="", help="LLM of the rated selectors (default: purgemix's generator)")
    ap.add_argument("--cache", default=str(HERE / ".cache" / "select"))
    ap.add_argument("--root", default=str(HERE / ".select_runs"))
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if not Path(args.data).exists():
        print(f"skip: {args.data} not found")
        return
    results = HERE / "results" / "select_cost"
    results.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in [s for s in args.selectors.split(",") if s]:
        path = results / f"{name}.json"
        if path.exists() and not args.force:
            rows.append(json.loads(path.read_text()))
            continue
        print(f"{name} ...", file=sys.stderr, flush=True)
        try:
            row = measure(args, name)
        except RuntimeError as e:
            print(str(e), file=sys.stderr)
            continue
        path.write_text(json.dumps(row))
        rows.append(row)
        print(f"{name}: {row['first']['wall_s']} s, again {row['again']['wall_s']} s", file=sys.stderr, flush=True)
    text = table(rows, os.getloadavg())
    write_result("select_cost", "Selector costs", text)


if __name__ == "__main__":
    main()
