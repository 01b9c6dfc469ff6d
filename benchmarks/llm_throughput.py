"""LLM throughput of purgemix's backends against the alternatives, in one run.

(a) embedded parallel decoding: ``load_llm(MODEL)`` (llama.cpp's server in-process, ``--slots``
    sequences decoded together) versus the same engine with one slot, the one-sequence path; all
    cache misses, alternating rounds, medians.
(h) with ``--hf``: the transformers backend, one sequence versus ``--hf-batch`` decoded together.
(b) HTTP: purgemix's async client against that llama.cpp server on 127.0.0.1 at concurrency C
    (= its slots), versus plain sequential requests (httpx), and versus the best available
    alternative client (the ``openai`` async client with a semaphore, what distilabel and curator
    wrap) at the same concurrency when installed; distilabel's ``OpenAILLM.generate`` on the same
    prompts, run in distilabel's own environment (``--distilabel-python``).
(c) HTTP against the dummy server (fixed 50 ms latency per request): client overhead and the gain
    from concurrency with no model in the way.

    python benchmarks/llm_throughput.py [--model qwen2.5-0.5b] [--prompts 16] [--max-tokens 128]
                                        [--slots 8] [--concurrency 4] [--hf] [--skip-server]
                                        [--distilabel-python PY]

Prints tokens/s and the ratios, and the machine's load. Greedy decoding, the same prompts everywhere;
nothing is served from a cache.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

PROMPTS = [
    "Give three tips for staying healthy.", "What are the three primary colors?", "Describe the structure of an atom.",
    "How can we reduce air pollution?", "Explain why the sky is blue.", "Write a haiku about autumn.",
    "What is the capital of France and why is it famous?", "Summarise the plot of Romeo and Juliet.",
    "Explain recursion to a child.", "List five fruits that are rich in vitamin C.",
    "How does a refrigerator work?", "What is the difference between weather and climate?",
    "Name three famous painters and one work by each.", "Why do we have seasons?",
    "Write a short motivational sentence.", "Explain what a prime number is.",
]


def conv(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": PROMPTS[i % len(PROMPTS)] + ("" if i < len(PROMPTS) else f" (#{i})")}]


def bench_embedded(model: str, n: int, max_tokens: int, rounds: int = 4, slots: int = 8) -> dict:
    """Parallel decoding against the one-sequence path of the same engine: ``load_llm(model)`` with
    ``slots`` parallel sequences versus one slot, all cache misses, alternating rounds."""
    import statistics

    from purgemix.models import GenerationParams, load_llm

    params = GenerationParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    convs = [conv(i) for i in range(n)]
    engines = {"one_slot": load_llm(model, cache=False, n_ctx=1024, slots=1),
               "parallel": load_llm(model, cache=False, n_ctx=1024, slots=slots)}
    res: dict[str, list[float]] = {k: [] for k in engines}

    def run(key):
        llm = engines[key]
        t0 = time.perf_counter()
        gens = llm.generate(convs, params)
        assert not any(g.error for g in gens), [g.error for g in gens if g.error][:3]
        res[key].append(sum(g.tokens_out for g in gens) / (time.perf_counter() - t0))

    for llm in engines.values():
        llm.generate(convs[:1], GenerationParams(temperature=0.0, max_tokens=4))  # load + warm-up
    for r in range(rounds):  # alternate the order so drifting machine load hits both sides
        for key in (("one_slot", "parallel") if r % 2 == 0 else ("parallel", "one_slot")):
            run(key)
    for llm in engines.values():
        llm.close()
    print(json.dumps({"embedded_rounds": {k: [round(v, 2) for v in vals] for k, vals in res.items()}}), flush=True)
    one, par = statistics.median(res["one_slot"]), statistics.median(res["parallel"])
    return {"model": model, "prompts": n, "max_tokens": max_tokens, "slots": slots, "one_slot_tok_s": round(one, 2),
            "parallel_tok_s": round(par, 2), "ratio_parallel_over_one": round(par / one, 3)}


def bench_hf(model: str, n: int, max_tokens: int, batch: int = 8) -> dict:
    """The transformers backend (``hf:``): one sequence at a time versus ``batch`` decoded together."""
    from purgemix.models import GenerationParams, load_llm

    params = GenerationParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    convs = [conv(i) for i in range(n)]
    out = {"model": f"hf:{model}", "prompts": n, "max_tokens": max_tokens, "batch": batch}
    for key, bs in (("one_tok_s", 1), ("batched_tok_s", batch)):
        llm = load_llm(f"hf:{model}", cache=False, batch_size=bs)
        llm.generate(convs[:1], GenerationParams(temperature=0.0, max_tokens=4))
        t0 = time.perf_counter()
        gens = llm.generate(convs, params)
        out[key] = round(sum(g.tokens_out for g in gens) / (time.perf_counter() - t0), 2)
    out["ratio_batched_over_one"] = round(out["batched_tok_s"] / out["one_tok_s"], 3)
    return out


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _sequential(url: str, model: str, convs, max_tokens: int) -> tuple[int, float]:
    import httpx

    toks = 0
    t0 = time.perf_counter()
    with httpx.Client(timeout=300) as c:
        for m in convs:
            r = c.post(url + "/chat/completions", json={"model": model, "messages": m, "temperature": 0.0,
                                                       "max_tokens": max_tokens, "seed": 0})
            toks += r.json()["usage"]["completion_tokens"]
    return toks, time.perf_counter() - t0


def _alternative(url: str, model: str, convs, max_tokens: int, concurrency: int) -> tuple[str, int, float] | None:
    try:
        import openai  # noqa: F401  (distilabel and curator are built on it)
    except ImportError:
        return None
    try:
        import distilabel  # noqa: F401
        name = "distilabel-openai-client"
    except ImportError:
        name = "openai-async-client"
    from openai import AsyncOpenAI

    async def run():
        client = AsyncOpenAI(base_url=url, api_key="none", max_retries=3)
        sem = asyncio.Semaphore(concurrency)

        async def one(m):
            async with sem:
                r = await client.chat.completions.create(model=model, messages=m, temperature=0.0,
                                                         max_tokens=max_tokens, seed=0)
                return r.usage.completion_tokens

        t0 = time.perf_counter()
        toks = sum(await asyncio.gather(*[one(m) for m in convs]))
        return toks, time.perf_counter() - t0

    toks, secs = asyncio.run(run())
    return name, toks, secs


DISTILABEL_SCRIPT = r"""
import json, sys, time
from distilabel.models.llms import OpenAILLM
url, model, max_tokens, convs = sys.argv[1], sys.argv[2], int(sys.argv[3]), json.loads(sys.stdin.read())
llm = OpenAILLM(model=model, base_url=url, api_key="none", max_retries=3)
llm.load()
t0 = time.perf_counter()
out = llm.generate(inputs=convs, num_generations=1, max_new_tokens=max_tokens, temperature=0.0)
secs = time.perf_counter() - t0
toks = 0
for o in out:
    stats = o.get("statistics", {}) if isinstance(o, dict) else {}
    toks += sum(stats.get("output_tokens") or [0])
