"""The grader's own throughput measurement against the vLLM simulator's configured truth.

    .venv/bin/python benchmarks/bench_throughput_sim.py [--concurrency 1 4 8 16] [--tokens 12]
                                                        [--time-scale 0.5] [--batch 8] [--rounds 1]

Starts the vLLM-style simulator, then for each concurrency runs the reference solution's
``bench.measure`` in a separate client process (as student code runs in the worker) and prints:

1. measured / configured-truth ratios (target: within 1 %) for TTFT p50, TPOT, ITL p50, E2E p50 and
   output tokens/s, for two measurements of the same requests:
   ``client`` — reference/inference_lab/bench.py's numbers;
   ``log``    — grading/judges/throughput.py's ``compute_metrics`` of the simulator's request log
                (what the ``throughput`` checkpoint judges students against);
   The configured truth is what the simulator's documented pacing rule predicts (catalogue.toml,
   engine.py: first token ``ttft_s·load`` after arrival, each next ``itl_s·load`` later, ``load =
   max(1, running/batch_size)``), replayed event by event on the requests' logged arrival times —
   an independent prediction of every chunk's time, not a reading of them; the wall time runs from
   the first arrival to the last predicted token.
2. the concurrency-scaling table (tokens/s, requests/s, TTFT, TPOT, E2E) as measured.

A report, not a pass/fail check (numbers depend on the machine's load).
"""

from __future__ import annotations

import argparse
import heapq
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from grading.judges.throughput import Timeline, compute_metrics, timeline_of  # noqa: E402
from grading.sims.openai_server import create  # noqa: E402

KEYS = ("ttft_p50_s", "tpot_mean_s", "itl_p50_s", "e2e_p50_s", "output_tokens_per_s")
PROMPT = "Request {i}: explain continuous batching in vLLM."
CLIENT = """
import json, sys
sys.path.insert(0, {ref!r})
from inference_lab.bench import measure
args = json.loads(sys.argv[1])
print(json.dumps(measure(args["url"], model=args["model"], prompts=args["prompts"], max_tokens=args["tokens"],
                         concurrency=args["c"])))
"""


def predict(arrivals: list[float], tokens: int, ttft: float, itl: float, batch: int) -> list[Timeline]:
    """Replay the pacing rule for requests arriving at ``arrivals`` (each generating ``tokens``)."""
    events: list[tuple[float, int, int]] = [(t, 0, i) for i, t in enumerate(arrivals)]   # (time, kind, id)
    heapq.heapify(events)
    chunks: dict[int, list[float]] = {i: [] for i in range(len(arrivals))}
    running = 0
    while events:
        now, kind, rid = heapq.heappop(events)
        if kind == 0:                            # arrival: running from now, its load sets the first delay
            running += 1
            heapq.heappush(events, (now + ttft * max(1.0, running / batch), 1, rid))
            continue
        chunks[rid].append(now)                  # a token due now; the next one is due a step later
        if len(chunks[rid]) < tokens:
            heapq.heappush(events, (now + itl * max(1.0, running / batch), 1, rid))
        else:
            running -= 1
    return [Timeline(start=arrivals[r], end=chunks[r][-1], chunk_times=tuple(chunks[r]), output_tokens=tokens)
            for r in range(len(arrivals))]


def ideal(concurrency: int, prompts: int, tokens: int, ttft: float, itl: float, batch: int) -> list[Timeline]:
    """The rule for a perfect client: ``concurrency`` slots, each sending its next prompt the moment its
    previous one ended (replayed wave by wave: every request of a wave lasts as long here)."""
    arrivals, out, t = [], [], 0.0
    while len(arrivals) < prompts:
        wave = [t] * min(concurrency, prompts - len(arrivals))
        arrivals += wave
        done = predict(wave, tokens, ttft, itl, batch)
        out += done
        t = max(tl.end for tl in done)
    return out


def run_client(url: str, model: str, concurrency: int, prompts: list[str], tokens: int) -> dict:
    args = json.dumps({"url": url, "model": model, "prompts": prompts, "tokens": tokens, "c": concurrency})
    out = subprocess.run([sys.executable, "-c", CLIENT.format(ref=str(ROOT / "reference")), args],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--tokens", type=int, default=12, help="max_tokens (replies have at least 12 tokens)")
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1, help="repeat each concurrency; medians are printed")
    args = parser.parse_args()
    server = create(tier="sim", seed=7).start()
    try:
        server.time_scale = args.time_scale
        server.set_behavior(batch_size=args.batch)
        truth_cfg = server.truth()
        ttft, itl = truth_cfg["ttft_s"], truth_cfg["itl_s"]
        print(f"vLLM simulator: TTFT {ttft * 1000:.1f} ms, ITL {itl * 1000:.1f} ms (time_scale {args.time_scale}), "
              f"batch_size {args.batch}, {args.tokens} tokens per request, client in its own process\n")
        rows = []
        for c in args.concurrency:
            n_prompts = max(4, 2 * c) if c <= args.batch else c
            prompts = [PROMPT.format(i=i) for i in range(n_prompts)]
            perfect = compute_metrics(ideal(c, n_prompts, args.tokens, ttft, itl, args.batch), concurrency=c)
            client_runs, log_runs, replays = [], [], []
            for _ in range(args.rounds):
                last = max((r.id for r in server.log.records()), default=0)
                client_runs.append(run_client(server.url + "/v1", server.model.name, c, prompts, args.tokens))
                time.sleep(0.05)
                recs = [r for r in server.log.records(id=lambda i: i > last) if r.path == "/v1/chat/completions"]
                log_runs.append(compute_metrics([timeline_of(r) for r in recs], concurrency=c))
                replays.append(compute_metrics(predict([r.t_start for r in recs], args.tokens, ttft, itl, args.batch)))
            client = {k: float(np.median([r[k] for r in client_runs])) for k in KEYS + ("requests_per_s",)}
            log = {k: float(np.median([r[k] for r in log_runs])) for k in KEYS}
            expected = {k: float(np.median([r[k] for r in replays])) for k in KEYS}
            rows.append((c, n_prompts, expected, client, log, perfect))
        print("measured / configured truth (1.000 = exact; target within 1 %)")
        print(f"{'conc':>4} {'reqs':>4}  {'source':6} " + " ".join(f"{k.removesuffix('_s'):>17}" for k in KEYS))
        for c, n, expected, client, log, _ in rows:
            for name, got in (("client", client), ("log", log)):
                ratios = " ".join(f"{got[k] / expected[k]:17.4f}" for k in KEYS)
                print(f"{c:>4} {n:>4}  {name:6} {ratios}")
        print("\nscaling (the client's numbers; in brackets the rule's truth for a perfect client: all slots busy)")
        print(f"{'conc':>4} {'tok/s':>16} {'req/s':>7} {'TTFT p50 ms':>18} {'TPOT ms':>16} {'E2E p50 ms':>18}")
        for c, n, _, client, _, expected in rows:
            print(f"{c:>4} {client['output_tokens_per_s']:7.1f} [{expected['output_tokens_per_s']:6.1f}] "
                  f"{client['requests_per_s']:7.2f} {client['ttft_p50_s'] * 1000:8.1f} [{expected['ttft_p50_s'] * 1000:7.1f}] "
                  f"{client['tpot_mean_s'] * 1000:6.1f} [{expected['tpot_mean_s'] * 1000:6.1f}] "
                  f"{client['e2e_p50_s'] * 1000:8.1f} [{expected['e2e_p50_s'] * 1000:7.1f}]")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
