"""Clustering speed on synthetic embeddings (no model needed).

    python benchmarks/cluster_speed.py [--n 100000] [--dim 384] [--longtail]

Synthetic data: N unit vectors drawn around N/20 random topic centres. Times every clustering
step of neural reconstruction: LM-Mixup's capacity-constrained k-means (paper and code capacity
settings), ENTP's k by silhouette + k-means + MMR representatives + related pairs, semantic dedup,
and optionally the brute-force long-tail score. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np

from purgemix.mix.semdedup import semantic_duplicates
from purgemix.vectors.cluster import CapacitySpec, capacity_clusters, choose_k, default_ks, kmeans
from purgemix.vectors.diversity import mmr, pair_related
from purgemix.vectors.neighbours import l2_normalise, longtail


def synthetic(n: int, dim: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = l2_normalise(rng.normal(size=(max(1, n // 20), dim)))
    x = centres[rng.integers(0, len(centres), n)] + rng.normal(size=(n, dim)).astype(np.float32) * (1.0 / math.sqrt(dim))
    return l2_normalise(x)


CPU: dict[str, float] = {}


def timed(fn, name: str):
    """Wall seconds of one step (its process CPU seconds go to CPU[name]: on a shared machine the
    wall time is inflated by other processes, CPU time much less)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    dt = round(time.perf_counter() - t0, 2)
    CPU[name] = round(time.process_time() - c0, 2)
    print(f"  {name}: {dt}s wall, {CPU[name]}s cpu", file=sys.stderr, flush=True)
    return out, dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--longtail", action="store_true", help="also time the brute-force long-tail score")
    ap.add_argument("--k", type=int, default=None, help="k for the pairing steps (default: the silhouette choice)")
    args = ap.parse_args()
    x = synthetic(args.n, args.dim)
    report: dict = {"n": args.n, "dim": args.dim, "cpus": os.cpu_count(), "numpy": np.__version__,
                    "python": platform.python_version(), "seconds": {}}
    sec = report["seconds"]

    c, sec["capacity_mean3"] = timed(lambda: capacity_clusters(x, CapacitySpec(3, 1, 2, 5)), "capacity_mean3")
    report["capacity_mean3"] = c.info
    c, sec["capacity_mean10"] = timed(lambda: capacity_clusters(x, CapacitySpec(10, 3, 2, 25)), "capacity_mean10")
    report["capacity_mean10"] = c.info

    (k, scores), sec["silhouette_choose_k"] = timed(lambda: choose_k(x, default_ks(args.n)), "silhouette_choose_k")
    report["silhouette"] = {"k": k, "scores": scores}
    # pairing cost depends on cluster sizes: time it at the chosen k and at ~100 members per cluster
    k_pairs = args.k or k
    report["k_for_pairs"] = k_pairs
    km, sec["kmeans_k"] = timed(lambda: kmeans(x, k_pairs), "kmeans_k")

    def reps_and_pairs():
        n_pairs = 0
        for cl in range(len(km.centroids)):
            members = np.flatnonzero(km.labels == cl)
            if len(members) < 2:
                continue
            reps = mmr(x, members, max(2, len(members) // 2), centroid=km.centroids[cl])  # half as representatives
            n_pairs += len(pair_related(x, reps)[0])
        return n_pairs

    report["pairs"], sec["mmr_and_pairs"] = timed(reps_and_pairs, "mmr_and_pairs")
    dup, sec["semantic_dedup"] = timed(lambda: semantic_duplicates(x, threshold=0.95), "semantic_dedup")
    report["duplicates"] = int((dup >= 0).sum())
    if args.longtail:
        _, sec["longtail_k15"] = timed(lambda: longtail(x, 15), "longtail_k15")
    report["cpu_seconds"] = CPU
    report["load_average_after"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
