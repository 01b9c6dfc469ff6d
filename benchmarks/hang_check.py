"""Do multi-worker runs always end? ``N`` purges with ``--workers 2`` on a loaded machine, each under a deadline.

    python benchmarks/hang_check.py [--runs 200] [--workers 2] [--load 2] [--deadline 120]

Each run is ``purgemix purge`` of a small generated pool (2,000 records, shards of 250) in a fresh run
directory. ``--load`` busy-loop processes keep the CPUs loaded meanwhile (the hang was seen under load). A run
that passes its deadline is a hang: it is killed and counted, and its last output is printed. Prints a
table of outcomes and the wall-time spread.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def burn(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x = (x * 31 + 7) % 1_000_003


def pool(path: Path, n: int = 2000) -> None:
    rng = random.Random(0)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    with open(path, "w") as f:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60)))
            f.write(json.dumps({"instruction": f"Task {i % 1500}: {text[:40]}", "input": "", "output": text}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--load", type=int, default=2, help="busy processes beside the runs")
    ap.add_argument("--deadline", type=float, default=120.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="purgemix-hang-"))
    src = tmp / "pool.jsonl"
    pool(src)
    burners = [mp.Process(target=burn, args=(time.time() + 24 * 3600,), daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    outcomes: dict[str, int] = {}
    walls = []
    try:
        for i in range(args.runs):
            cmd = [sys.executable, "-m", "purgemix", "purge", str(src), "-o", str(tmp / f"out{i % 2}.jsonl"),
                   "--workers", str(args.workers), "--shard-size", "250", "--run-dir", str(tmp / f"run{i}")]
            t0 = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.deadline,
                                   env={**os.environ, "PURGEMIX_NO_PROGRESS": "1"})
                kind = "ok" if p.returncode == 0 else f"exit {p.returncode}"
                if p.returncode:
                    print(p.stderr[-800:], file=sys.stderr)
            except subprocess.TimeoutExpired as e:
                kind = "HANG"
                print(f"run {i} passed its {args.deadline:.0f} s deadline; last output:\n"
                      f"{(e.stderr or b'')[-800:]!r}", file=sys.stderr)
            walls.append(time.perf_counter() - t0)
            outcomes[kind] = outcomes.get(kind, 0) + 1
            subprocess.run(["rm", "-rf", str(tmp / f"run{i}")])
            if (i + 1) % 20 == 0:
                print(f"{i + 1} runs: {outcomes}", file=sys.stderr, flush=True)
    finally:
        for b in burners:
            b.kill()
    load = os.getloadavg()
    print(f"| runs | workers | busy processes | outcomes | wall s median / max | load (1 min) |\n|---:|---:|---:|---|---|---:|\n"
          f"| {args.runs} | {args.workers} | {args.load} | {outcomes} | {statistics.median(walls):.1f} / "
          f"{max(walls):.1f} | {load[0]:.2f} |")


if __name__ == "__main__":
    main()
