"""LLM throughput of purgemix's backends against bare alternatives, in one run.

(a) embedded: ``load_llm(MODEL)`` (llama.cpp backend + SQLite cache, all misses) versus a bare loop
    of ``Llama.create_chat_completion`` over the same engine and prompts: tokens/s and overhead.
(b) HTTP: purgemix's async client against a local llama.cpp server on 127.0.0.1 (started here with
    ``python -m llama_cpp.server``) at concurrency C, versus plain sequential requests (httpx), and
    versus the best available alternative client (distilabel, curator) at the same concurrency when
    one is installed; otherwise the ``openai`` async client with a semaphore when installed. Also
    distilabel's ``OpenAILLM.generate`` on the same prompts, run in distilabel's own environment
    (``--distilabel-python``; it sends the whole batch at once, its own default).
(c) HTTP against the dummy server (fixed 50 ms latency per request): client overhead and the gain
    from concurrency with no model in the way.

    python benchmarks/llm_throughput.py [--model qwen2.5-0.5b] [--prompts 12] [--max-tokens 48]
                                        [--concurrency 4] [--skip-server] [--distilabel-python PY]

Prints tokens/s and the ratios. Greedy decoding, the same prompts everywhere; caches go to a
temporary folder so nothing is served from a previous run.
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


def bench_embedded(model: str, n: int, max_tokens: int, rounds: int = 4) -> dict:
    from purgemix.models import GenerationParams, load_llm

    params = GenerationParams(temperature=0.0, max_tokens=max_tokens, seed=0)
    ours_llm = load_llm(model, cache_path=os.path.join(tempfile.mkdtemp(), "c.sqlite"), n_ctx=1024)
    engine = ours_llm.inner.llm  # the same llama.cpp engine
    convs = [conv(i) for i in range(n)]
    engine.create_chat_completion(messages=convs[0], max_tokens=4, temperature=0.0)  # warm-up
    res = {"bare_tok_s": [], "ours_tok_s": []}

    def bare_run():
        t0 = time.perf_counter()
        toks = 0
        for c in convs:
            out = engine.create_chat_completion(messages=c, temperature=0.0, top_p=1.0, max_tokens=max_tokens, seed=0)
            toks += out["usage"]["completion_tokens"]
        res["bare_tok_s"].append(toks / (time.perf_counter() - t0))

    def ours_run(r):
        ours_llm.store = type(ours_llm.store)(os.path.join(tempfile.mkdtemp(), f"c{r}.sqlite"))  # all misses
        t0 = time.perf_counter()
        gens = ours_llm.generate(convs, params)
        assert not any(g.cached or g.error for g in gens)
        res["ours_tok_s"].append(sum(g.tokens_out for g in gens) / (time.perf_counter() - t0))

    for r in range(rounds):  # alternate the order so drifting machine load hits both sides
        if r % 2 == 0:
            bare_run()
            ours_run(r)
        else:
            ours_run(r)
            bare_run()
    print(json.dumps({"embedded_rounds": {k: [round(v, 2) for v in vals] for k, vals in res.items()}}), flush=True)
    import statistics

    bare, ours = statistics.median(res["bare_tok_s"]), statistics.median(res["ours_tok_s"])
    return {"model": model, "prompts": n, "max_tokens": max_tokens, "bare_tok_s": round(bare, 2),
            "purgemix_tok_s": round(ours, 2), "ratio_purgemix_over_bare": round(ours / bare, 3),
            "overhead_pct": round(100 * (1 - ours / bare), 1)}


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _wait(url: str, proc: subprocess.Popen, timeout: float = 180) -> None:
    import httpx

    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError("llama.cpp server exited")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return
        except Exception:
            pass
        time.sleep(1)
    raise RuntimeError("llama.cpp server did not start")


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
    from purgemix.models.registry import gguf_path

    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    log = open(os.path.join(tempfile.mkdtemp(), "server.log"), "wb")  # a pipe would fill up and block it
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path(model)), "--host",
                             "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--model_alias", "m"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait(url, proc)
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
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


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
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--skip-server", action="store_true")
    ap.add_argument("--distilabel-python", default=None,
                    help="python of an environment with distilabel installed (default: this one)")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds of the embedded comparison")
    args = ap.parse_args()
    report = {}
    try:
        report["embedded"] = bench_embedded(args.model, args.prompts, args.max_tokens, args.rounds)
    except Exception as e:
        report["embedded"] = {"skipped": f"{type(e).__name__}: {e}"}
    print(json.dumps({"embedded": report["embedded"]}), flush=True)
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
    print("\nratios:")
    if "ratio_purgemix_over_bare" in e:
        print(f"  embedded   purgemix / bare llama.cpp loop : {e['ratio_purgemix_over_bare']}  "
              f"(overhead {e['overhead_pct']}%)")
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
