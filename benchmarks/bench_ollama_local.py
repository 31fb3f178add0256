"""Tokens/s and TTFT of the real model (llama.cpp, SmolLM2-135M Q4_1) through the Ollama API (tier local).

    .venv/bin/python benchmarks/bench_ollama_local.py [--concurrency 1 4] [--rounds 5] [--tokens 64]
                                                      [--threads N]

Starts the ``local`` tier's Ollama server (grading/engines/llamacpp.py; needs
``scripts/install-engines.sh llamacpp``), loads the model once, then for each concurrency runs
``--rounds`` rounds of that many simultaneous streamed ``POST /api/chat`` requests (distinct prompts,
``num_predict`` = ``--tokens``, temperature 0) and prints medians over all requests of:

* TTFT — client side, request sent to the first chunk with content (queueing included);
* decode tok/s — the server's ``eval_count / (eval_duration / 1e9)`` per request (Ollama's figure);
* prompt eval — the server's ``prompt_eval_duration``;
* aggregate tok/s — all output tokens of a round / the round's wall time (median over rounds).

The engine runs one generation at a time (Ollama's NUM_PARALLEL=1), so at concurrency 4 the TTFT
grows with the queue while the aggregate rate stays that of one stream. A report, not a check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grading.services import ServiceNotAvailable  # noqa: E402
from grading.sims.ollama import create  # noqa: E402

TOPICS = ["rivers", "volcanoes", "bread", "bicycles", "comets", "owls", "glass", "chess", "tides", "maps",
          "bees", "clocks", "salt", "kites", "moss", "bridges", "lanterns", "coral", "deserts", "violins"]


def one_request(url: str, model: str, prompt: str, tokens: int, out: list[dict]) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": prompt}],
            "options": {"num_predict": tokens, "temperature": 0}}
    t0 = time.perf_counter()
    ttft = None
    final: dict = {}
    with httpx.stream("POST", url + "/api/chat", json=body, timeout=300) as resp:
        for line in resp.iter_lines():
            if not line:
                continue
            obj = json.loads(line)
            if ttft is None and (obj.get("message") or {}).get("content"):
                ttft = time.perf_counter() - t0
            if obj.get("done"):
                final = obj
    out.append({"ttft_s": ttft, "latency_s": time.perf_counter() - t0, "eval_count": final.get("eval_count", 0),
                "eval_duration_ns": final.get("eval_duration", 0),
                "prompt_eval_count": final.get("prompt_eval_count", 0),
                "prompt_eval_duration_ns": final.get("prompt_eval_duration", 0)})


def run_round(url: str, model: str, concurrency: int, tokens: int, offset: int) -> tuple[list[dict], float]:
    results: list[dict] = []
    threads = [threading.Thread(target=one_request, args=(
        url, model, f"Write a short paragraph about {TOPICS[(offset + i) % len(TOPICS)]}.", tokens, results))
        for i in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None,
                        help="llama.cpp threads (default: half the usable CPUs, 1 to 4, as the local tier uses)")
    args = parser.parse_args()
    try:
        server = create(tier="local", seed=1)
    except ServiceNotAvailable as exc:
        print(f"no local tier here: {exc}", file=sys.stderr)
        return 2
    if args.threads:
        server.engine.n_threads = args.threads
    server.start()
    try:
        model = server.chat_model
        t0 = time.perf_counter()
        httpx.post(server.url + "/api/generate", json={"model": model}, timeout=120)   # load, like `ollama run`
        print(f"model {model} ({server.engine.model_path.name}), llama.cpp threads {server.engine.n_threads}, "
              f"load {time.perf_counter() - t0:.2f}s")
        warm: list[dict] = []
        one_request(server.url, model, "Say hello.", 8, warm)                        # warm-up, not counted
        print(f"{'conc':>4} {'rounds':>6} {'TTFT p50':>10} {'TTFT max':>10} {'decode tok/s':>13} "
              f"{'prompt eval':>12} {'aggregate tok/s':>16}")
        for conc in args.concurrency:
            reqs: list[dict] = []
            aggregate: list[float] = []
            for r in range(args.rounds):
                res, wall = run_round(server.url, model, conc, args.tokens, offset=r * conc)
                reqs += res
                aggregate.append(sum(x["eval_count"] for x in res) / wall)
            ttfts = [x["ttft_s"] for x in reqs if x["ttft_s"] is not None]
            rates = [x["eval_count"] / (x["eval_duration_ns"] / 1e9) for x in reqs if x["eval_duration_ns"]]
            prompt = [x["prompt_eval_duration_ns"] / 1e6 for x in reqs]
            print(f"{conc:>4} {args.rounds:>6} {statistics.median(ttfts) * 1000:>8.1f}ms {max(ttfts) * 1000:>8.1f}ms "
                  f"{statistics.median(rates):>13.1f} {statistics.median(prompt):>10.1f}ms "
                  f"{statistics.median(aggregate):>16.1f}")
        n_prompt = statistics.median(x["prompt_eval_count"] for x in reqs)
        print(f"(prompts ~{n_prompt:.0f} tokens with the chat template; {args.tokens} output tokens per request)")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
