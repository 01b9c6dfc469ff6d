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
src, out, cache = sys.argv[1:4]
def to_messages(ex):
    user = ex["instruction"] + ("\n\n" + ex["input"] if ex["input"] else "")
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": ex["output"]}]}
ds = datasets.load_dataset("json", data_files=src, split="train", cache_dir=cache)
ds = ds.map(to_messages, remove_columns=["instruction", "input", "output"])
ds.to_json(out)
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
    ap.add_argument("--workers", type=int, default=1)
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
            pm = measure([sys.executable, "-m", "purgemix", "convert", str(src), str(tmp / f"pm_{n}.jsonl"),
                          "--to", "messages", "--workers", str(args.workers), "--run-dir", str(tmp / f"run_{n}")],
                         env)
            rows.append(("purgemix convert", n, mb, *pm))
            if not args.skip_datasets:
                hf = measure([sys.executable, "-c", HF_SCRIPT, str(src), str(tmp / f"hf_{n}.jsonl"),
                              str(tmp / f"hfcache_{n}")], env)
                rows.append(("datasets load_dataset+map+to_json", n, mb, *hf))
            src.unlink()
    print(f"\n{'tool':36} {'records':>10} {'input MiB':>10} {'seconds':>9} {'records/s':>11} {'peak RSS MiB':>13}")
    for tool, n, mb, secs, peak, rc in rows:
        status = "" if rc == 0 else f"  (failed rc={rc})"
        print(f"{tool:36} {n:>10,} {mb:>10.0f} {secs:>9.1f} {n / secs:>11,.0f} {peak:>13.0f}{status}")
    by = {(t, n): s for t, n, _, s, _, _ in rows}
    for n in args.sizes:
        if ("datasets load_dataset+map+to_json", n) in by:
            ratio = by[("datasets load_dataset+map+to_json", n)] / by[("purgemix convert", n)]
            print(f"speed ratio purgemix / datasets at {n:,} records: {ratio:.2f}x")


if __name__ == "__main__":
    main()