print(json.dumps({"tokens": toks, "seconds": secs}))
"""


def _distilabel(python: str, url: str, model: str, convs, max_tokens: int) -> tuple[str, int, float] | None:
    """distilabel's OpenAILLM (in its own environment: its dependencies differ from ours)."""
    probe = subprocess.run([python, "-c", "import distilabel"], capture_output=True)
    if probe.returncode != 0:
        return None
    r = subprocess.run([python, "-c", DISTILABEL_SCRIPT, url, model, str(max_tokens)], input=json.dumps(convs),
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        sys.stderr.write(r.stderr[-2000:])
        return None
    d = json.loads(r.stdout.strip().splitlines()[-1])
    return "distilabel OpenAILLM", d["tokens"], d["seconds"]


def bench_server(model: str, n: int, max_tokens: int, concurrency: int, distilabel_python: str | None = None) -> dict:
    from purgemix.models import GenerationParams, load_llm
    from purgemix.models.llamacpp import LlamaCppServer
    from purgemix.models.registry import gguf_path

    server = LlamaCppServer(gguf_path(model), n_ctx=1024, slots=concurrency).start()  # 127.0.0.1, parallel slots
    url = server.url
    try:
        convs = [conv(i) for i in range(n)]
        _sequential(url, "m", convs[:1], 4)  # warm-up
        seq_toks, seq_s = _sequential(url, "m", convs, max_tokens)
        llm = load_llm(f"openai:{url}#m", cache_path=os.path.join(tempfile.mkdtemp(), "c.sqlite"),
                       concurrency=concurrency)
        t0 = time.perf_counter()
        gens = llm.generate(convs, GenerationParams(temperature=0.0, max_tokens=max_tokens, seed=0))
        ours_s = time.perf_counter() - t0
        ours_toks = sum(g.tokens_out for g in gens)
        out = {"prompts": n, "concurrency": concurrency, "sequential_tok_s": round(seq_toks / seq_s, 2),
               "purgemix_tok_s": round(ours_toks / ours_s, 2),
               "ratio_purgemix_over_sequential": round((ours_toks / ours_s) / (seq_toks / seq_s), 3),
               "errors": sum(g.error is not None for g in gens)}
        alt = _alternative(url, "m", convs, max_tokens, concurrency)
        if alt:
            name, toks, secs = alt
            out["alternative"] = name
            out["alternative_tok_s"] = round(toks / secs, 2)
            out["ratio_purgemix_over_alternative"] = round((ours_toks / ours_s) / (toks / secs), 3)
        else:
            out["alternative"] = "none installed (distilabel/curator/openai)"
        dl = _distilabel(distilabel_python or sys.executable, url, "m", convs, max_tokens)
        if dl:
            name, toks, secs = dl
            out["distilabel_tok_s"] = round(toks / secs, 2)
            out["ratio_purgemix_over_distilabel"] = round((ours_toks / ours_s) / (toks / secs), 3)
        else:
            out["distilabel"] = "not importable (pass --distilabel-python PATH to its environment's python)"
        return out
    finally:
        server.close()


def bench_dummy(n: int = 200, concurrency: int = 16) -> dict:
    import httpx

    from purgemix.models import GenerationParams, load_llm
    from purgemix.testing.dummy_server import DummyServer

    with DummyServer(delay=0.05) as srv:
        convs = [conv(i) for i in range(n)]
        t0 = time.perf_counter()
        with httpx.Client() as c:
            for m in convs:
                c.post(srv.url + "/chat/completions", json={"model": "d", "messages": m}).json()
        seq = time.perf_counter() - t0
        llm = load_llm(f"openai:{srv.url}#d", cache_path=os.path.join(tempfile.mkdtemp(), "c.sqlite"),
                       concurrency=concurrency)
        t0 = time.perf_counter()
        gens = llm.generate(convs, GenerationParams())
        ours = time.perf_counter() - t0
    return {"requests": n, "latency_s": 0.05, "concurrency": concurrency, "sequential_req_s": round(n / seq, 1),
            "purgemix_req_s": round(n / ours, 1), "ratio": round(seq / ours, 2),
            "ideal_ratio": concurrency, "errors": sum(not g.ok for g in gens)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-0.5b")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--slots", type=int, default=8, help="parallel sequences of the embedded comparison")
    ap.add_argument("--hf", action="store_true", help="also the transformers backend, one vs batched")
    ap.add_argument("--hf-batch", type=int, default=8)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--distilabel-python", default=None,
                    help="python of an environment with distilabel installed (default: this one)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds of the embedded comparison")
    args = ap.parse_args()
    report = {"load_before": os.getloadavg()[0], "cpus": os.cpu_count()}
    try:
        report["embedded"] = bench_embedded(args.model, args.prompts, args.max_tokens, args.rounds, args.slots)
    except Exception as e:
        report["embedded"] = {"skipped": f"{type(e).__name__}: {e}"}
    print(json.dumps({"embedded": report["embedded"]}), flush=True)
    if args.hf:
        try:
            report["hf"] = bench_hf(args.model, args.prompts, args.max_tokens, args.hf_batch)
        except Exception as e:
            report["hf"] = {"skipped": f"{type(e).__name__}: {e}"}
        print(json.dumps({"hf": report["hf"]}), flush=True)
    if not args.skip_server:
        try:
            report["http_llamacpp_server"] = bench_server(args.model, args.prompts, args.max_tokens, args.concurrency,
                                                          args.distilabel_python)
        except Exception as e:
            report["http_llamacpp_server"] = {"skipped": f"{type(e).__name__}: {e}"}
        print(json.dumps({"http_llamacpp_server": report["http_llamacpp_server"]}), flush=True)
    report["http_dummy"] = bench_dummy()
    print(json.dumps({"http_dummy": report["http_dummy"]}), flush=True)
    e, s, d = report["embedded"], report.get("http_llamacpp_server", {}), report["http_dummy"]
    print(f"\nmachine: {report['cpus']} CPUs, load average {report['load_before']:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    print("ratios:")
    if "ratio_parallel_over_one" in e:
        print(f"  embedded   {e['slots']} slots / one slot (llama.cpp) : {e['ratio_parallel_over_one']}  "
              f"({e['parallel_tok_s']} vs {e['one_slot_tok_s']} tok/s)")
    h = report.get("hf", {})
    if "ratio_batched_over_one" in h:
        print(f"  hf         batch {h['batch']} / one sequence : {h['ratio_batched_over_one']}  "
              f"({h['batched_tok_s']} vs {h['one_tok_s']} tok/s)")
    if "ratio_purgemix_over_sequential" in s:
        print(f"  http       purgemix / sequential requests : {s['ratio_purgemix_over_sequential']}  "
              f"(concurrency {s['concurrency']})")
    if "ratio_purgemix_over_alternative" in s:
        print(f"  http       purgemix / {s['alternative']} : {s['ratio_purgemix_over_alternative']}")
    if "ratio_purgemix_over_distilabel" in s:
        print(f"  http       purgemix / distilabel OpenAILLM : {s['ratio_purgemix_over_distilabel']}")
    print(f"  dummy      purgemix / sequential requests : {d['ratio']}  (50 ms latency, concurrency {d['concurrency']})")


if __name__ == "__main__":
    main()
