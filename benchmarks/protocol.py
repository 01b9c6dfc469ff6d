"""The papers' comparison at a scale a 2-core machine can run: the same base fine-tuned on each arm at one budget.

    python benchmarks/protocol.py [--pool 2000] [--budget 400] [--seeds 0,1] [--arms full,random,...]
                                  [--base smollm2-135m] [--limit 50] [--ref-limit 200] [--max-minutes M]

Arms, all from one noisy pool (the first ``--pool`` records of ``../shared/data/alpaca_random_9k.json``):

    full      the whole pool (not cut to the budget: what the papers call "full data")
    random    a seeded random ``--budget`` records of the pool
    purged    ``purgemix purge`` of the pool (features, fitted rules, dedup; no model), then the budget
    hq        the HQ split of ``purgemix run quick`` (ratio 0:1: no new pairs), then the budget
    entp      ``purgemix run entp``: fused pairs mixed with the HQ split, then the budget
    rewrite   the 1-to-1 rewrite control (``mix.pairing=none``) at the same mix budget
    lm-mixup  ``purgemix run lm-mixup``: distilled pairs mixed with the HQ split
    length, knn, kcenter, ifd, superfilter, perplexity, ds2-raw, ds2, alpagasus, deita, instag
              ``purgemix select --strategy NAME -n BUDGET`` of the pool (docs/select.md)

It is resumable, one arm at a time: an arm's data file, its fine-tune and its scores are each kept under
``--work`` and reused, so an interrupted run (or ``--max-minutes``) continues where it stopped. Each seed is
its own harness run (its own fine-tunes). The table so far is written after every arm to
``benchmarks/results/protocol.md`` (commit it as it grows) and ``--work/protocol.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SHARED = ROOT.parent / "shared" / "data"
RECIPE_ARMS = {
    "hq": ("quick", ["mix.ratio=0:1", "mix.budget=1"]),
    "entp": ("entp", []),
    "rewrite": ("entp", ["mix.pairing=none"]),
    "lm-mixup": ("lm-mixup", []),
}
SELECTORS = ["length", "knn", "kcenter", "ifd", "superfilter", "perplexity", "ds2-raw", "ds2", "alpagasus", "deita",
             "instag"]
ALL_ARMS = ["full", "random", "purged", *RECIPE_ARMS, *SELECTORS]


def _purgemix(*args: str) -> None:
    env = {**os.environ, "PURGEMIX_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1"}
    subprocess.run([sys.executable, "-m", "purgemix", *args], check=True, env=env, cwd=ROOT)


def make_pool(work: Path, n: int) -> Path:
    path = work / f"pool-{n}.json"
    if not path.exists():
        rows = json.loads((SHARED / "alpaca_random_9k.json").read_text())[:n]
        path.write_text(json.dumps(rows))
    return path


def arm_data(name: str, pool: Path, work: Path, budget: int, seed: int, sets: list[str]) -> tuple[Path, int | None]:
    """(the arm's data file, the budget the harness cuts it to); each file is made once."""
    out = work / "data" / f"{name}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    if name == "full":
        return pool, None
    if name == "random":
        return pool, budget
    if not out.exists():
        if name == "purged":
            _purgemix("purge", str(pool), "-o", str(out), "--run-dir", str(work / "runs" / name))
        elif name in RECIPE_ARMS:
            recipe, overrides = RECIPE_ARMS[name]
            _purgemix("run", recipe, str(pool), *overrides, *sets, f"run.seed={seed}", "-o", str(out),
                      "--run-dir", str(work / "runs" / name))
        else:
            _purgemix("select", str(pool), "--strategy", name, "-n", str(budget), "--seed", str(seed), "-o", str(out),
                      "--run-dir", str(work / "runs" / f"select-{name}"))
    return out, budget


def write_table(tables: dict[int, dict], path: Path, header: str) -> None:
    from purgemix.evaluate.harness import format_table

    lines = [header, ""]
    for seed, table in sorted(tables.items()):
        rows = format_table(table)
        lines += [f"### seed {seed} (differences against `{table['baseline']}`)", "",
                  "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--budget", type=int, default=400)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--arms", default=",".join(ALL_ARMS))
    ap.add_argument("--base", default="smollm2-135m")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--limit", type=int, default=50, help="IFEval prompts (a fixed subset)")
    ap.add_argument("--ref-limit", type=int, default=200, help="AlpacaEval references for the NLL")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="recipe override for the recipe arms, e.g. models.generator=openai:URL#MODEL")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop after the arm that passes this")
    ap.add_argument("--work", type=Path, default=ROOT / ".bench" / "protocol")
    ap.add_argument("--table", type=Path, default=ROOT / "benchmarks" / "results" / "protocol.md")
    args = ap.parse_args()

    from purgemix.evaluate.base import load_suite
    from purgemix.evaluate.harness import BASE_ARM, Arm, Harness
    from purgemix.train.sft import SFTSettings

    t0 = time.time()
    args.work.mkdir(parents=True, exist_ok=True)
    pool = make_pool(args.work, args.pool)
    suites = [load_suite("ifeval", limit=args.limit), load_suite("nll", limit=args.ref_limit)]
    arms = [a for a in args.arms.split(",") if a]
    tables: dict[int, dict] = {}
    load = os.getloadavg()[0]
    for seed in [int(s) for s in args.seeds.split(",")]:
        settings = SFTSettings(base=args.base, epochs=args.epochs, max_length=args.max_length, seed=seed)
        done: list[Arm] = [Arm(BASE_ARM, None)]
        for name in ["random", *[a for a in arms if a != "random"]]:
            if name not in arms:
                continue
            path, budget = arm_data(name, pool, args.work, args.budget, seed, args.set)
            # each arm is cut to the budget; "full" is the only arm that keeps every record
            harness = Harness(args.work / f"seed-{seed}", suites, settings, baseline="random",
                              log=lambda m: print(m, flush=True))
            done.append(Arm(name, str(path), budget))
            table = harness.run(done)
            tables[seed] = table
            write_table(tables, args.table, f"Protocol: pool {args.pool} of alpaca_random_9k, budget {args.budget}, "
                        f"base {args.base}, {args.epochs} epoch(s), IFEval {args.limit} prompts, AlpacaEval NLL on "
                        f"{args.ref_limit} references; load average at start {load:.1f}. Command: `python "
                        f"benchmarks/protocol.py {' '.join(sys.argv[1:])}`")
            (args.work / "protocol.json").write_text(json.dumps(tables, indent=1, default=str))
            if args.max_minutes and (time.time() - t0) / 60 > args.max_minutes:
                print(f"stopping after {name}: {args.max_minutes} minutes passed; re-run to continue")
                return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
