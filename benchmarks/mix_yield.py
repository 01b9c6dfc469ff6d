"""Mix yield: how many attempts of each generator and operator become new pairs, why the others fail, at
what cost, and whether a 1-to-1 rewrite moves a pair toward what an expert wrote.

    python benchmarks/mix_yield.py [--generators qwen2.5-0.5b,smollm2-135m] [--operators direct_answer,rewrite]
                                   [--groups 30] [--coachlm 40] [--unconstrained] [--max-tokens 512]
                                   [--rewrite-operator rewrite|compose]
                                   [--out .bench/mix_yield] [--generators openai:http://127.0.0.1:8000/v1#m]

Fusion part (per generator x operator), on a fixed low-quality sample of the shared Alpaca 9K: records
that the strong judge's helpfulness labels (``alpagasus_helpful_t45.json``) do not list as positives,
seeded. Fusion operators get pairs of related records (MiniLM embeddings, mutual nearest neighbours,
as the fuse stage pairs within a cluster); ``rewrite`` gets single records; ``distil`` gets clusters of
three. The fuser runs exactly as in a run (rules, the LLM checklist, up to ``--cycles`` repair cycles).
Printed per cycle: attempts, accepted, and the failure reasons by check; then tokens and seconds per
accepted pair, and how often a repair cycle rescued a pair.

CoachLM part (per generator, ``rewrite``): ``--coachlm`` pairs of ``coachlm_revisions_dev.json``
(expert revisions of Alpaca pairs), seeded, excluding the few whose response the expert left as it
was. The raw pair is rewritten; closer = cosine(MiniLM(rewrite), MiniLM(expert's response)) >
cosine(raw, expert's). A rewrite that failed its checks leaves the raw response (not closer). The
share closer comes with a bootstrap 95% CI, over all pairs and over accepted rewrites.

Each (generator, operator) result is saved as JSON under ``--out`` and reused on the next run, so a
long benchmark finishes across sessions; ``--fresh`` recomputes. Requests go through the request
cache (``$PURGEMIX_CACHE``): point it at an empty folder for honest timings.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DATA = ROOT.parent / "shared" / "data"
FUSION_OPS = ("direct_answer", "merged_corpus", "consistency_repair", "fact_completion", "compose")


def _key(r: dict) -> tuple[str, str, str]:
    return (r.get("instruction", "").strip(), r.get("input", "").strip(), r.get("output", "").strip())


def _record(instruction: str, inp: str, output: str, rid: str) -> dict:
    from purgemix.core.record import make_record

    prompt = instruction.strip() + ("\n\n" + inp.strip() if inp.strip() else "")
    return make_record([{"role": "user", "content": prompt}, {"role": "assistant", "content": output.strip()}], id=rid)


def lq_sample(n: int, seed: int) -> list[dict]:
    pool = json.loads((DATA / "alpaca_random_9k.json").read_text())
    positives = {_key(r) for r in json.loads((DATA / "alpagasus_helpful_t45.json").read_text())}
    lq = [r for r in pool if _key(r) not in positives and r.get("output", "").strip()]
    rng = random.Random(seed)
    rng.shuffle(lq)
    return [_record(r["instruction"], r.get("input", ""), r["output"], f"alpaca-{i}") for i, r in enumerate(lq[:n])]


def groups_for(op: str, records: list[dict], count: int, embedder, seed: int) -> list[list[dict]]:
    from purgemix.mix.text import embed_records
    from purgemix.vectors.diversity import pair_related

    if op == "rewrite":
        return [[r] for r in records[:count]]
    x = embed_records(embedder, records)
    if op == "distil":  # clusters of three: a record and its two nearest unused neighbours
        used, out = set(), []
        sims = x @ x.T
        for i in range(len(records)):
            if i in used:
                continue
            near = [j for j in np.argsort(-sims[i]) if j != i and j not in used][:2]
            if len(near) < 2:
                break
            used.update([i, *near])
            out.append([records[i]] + [records[j] for j in near])
            if len(out) == count:
                break
        return out
    pairs, _ = pair_related(x, np.arange(len(records)), seed=seed)
    pairs.sort(key=lambda p: -p[2])
    return [[records[i], records[j]] for i, j, _ in pairs[:count]]


def run_fusion(llm, op: str, groups: list[list[dict]], args) -> dict:
    from purgemix.mix.fuse import Fuser, FusionConfig
    from purgemix.models import GenerationParams

    if op == "rewrite":
        op = args.rewrite_operator
    cfg = FusionConfig(operator=op, max_cycles=args.cycles, constrained=not args.unconstrained,
                       generation=GenerationParams(temperature=0.7, max_tokens=args.max_tokens, seed=args.seed))
    before = llm.stats.as_dict()
    t0 = time.perf_counter()
    outcomes = Fuser(llm, config=cfg).fuse(groups)
    wall = time.perf_counter() - t0
    used = llm.stats.since(before)
    per_cycle: dict[int, dict] = {}
    for o in outcomes:
        for h in o.history:
            c = per_cycle.setdefault(h["cycle"], {"attempts": 0, "accepted": 0, "reasons": Counter()})
            c["attempts"] += 1
            if not h["errors"]:
                c["accepted"] += 1
            for t in sorted({e["type"] for e in h["errors"]}):
                c["reasons"][t] += 1
    accepted = [o for o in outcomes if o.ok]
    failed_first = [o for o in outcomes if o.history and o.history[0]["errors"]]
    first_format = sum(any(e["type"] == "format_error" for e in o.history[0]["errors"]) for o in outcomes if o.history)
    return {
        "groups": len(groups), "accepted": len(accepted), "accepted_share": round(len(accepted) / max(1, len(groups)), 3),
        "first_attempt_format_error_share": round(first_format / max(1, len(groups)), 3),
        "rescued_by_repair": sum(o.ok and o.cycles > 0 for o in outcomes), "failed_first_attempt": len(failed_first),
        "per_cycle": {str(k): {**v, "reasons": dict(v["reasons"].most_common())} for k, v in sorted(per_cycle.items())},
        "final_reasons": dict(Counter(o.reason for o in outcomes if not o.ok).most_common()),
        "tokens_out": used.get("tokens_out"), "requests": used.get("requests"), "cache_hits": used.get("cache_hits"),
        "seconds": round(wall, 1),
        "tokens_per_accepted": round(used.get("tokens_out", 0) / len(accepted), 1) if accepted else None,
        "seconds_per_accepted": round(wall / len(accepted), 1) if accepted else None,
        "examples": [{"sources": [s["messages"][1]["content"][:200] for s in g], "instruction": o.instruction[:300],
                      "response": o.response[:400], "ok": o.ok, "reason": o.reason}
                     for g, o in list(zip(groups, outcomes))[:3]],
    }


def run_distil(llm, embedder, groups: list[list[dict]], args) -> dict:
    from purgemix.mix.distil import DistilConfig, Distiller
    from purgemix.models import GenerationParams

    cfg = DistilConfig(samples=args.distil_samples,
                       generation=GenerationParams(temperature=1.0, max_tokens=args.max_tokens, seed=args.seed))
    before = llm.stats.as_dict()
    t0 = time.perf_counter()
    outcomes = Distiller(llm, embedder, config=cfg).distil(groups)
    wall = time.perf_counter() - t0
    used = llm.stats.since(before)
    accepted = [o for o in outcomes if o.ok]
    return {"groups": len(groups), "accepted": len(accepted), "accepted_share": round(len(accepted) / max(1, len(groups)), 3),
            "final_reasons": dict(Counter(o.reason for o in outcomes if not o.ok).most_common()),
            "format_ok_share": round(float(np.mean([c.get("format", 0) >= 0.5 for o in outcomes for c in o.candidates]
                                                   or [0])), 3),
            "tokens_out": used.get("tokens_out"), "seconds": round(wall, 1),
            "tokens_per_accepted": round(used.get("tokens_out", 0) / len(accepted), 1) if accepted else None,
            "seconds_per_accepted": round(wall / len(accepted), 1) if accepted else None}


def bootstrap_ci(values: list[float], reps: int = 2000, seed: int = 0) -> tuple[float, float]:
    if not values:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    v = np.asarray(values, dtype=float)
    means = v[rng.integers(0, len(v), size=(reps, len(v)))].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def run_coachlm(llm, embedder, args) -> dict:
    from purgemix.mix.fuse import Fuser, FusionConfig
    from purgemix.models import GenerationParams

    rows = [r for r in json.loads((DATA / "coachlm_revisions_dev.json").read_text())
            if r["Raw Response"].strip() != r["Revised Response"].strip()]
    random.Random(args.seed).shuffle(rows)
    rows = rows[: args.coachlm]
    groups = [[_record(r["Raw Instruction"], r["Raw Input"], r["Raw Response"], f"coachlm-{i}")] for i, r in enumerate(rows)]
    cfg = FusionConfig(operator=args.rewrite_operator, max_cycles=args.cycles, constrained=not args.unconstrained,
                       generation=GenerationParams(temperature=0.7, max_tokens=args.max_tokens, seed=args.seed))
    t0 = time.perf_counter()
    outcomes = Fuser(llm, config=cfg).fuse(groups)
    wall = time.perf_counter() - t0
    raw = embedder.embed([r["Raw Response"] for r in rows])
    expert = embedder.embed([r["Revised Response"] for r in rows])
    new = embedder.embed([o.response if o.ok else r["Raw Response"] for o, r in zip(outcomes, rows)])
    base = (raw * expert).sum(1)
    ours = (new * expert).sum(1)
    closer = [float(o.ok and b2 > b1) for o, b1, b2 in zip(outcomes, base, ours)]
    closer_ok = [c for c, o in zip(closer, outcomes) if o.ok]
    identical = sum(o.ok and o.response.strip() == r["Raw Response"].strip() for o, r in zip(outcomes, rows))
    return {"pairs": len(rows), "accepted": sum(o.ok for o in outcomes),
            "closer_share": round(float(np.mean(closer)), 3), "closer_ci95": [round(x, 3) for x in bootstrap_ci(closer)],
            "closer_share_of_accepted": round(float(np.mean(closer_ok)), 3) if closer_ok else None,
            "closer_ci95_of_accepted": [round(x, 3) for x in bootstrap_ci(closer_ok)] if closer_ok else None,
            "mean_cos_raw_to_expert": round(float(base.mean()), 4),
            "mean_cos_ours_to_expert": round(float(ours.mean()), 4),
            "accepted_identical_to_raw": identical,
            "final_reasons": dict(Counter(o.reason for o in outcomes if not o.ok).most_common()),
            "seconds": round(wall, 1)}


def table(results: dict) -> str:
    lines = ["| generator | operator | groups | accepted | share | 1st-try format errors | rescued by repair | "
             "tokens / accepted | s / accepted | final failure reasons |", "|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in sorted(results.items()):
        if "coachlm" in key:
            continue
        gen, op = key.split("|")
        lines.append(f"| {gen} | {op} | {r['groups']} | {r['accepted']} | {r['accepted_share']:.0%} | "
                     f"{r.get('first_attempt_format_error_share', float('nan')):.0%} | {r.get('rescued_by_repair', '-')} | "
                     f"{r.get('tokens_per_accepted')} | {r.get('seconds_per_accepted')} | "
                     f"{', '.join(f'{k} {v}' for k, v in r['final_reasons'].items())} |")
    lines += ["", "per cycle (attempts / accepted / reasons):", ""]
    for key, r in sorted(results.items()):
        for c, v in r.get("per_cycle", {}).items():
            lines.append(f"- {key} cycle {c}: {v['attempts']} / {v['accepted']} / "
                         + ", ".join(f"{k} {n}" for k, n in v["reasons"].items()))
    co = {k: v for k, v in results.items() if "coachlm" in k}
    if co:
        lines += ["", "| generator | CoachLM pairs | accepted | closer to the expert than raw (all) | 95% CI | "
                      "closer (accepted only) | accepted identical to raw | mean cos raw / ours to expert |",
                  "|---|---|---|---|---|---|---|---|"]
        for key, r in sorted(co.items()):
            lines.append(f"| {key.split('|')[0]} | {r['pairs']} | {r['accepted']} | {r['closer_share']:.0%} | "
                         f"{r['closer_ci95'][0]:.0%}–{r['closer_ci95'][1]:.0%} | "
                         f"{'-' if r['closer_share_of_accepted'] is None else format(r['closer_share_of_accepted'], '.0%')} | "
                         f"{r['accepted_identical_to_raw']} | {r['mean_cos_raw_to_expert']} / {r['mean_cos_ours_to_expert']} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--generators", default="qwen2.5-0.5b")
    ap.add_argument("--operators", default="direct_answer,merged_corpus,compose,rewrite,distil")
    ap.add_argument("--groups", type=int, default=30, help="attempts (pairs, singles, clusters) per operator")
    ap.add_argument("--coachlm", type=int, default=40, help="CoachLM pairs rewritten per generator (0: skip)")
    ap.add_argument("--cycles", type=int, default=2, help="repair cycles after the first attempt")
    ap.add_argument("--max-tokens", type=int, default=512)
    ap.add_argument("--distil-samples", type=int, default=2)
    ap.add_argument("--unconstrained", action="store_true", help="no grammar on the output (the old path)")
    ap.add_argument("--rewrite-operator", default="rewrite", choices=("rewrite", "compose"),
                    help="operator of the 1-to-1 jobs (rewrite, coachlm): one pair at once, or compose's two steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / ".bench" / "mix_yield"))
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    if not (DATA / "alpaca_random_9k.json").exists():
        print(f"skipped: {DATA} not found")
        return
    from purgemix.models import load_embedder

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "unconstrained" if args.unconstrained else "constrained"
    embedder = load_embedder("minilm")
    pool = lq_sample(max(400, 4 * args.groups), args.seed)
    results: dict[str, dict] = {}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)
    for spec in [g for g in args.generators.split(",") if g]:
        llm = None
        jobs = [op for op in args.operators.split(",") if op] + (["coachlm"] if args.coachlm else [])
        for op in jobs:
            label = f"{op}:compose" if op in ("rewrite", "coachlm") and args.rewrite_operator == "compose" else op
            key = f"{spec}|{label}" + ("" if tag == "constrained" else f"|{tag}")
            path = out / (key.replace("/", "_").replace(":", "_").replace("|", "__") + ".json")
            if path.exists() and not args.fresh:
                results[key] = json.loads(path.read_text())
                print(f"{key}: reused {path}", flush=True)
                continue
            if llm is None:
                from purgemix.models import load_llm

                llm = load_llm(spec)
            print(f"{key}: running ...", flush=True)
            if op == "coachlm":
                r = run_coachlm(llm, embedder, args)
            elif op == "distil":
                r = run_distil(llm, embedder, groups_for(op, pool, args.groups, embedder, args.seed), args)
            elif op == "rewrite" or op in FUSION_OPS:
                r = run_fusion(llm, op, groups_for(op, pool, args.groups, embedder, args.seed), args)
            else:
                raise SystemExit(f"unknown operator {op}")
            r.update({"generator": spec, "operator": op, "output": tag, "max_tokens": args.max_tokens,
                      "cycles": args.cycles, "load_after": round(os.getloadavg()[0], 2)})
            path.write_text(json.dumps(r, indent=1))
            results[key] = r
            print(json.dumps({k: v for k, v in r.items() if k != "examples"}), flush=True)
        if llm is not None and hasattr(getattr(llm, "inner", llm), "close"):
            getattr(llm, "inner", llm).close()
    print()
    print(table(results))


if __name__ == "__main__":
    main()
