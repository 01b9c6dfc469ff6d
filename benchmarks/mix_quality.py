"""Mix quality: does a run make the data better? Inputs versus outputs of one recipe run.

    python benchmarks/mix_quality.py [--data ../shared/data/alpaca_random_9k.json] [--limit 300]
                                     [--recipe quick] [--rate 40] [KEY=VALUE ...]

For the run's inputs and for its outputs (each a seeded sample of ``--rate`` records) it prints:

- the DS2 rater's mean score (0–5) and the share at or above the HQ cut (``split.hq``), rated by the
  recipe's rater (default: its generator);
- distinct-1/2 (distinct word uni/bigrams over all words of the responses, on equal-size samples of
  both sides) and the embedding spread
  (mean pairwise cosine distance of the records, with the recipe's embedder);
- generation throughput: the run's (tokens out / seconds spent in the backend's generate calls,
  cache misses only) next to a bare, uncached backend replaying exactly the requests the run sent
  (same conversations, same parameters, same batches), and their ratio; plus the whole run's
  tokens out per second of wall time (purge, scoring, clustering and checks included).

Run it with an empty request cache (``PURGEMIX_CACHE=...``) or every request is a cache hit.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from purgemix.core.record import response_of  # noqa: E402
from purgemix.core.shapes import Converter  # noqa: E402
from purgemix.io import Source  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "alpaca_random_9k.json"


def read_records(path: Path) -> list[dict]:
    src = Source.open(path)
    conv = Converter(src.name)
    out = []
    for _, payload, err in src.rows():
        if err is None:
            out.append(conv(orjson.loads(payload) if isinstance(payload, bytes) else payload))
    return out


def distinct_n(texts: list[str], n: int) -> float:
    grams, total = set(), 0
    for t in texts:
        w = t.lower().split()
        g = list(zip(*[w[i:] for i in range(n)]))
        grams.update(g)
        total += len(g)
    return len(grams) / total if total else 0.0


def spread(emb, records: list[dict]) -> float:
    x = emb.embed([r["messages"][0]["content"] + "\n" + response_of(r) for r in records])
    sims = x @ x.T
    n = len(x)
    return float(1.0 - (sims.sum() - n) / (n * (n - 1))) if n > 1 else 0.0


def rate(llm, records: list[dict]) -> tuple[float, float, int]:
    from purgemix.rating.ds2 import rate_conversations

    res = rate_conversations(llm, [r["messages"] for r in records])
    scores = [r.score for r in res if r.ok]
    return (float(np.mean(scores)) if scores else float("nan"),
            float(np.mean([s >= 4 for s in scores])) if scores else float("nan"), len(scores))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("overrides", nargs="*", help="recipe overrides KEY=VALUE")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--recipe", default="quick")
    ap.add_argument("--rate", type=int, default=40, help="records rated per side")
    ap.add_argument("--out", type=Path, default=Path(".bench/mix_quality"))
    args = ap.parse_args()
    if not args.data.exists():
        print(f"no data at {args.data}; pass --data")
        return 0
    os.environ.setdefault("PURGEMIX_NO_PROGRESS", "1")
    from purgemix.models import load_embedder, load_llm
    from purgemix.recipe.build import build_pipeline
    from purgemix.recipe.load import load_recipe

    recipe = load_recipe(args.recipe, [*args.overrides, f"output.path={args.out / 'out.jsonl'}", f"limit={args.limit}"])
    recipe["inputs"] = [str(args.data)]
    pipe = build_pipeline(recipe, run_dir=str(args.out / "run"))
    # record what the run sends to the backend (cache misses), to replay it on a bare backend below
    gen = next(s.llm for s in pipe.stages if s.name in ("fuse", "distil"))
    sent: list[tuple[list, object]] = []
    backend_generate = gen.inner.generate

    @functools.wraps(backend_generate)  # keeps the signature, so the cache calls it as it would the backend
    def recording(conversations, params, *a, **kw):
        sent.append((list(conversations), params))
        return backend_generate(conversations, params, *a, **kw)

    gen.inner.generate = recording
    t0 = time.perf_counter()
    pipe.execute()
    run_seconds = time.perf_counter() - t0
    usage = gen.stats.as_dict()

    inputs = read_records(args.data)[: args.limit]
    outputs = [orjson.loads(line) for line in (args.out / "out.jsonl").read_bytes().splitlines()]
    rng = random.Random(0)
    sample_in = rng.sample(inputs, min(args.rate, len(inputs)))
    sample_out = rng.sample(outputs, min(args.rate, len(outputs)))
    rater_spec = recipe["models"].get("rater") or recipe["models"]["generator"]
    rater = load_llm(rater_spec)
    emb = load_embedder(recipe["models"]["embedder"])

    # bare loop: the same backend without the cache or the pipeline, on exactly the requests the run sent
    bare_tps, bare_tokens, bare_seconds = float("nan"), 0, 0.0
    if sent:
        bare = load_llm(recipe["models"]["generator"], cache=False)
        for conversations, params in sent:
            tb = time.perf_counter()
            res = bare.generate(conversations, params)
            bare_seconds += time.perf_counter() - tb
            bare_tokens += sum(g.tokens_out for g in res)
        bare_tps = bare_tokens / bare_seconds if bare_seconds else float("nan")
    rows = []
    # distinct-n falls as a corpus grows, so both sides are measured on samples of the same size
    k = min(len(inputs), len(outputs))
    for name, recs, all_recs in (("inputs", sample_in, inputs), ("outputs", sample_out, outputs)):
        mean, share, parsed = rate(rater, recs)
        texts = [response_of(r) for r in random.Random(1).sample(all_recs, k)]
        rows.append((name, len(all_recs), mean, share, parsed, distinct_n(texts, 1), distinct_n(texts, 2),
                     spread(emb, recs)))
    print(f"recipe {recipe['name']}, {args.limit} input records, run {run_seconds:.0f}s; rater {rater_spec}")
    print(f"{'':8} {'records':>8} {'rater mean':>10} {'>= HQ cut':>9} {'parsed':>7} {'distinct-1':>10} "
          f"{'distinct-2':>10} {'emb spread':>10}")
    for name, n, mean, share, parsed, d1, d2, sp in rows:
        print(f"{name:8} {n:>8} {mean:>10.2f} {share:>9.2f} {parsed:>7} {d1:>10.3f} {d2:>10.3f} {sp:>10.3f}")
    run_tps = usage["tokens_out"] / usage["seconds"] if usage.get("seconds") else float("nan")
    print(f"generation: run {run_tps:.1f} tokens/s ({usage['tokens_out']} tokens in {usage['seconds']:.0f}s of "
          f"generate calls, {usage['cache_hits']} cache hits), bare backend on the same {len(sent)} batches "
          f"{bare_tps:.1f} tokens/s ({bare_tokens} tokens in {bare_seconds:.0f}s), ratio {run_tps / bare_tps:.2f}")
    print(f"whole run: {usage['tokens_out'] / run_seconds:.1f} tokens out per second of wall time "
          f"({run_seconds:.0f}s: purge, scoring, clustering, checks and generation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
