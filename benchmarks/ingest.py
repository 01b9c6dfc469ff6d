"""Ingest benchmark: read, validate, convert (Alpaca -> messages) and write N records.

purgemix (`purgemix convert`) versus the usual alternative, `datasets.load_dataset("json")` + `map`
+ `to_json`, in the same run, each in its own process so that peak memory (RSS of the whole process
tree, sampled every 50 ms) is measured separately. Records are the shared Alpaca data replicated
(each copy's instruction gets a suffix so ids stay distinct).

    python benchmarks/ingest.py                    # 100K and 1M records
    python benchmarks/ingest.py --sizes 100000     # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "alpaca_random_9k.json"

HF_SCRIPT = r"""
import sys, datasets
datasets.disable_progress_bars()
src, out, cache, workers = sys.argv[1:5]
workers = int(workers)
def to_messages(ex):
    user = ex["instruction"] + ("\n\n" + ex["input"] if ex["input"] else "")
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": ex["output"]}]}
ds = datasets.load_dataset("json", data_files=src, split="train", cache_dir=cache)
ds = ds.map(to_messages, remove_columns=["instruction", "input", "output"], num_proc=workers if workers > 1 else None)
ds.to_json(out, num_proc=workers if workers > 1 else None)
"""


def make_input(path: Path, n: int, seed_data: Path) -> None:
    base = json.loads(seed_data.read_text())
    with open(path, "w") as f:
        for i in range(n):
            r = base[i % len(base)]
            copy = i // len(base)
            rec = {"instruction": r["instruction"] + (f" (v{copy})" if copy else ""), "input": r["input"],
                   "output": r["output"]}
            f.write(json.dumps(rec) + "\n")


def measure(cmd: list[str], env=None) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB of the process tree, return code)"""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error:
            pass
        time.sleep(0.05)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.read().decode()[-2000:])
    return secs, peak / 2**20, proc.returncode


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (same for both tools)")
    ap.add_argument("--skip-datasets", action="store_true")
    args = ap.parse_args()
    if not args.data.exists():
        sys.exit(f"seed data {args.data} not found; pass --data")
    env = {**os.environ, "PURGEMIX_NO_PROGRESS": "1", "HF_DATASETS_OFFLINE": "1"}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for n in args.sizes:
            src = tmp / f"in_{n}.jsonl"
            make_input(src, n, args.data)
            mb = src.stat().st_size / 2**20
            for w in args.workers:
                pm = measure([sys.executable, "-m", "purgemix", "convert", str(src), str(tmp / f"pm_{n}.jsonl"),
                              "--to", "messages", "--workers", str(w), "--run-dir", str(tmp / f"run_{n}_{w}")], env)
                rows.append((f"purgemix convert -w {w}", n, mb, *pm))
                if not args.skip_datasets:
                    hf = measure([sys.executable, "-c", HF_SCRIPT, str(src), str(tmp / f"hf_{n}.jsonl"),
                                  str(tmp / f"hfcache_{n}_{w}"), str(w)], env)
                    rows.append((f"datasets load+map+to_json np={w}", n, mb, *hf))
                shutil.rmtree(tmp / f"run_{n}_{w}", ignore_errors=True)
                shutil.rmtree(tmp / f"hfcache_{n}_{w}", ignore_errors=True)
            src.unlink()
    print(f"\n{'tool':36} {'records':>10} {'input MiB':>10} {'seconds':>9} {'records/s':>11} {'peak RSS MiB':>13}")
    for tool, n, mb, secs, peak, rc in rows:
        status = "" if rc == 0 else f"  (failed rc={rc})"
        print(f"{tool:36} {n:>10,} {mb:>10.0f} {secs:>9.1f} {n / secs:>11,.0f} {peak:>13.0f}{status}")
    by = {(t, n): (s, p) for t, n, _, s, p, _ in rows}
    for n in args.sizes:
        for w in args.workers:
            pm, hf = by.get((f"purgemix convert -w {w}", n)), by.get((f"datasets load+map+to_json np={w}", n))
            if pm and hf:
                print(f"{n:>10,} records, {w} worker(s): purgemix is {hf[0] / pm[0]:.2f}x the speed of datasets, "
                      f"peak memory {pm[1]:.0f} vs {hf[1]:.0f} MiB")


if __name__ == "__main__":
    main()
