"""The clusters and examples sections: cluster sizes and a 2-D map from the created records' lineage
(``derived_from``, ``pairing.cluster``, ``cluster_size``), the reports of the ``mix*`` stages and persisted
assignments (``stages/NN-<stage>/clusters.npz``), and sampled new pairs next to their parents with their fate.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from ...core.ids import id_hash
from ...core.record import instruction_of, response_of
from ...core.rundir import RunDir, StageDir
from .common import PURGE_PREFIX, clip, is_number, section_of, shards_of, stage_name, stage_report


def mix_sections(run: RunDir, stages: list[StageDir], manifest: dict[str, Any], events: dict[str, Any],
         missing: list[str], n_examples: int, n_map: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    # what the mix stages learnt (clustering figures, mix counts), without their model usage (under costs)
    info = {stage_name(sd): {k: v for k, v in stage_report(sd, manifest).items() if k not in ("model", "usage")}
            for sd in stages if section_of(sd, manifest).startswith("mix")}
    info = {k: v for k, v in info.items() if v}
    pos_of = {sd.path.name: i for i, sd in enumerate(stages)}
    created_stats: dict[str, Any] = {}
    examples: list[dict[str, Any]] = []
    map_groups: list[dict[str, Any]] = []
    final = _final_output(stages) if events["created"] else np.empty(0, np.int64)
    for sdname, c in events["created"].items():
        sd = stages[pos_of[sdname]]
        want = {s["id"] for s in c["sample"]}
        stats = {"count": c["count"], "in_output": 0, "operators": Counter(), "cycles": Counter(),
                 "cluster_sizes": Counter(), "pairs_per_cluster": Counter(), "rewards": {},
                 "models": Counter()}
        found: dict[str, dict] = {}
        for i in shards_of(sd):
            ids = sd.read_ids(i)
            if not any(id_hash(x) in c["hashes"] for x in ids):
                continue
            for r in sd.read_records(i):
                if id_hash(r["id"]) not in c["hashes"]:
                    continue
                lin = r.get("lineage") or {}
                stats["in_output"] += 1
                stats["operators"][str(lin.get("operator"))] += 1
                stats["cycles"][int(lin.get("cycles") or 0)] += 1
                stats["models"][str(lin.get("model"))] += 1
                if lin.get("cluster_size"):
                    stats["cluster_sizes"][int(lin["cluster_size"])] += 1
                pairing = lin.get("pairing") or {}
                if "cluster" in pairing:
                    stats["pairs_per_cluster"][int(pairing["cluster"])] += 1
                for k, v in (lin.get("rewards") or {}).items():
                    if is_number(v):  # running mean, min, max
                        acc = stats["rewards"].setdefault(k, [0.0, 0, math.inf, -math.inf])
                        acc[0] += float(v)
                        acc[1] += 1
                        acc[2], acc[3] = min(acc[2], float(v)), max(acc[3], float(v))
                if r["id"] in want:
                    found[r["id"]] = r
        failed = events["failed"].get(sdname, {})
        samples = c["sample"]
        picked_ok = [found[s["id"]] for s in samples if s["id"] in found][:n_examples]
        picked_failed = failed.get("sample", [])[:max(1, n_examples // 3) if n_examples else 0]
        groups = samples[:n_map]
        parents_wanted = {p for r in picked_ok for p in (r.get("lineage") or {}).get("derived_from", [])}
        parents_wanted |= {p for f in picked_failed for p in (f["record"].get("lineage") or {}).get("derived_from", [])}
        parents_wanted |= {p for g in groups for p in g["parents"]}
        prev = stages[pos_of[sdname] - 1]
        parents = _lookup(prev, parents_wanted)
        if len(parents) < len(parents_wanted):
            parents.update(_lookup(stages[0], parents_wanted - set(parents)))
        for r in picked_ok:
            examples.append(_example(sdname, r, parents, None))
        for f in picked_failed:
            examples.append(_example(sdname, f["record"], parents, f))
        for g in groups:
            rec = found.get(g["id"])
            cluster = ((rec or {}).get("lineage") or {}).get("pairing", {}).get("cluster")
            map_groups.append({"stage": sdname, "id": g["id"], "cluster": cluster, "ok": rec is not None,
                               "parents": [parents[p] for p in g["parents"] if p in parents]})
        created_stats[sdname] = {
            "created": stats["count"], "in_output": stats["in_output"], "failed": failed.get("count", 0),
            "in_final_output": int(np.isin(np.fromiter(c["hashes"], np.int64, len(c["hashes"])), final).sum()),
            "failed_reasons": failed.get("reasons", {}),
            "operators": dict(stats["operators"].most_common()), "models": dict(stats["models"]),
            "cycles": {str(k): v for k, v in sorted(stats["cycles"].items())},
            "cluster_sizes": {str(k): v for k, v in sorted(stats["cluster_sizes"].items())},
            "group_sizes": {str(k): v for k, v in sorted(c["group_sizes"].items())},
            "pairs_per_cluster": _size_hist(stats["pairs_per_cluster"]),
            "rewards": {k: {"mean": round(a[0] / a[1], 4), "min": round(a[2], 4), "max": round(a[3], 4), "n": a[1]}
                        for k, a in stats["rewards"].items() if a[1]},
        }
    _fates(stages, pos_of, [e for e in examples if e["ok"]], final)
    persisted = _persisted_clusters(stages)
    clusters: dict[str, Any] = {}
    if created_stats or info or persisted:
        clusters = {"stages": created_stats, "info": info, "persisted": persisted}
        maps = [{"stage": ps["stage"], **ps["map"], "source": f"{ps['file']} (assignments stored by the stage)"}
                for ps in persisted if ps["map"]["points"]]
        done = {m["stage"] for m in maps}
        for sdname in dict.fromkeys(g["stage"] for g in map_groups):
            if sdname in done:
                continue
            m = _proxy_map([g for g in map_groups if g["stage"] == sdname])
            if m["points"]:
                # a fusion names the cluster its pair came from; a distillation's group is one whole cluster
                paired = any(g["cluster"] is not None for g in map_groups if g["stage"] == sdname)
                kind = "fusion cluster" if paired else "group (one cluster)"
                maps.append({"stage": sdname, **m, "source": (
                    f"parents of {m['groups']} new records (a sample), placed by PCA of hashed word counts (the run's "
                    f"own embeddings are not stored; points slightly jittered); lines join the parents of one new "
                    f"record; colour = {kind}")})
        clusters["maps"] = maps
        if not persisted and any(section_of(sd, manifest) == "mix.clusters" for sd in stages):
            missing.append("cluster assignments and embeddings of the clustering stages are not stored in the run "
                           "directory: cluster sizes come from the new records' lineage (distil: cluster_size; "
                           "fuse: pairs per cluster), and the 2-D map is a proxy. Storing "
                           "stages/NN-<stage>/clusters.npz (ids, labels, a 2-D projection) would give the real map "
                           "and the sizes of every cluster, including those that produced nothing.")
    ex = {"items": examples} if examples else None
    return (clusters or None), ex


def _final_output(stages: list[StageDir]) -> np.ndarray:
    """64-bit id hashes of what the run wrote (the export's ids, else the last stage's records), sorted."""
    last = stages[-1]
    if (last.path / "output_ids.npy").exists():
        return np.sort(np.load(last.path / "output_ids.npy"))
    from ..core.ids import hash_ids

    return np.sort(np.concatenate([hash_ids(last.read_ids(i)) for i in shards_of(last)] or [np.empty(0, np.int64)]))


def _fates(stages: list[StageDir], pos_of: dict[str, int], examples: list[dict[str, Any]], final: np.ndarray) -> None:
    """What became of each example's new record after its stage: in the output, or dropped/merged (why)."""
    wanted = {e["id"]: e for e in examples}
    if not wanted:
        return
    start = min(pos_of[e["stage"]] for e in examples) + 1
    for sd in stages[start:]:
        for i in shards_of(sd):
            for ev in sd.read_events(i):
                e = wanted.get(ev.get("id"))
                if e is not None and ev.get("outcome") in ("dropped", "merged", "rewritten") and pos_of[e["stage"]] < pos_of[sd.path.name]:
                    e["fate"] = {"stage": sd.path.name, "outcome": ev["outcome"], "reason": ev.get("reason"),
                                 "into": ev.get("into")}
    for e in examples:
        if "fate" not in e:
            in_out = bool(np.isin(np.array([id_hash(e["id"])], np.int64), final)[0])
            e["fate"] = {"outcome": "written" if in_out else "not written"}


