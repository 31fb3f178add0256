"""Pacing of the HF simulator under concurrent streams: configured vs observed TTFT and ITL.

    .venv/bin/python benchmarks/bench_hf_sim.py [--streams 32] [--tokens 64] [--provider together]
                                                [--time-scale 0.05] [--ttft 0.3] [--itl 0.012]

Starts the simulator, gives ``provider`` constant TTFT/ITL (catalogue seconds, multiplied by the
time scale), and runs ``--streams`` concurrent streamed chat requests from a separate client process
(as student code runs in the worker). For every request it compares the plan the simulator logged
(``extra["planned"]``: TTFT and each token's deadline) with what happened, on both sides:

- server: when the simulator wrote the first content chunk / each chunk (the log's timestamps);
- client: when the chunk arrived at the client (same monotonic clock, another process); the
  client's TTFT error is also split into request delivery (connection set-up, client overhead:
  before the simulator sees the request) and the rest.

Prints the configured and observed means and the p50/p99/max absolute errors in milliseconds. A
report, not a pass/fail check (numbers depend on the machine's load).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time

import numpy as np

TOKEN = "hf_" + "b" * 34
MODEL = "meta-llama/Llama-3.3-70B-Instruct"


async def _client(url: str, path: str, model: str, streams: int, tokens: int) -> list[dict]:
    import httpx

    limits = httpx.Limits(max_connections=streams + 4, max_keepalive_connections=streams + 4)
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        await client.get(url + "/v1/models")  # warm-up: the client's own first-request costs stay out
        async def one(i: int) -> dict:
            body = {"model": model, "stream": True, "max_tokens": tokens,
                    "messages": [{"role": "user", "content": f"request {i}: explain pacing"}]}
            sent = time.monotonic()
            arrivals = []
            async with client.stream("POST", url + path, json=body,
                                     headers={"Authorization": f"Bearer {TOKEN}", "X-Bench-Id": str(i)}) as resp:
                async for line in resp.aiter_lines():
                    if not line.startswith("data:") or line.strip() == "data: [DONE]":
                        continue
                    chunk = json.loads(line[5:])
                    choices = chunk.get("choices") or []
                    if choices and (choices[0].get("delta") or {}).get("content"):
                        arrivals.append(time.monotonic())
            return {"id": i, "sent": sent, "arrivals": arrivals}

        return list(await asyncio.gather(*(one(i) for i in range(streams))))


def _stats(errors_s: list[float]) -> str:
    ms = np.abs(np.asarray(errors_s)) * 1000
    return (f"p50 {np.percentile(ms, 50):6.2f} ms   p99 {np.percentile(ms, 99):6.2f} ms   "
            f"max {ms.max():6.2f} ms   (n={len(ms)})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--provider", default="together")
    parser.add_argument("--time-scale", type=float, default=None, help="default: the catalogue's")
    parser.add_argument("--ttft", type=float, default=None, help="catalogue seconds (default: the catalogue mean)")
    parser.add_argument("--itl", type=float, default=None, help="catalogue seconds (default: the catalogue mean)")
    parser.add_argument("--client", nargs=3, metavar=("URL", "PATH", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        out = asyncio.run(_client(*args.client, args.streams, args.tokens))
        print(json.dumps(out))
        return 0

    from grading.sims.hf import create

    with create(tier="sim", seed=1, time_scale=args.time_scale) as hf:
        b = hf.behavior(args.provider)
        ttft = args.ttft if args.ttft is not None else b.ttft.mean_s
        itl = args.itl if args.itl is not None else b.itl.mean_s
        hf.set_behavior(args.provider, ttft={"kind": "constant", "mean_s": ttft},
                        itl={"kind": "constant", "mean_s": itl})
        entry = hf.catalogue["models"][MODEL]["providers"][args.provider]
        route = hf.catalogue["providers"][args.provider]["chat_routes"][0].replace("{model}", MODEL)
        path, model = f"/{args.provider}{route}", entry["providerId"]
        proc = subprocess.run([sys.executable, __file__, "--streams", str(args.streams), "--tokens",
                               str(args.tokens), "--client", hf.url, path, model],
                              capture_output=True, text=True, check=True)
        client = {c["id"]: c for c in json.loads(proc.stdout)}
        records = {int(r.headers["x-bench-id"]): r for r in hf.log.records(path=path)}
        scale = hf.time_scale

    s_ttft, s_itl, c_ttft, c_itl, obs_ttft, obs_itl, c_srv, delivery = [], [], [], [], [], [], [], []
    for i, rec in records.items():
        plan = rec.extra["planned"]
        deadlines, written = plan["deadlines"], rec.extra["content_times"]
        planned_gaps = np.diff(deadlines)
        s_ttft.append((rec.t_first_content - rec.t_start) - plan["ttft_s"])
        s_itl.extend(np.diff(written) - planned_gaps)
        arrivals = client[i]["arrivals"]
        c_first = arrivals[0] - client[i]["sent"]
        c_ttft.append(c_first - plan["ttft_s"])
        c_srv.append((arrivals[0] - rec.t_start) - plan["ttft_s"])
        delivery.append(rec.t_start - client[i]["sent"])
        c_itl.extend(np.diff(arrivals) - planned_gaps)
        obs_ttft.append(c_first)
        obs_itl.extend(np.diff(arrivals))
    print(f"HF simulator pacing: {len(records)} concurrent streams x {args.tokens} tokens, provider "
          f"{args.provider}, time_scale {scale}")
    print(f"configured: TTFT {ttft * scale * 1000:.2f} ms, ITL {itl * scale * 1000:.3f} ms")
    print(f"observed (client means): TTFT {statistics.mean(obs_ttft) * 1000:.2f} ms, "
          f"ITL {statistics.mean(obs_itl) * 1000:.3f} ms")
    print(f"server TTFT error  {_stats(s_ttft)}")
    print(f"server ITL error   {_stats(s_itl)}")
    print(f"client TTFT error  {_stats(c_ttft)}")
    print(f"  of which request delivery (client send -> server arrival)  {_stats(delivery)}")
    print(f"client TTFT error from server arrival  {_stats(c_srv)}")
    print(f"client ITL error   {_stats(c_itl)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