def _size_hist(counter: Counter) -> dict[str, int]:
    return {str(k): v for k, v in sorted(Counter(counter.values()).items())}


def _lookup(sd: StageDir, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """Records of ``sd`` with the wanted ids, reduced to what the report shows (one pass, shard by shard)."""
    out: dict[str, dict[str, Any]] = {}
    if not wanted or not (sd.complete or sd.shard_indices()):
        return out
    for i in shards_of(sd):
        ids = sd.read_ids(i)
        if not any(x in wanted for x in ids):
            continue
        for r in sd.read_records(i):
            if r["id"] in wanted and r["id"] not in out:
                out[r["id"]] = _brief(r)
        if len(out) == len(wanted):
            break
    return out


def _brief(r: dict[str, Any], n: int = 700) -> dict[str, Any]:
    return {"id": r["id"], "source": r.get("source", ""), "instruction": clip(instruction_of(r), n),
            "response": clip(response_of(r), n),
            "scores": {k: v for k, v in (r.get("scores") or {}).items()
                       if not k.startswith(PURGE_PREFIX) and is_number(v)}}


def _example(stage: str, rec: dict[str, Any], parents: dict[str, dict], failed: dict | None) -> dict[str, Any]:
    lin = rec.get("lineage") or {}
    new = _brief(rec, 1500)
    keep = ("operator", "operators", "template", "model", "checker", "embedder", "quality", "cycles", "pairing",
            "shape", "cluster_size", "feedback")
    judged = lin.get("judge") or {}
    ex = {"stage": stage, "id": rec["id"], "new": new, "ok": failed is None,
          "parents": [parents.get(p) or {"id": p, "missing": True} for p in lin.get("derived_from", [])],
          "lineage": {k: lin[k] for k in keep if k in lin},
          "rewards": lin.get("rewards") or (failed or {}).get("rewards") or {},
          "checks": lin.get("checks") or {},
          "candidates": len(lin.get("candidates") or []),
          "judge": judged}
    if failed is not None:
        ex["failure"] = {"reason": failed.get("reason"), "errors": failed.get("errors") or lin.get("errors"),
                         "detail": failed.get("detail")}
    return ex


def _persisted_clusters(stages: list[StageDir]) -> list[dict[str, Any]]:
    """Assignments a clustering stage stored (``clusters.npz``: ids, labels, optional xy/embeddings)."""
    out = []
    for sd in stages:
        path = sd.path / "clusters.npz"
        if not path.exists():
            continue
        try:
            z = np.load(path, allow_pickle=False)
            labels = np.asarray(z["labels"]).astype(np.int64)
            if "xy" in z.files:
                xy = np.asarray(z["xy"], dtype=np.float64)
            elif "embeddings" in z.files:
                xy = _pca2(np.asarray(z["embeddings"], dtype=np.float64))
            else:
                xy = None
        except (OSError, KeyError, ValueError):
            continue
        sizes = Counter(np.bincount(labels[labels >= 0]).tolist()) if (labels >= 0).any() else Counter()
        sizes.pop(0, None)
        points = []
        if xy is not None and len(xy) == len(labels):
            pick = np.random.default_rng(0).permutation(len(labels))[:2000]
            points = [[round(float(xy[i, 0]), 4), round(float(xy[i, 1]), 4), int(labels[i]), ""] for i in sorted(pick)]
        out.append({"stage": sd.path.name, "file": f"{sd.path.name}/clusters.npz", "records": int(len(labels)),
                    "clusters": int(len(np.unique(labels[labels >= 0]))), "unassigned": int((labels < 0).sum()),
                    "sizes": {str(k): v for k, v in sorted(sizes.items())},
                    "map": {"points": points, "lines": []}})
    return out


_WORD = re.compile(r"\w+")


def _hashed(texts: list[str], dim: int = 256) -> np.ndarray:
    x = np.zeros((len(texts), dim), dtype=np.float64)
    for i, t in enumerate(texts):
        for w in _WORD.findall(t.lower()):
            h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
            x[i, h % dim] += 1.0
    x = np.log1p(x)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return x / norms


def _pca2(x: np.ndarray) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, 2))
    xc = x - x.mean(axis=0)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    proj = xc @ vt[:2].T
    if proj.shape[1] < 2:
        proj = np.hstack([proj, np.zeros((len(x), 2 - proj.shape[1]))])
    for j in range(2):  # deterministic orientation
        if proj[:, j].sum() < 0:
            proj[:, j] = -proj[:, j]
    return proj


def _proxy_map(groups: list[dict[str, Any]]) -> dict[str, Any]:
    texts, owner = [], []
    for gi, g in enumerate(groups):
        for p in g["parents"]:
            texts.append(p["instruction"] + "\n" + p["response"])
            owner.append((gi, p["id"]))
    if len(texts) < 2:
        return {"points": [], "lines": []}
    xy = _pca2(_hashed(texts))
    span = np.ptp(xy, axis=0) if len(xy) else np.ones(2)
    xy = xy + np.random.default_rng(0).uniform(-0.015, 0.015, xy.shape) * np.where(span > 0, span, 1.0)
    points, lines = [], []
    by_group: dict[int, list[int]] = defaultdict(list)
    for k, ((gi, pid), (x, y)) in enumerate(zip(owner, xy.tolist())):
        g = groups[gi]
        colour = g["cluster"] if isinstance(g["cluster"], int) else gi
        tip = f"{g['stage']} → {g['id']}{'' if g['ok'] else ' (failed)'}: parent {pid}"
        points.append([round(x, 4), round(y, 4), int(colour), tip])
        by_group[gi].append(k)
    lines = [v for v in by_group.values() if len(v) > 1]
    return {"points": points, "lines": lines, "groups": len(groups)}
