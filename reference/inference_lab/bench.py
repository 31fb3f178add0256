"""Streaming benchmark: TTFT, TPOT, ITL, end-to-end latency and throughput.

Definitions follow vLLM's ``vllm bench serve`` (``vllm/benchmarks/serve.py``, ``calculate_metrics``):

- TTFT: request sent -> first streamed chunk that carries content.
- ITL: the gaps between consecutive content chunks, pooled over all requests.
- E2E: request sent -> last content chunk.
- TPOT: ``(e2e - ttft) / (output_tokens - 1)`` for requests with more than one output token.
- Output tokens: what the server reports (``usage.completion_tokens`` for OpenAI streams with
  ``stream_options.include_usage``; ``eval_count`` of Ollama's final object) - never characters
  or chunks (a chunk may hold several tokens).
- ``duration_s``: from the first request sent to the last request finished;
  ``output_tokens_per_s = output_tokens / duration_s``; ``requests_per_s = completed / duration_s``.
- Statistics over successful requests only (``None`` when there are none); percentiles by
  linear interpolation (numpy's default).

Concurrency: a pool of ``concurrency`` threads, each taking the next prompt as soon as it is done
(all requests are ready at once, like ``vllm bench serve --max-concurrency N`` at an infinite
request rate). Synchronous, safe to call inside a running event loop (Jupyter).
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

__all__ = ["measure"]

_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 600.0


@dataclass
class _Request:
    ok: bool = False
    start: float = 0.0
    end: float = 0.0
    ttft: float | None = None
    last_content: float | None = None
    itl: list = field(default_factory=list)
    output_tokens: int | None = None
    input_tokens: int | None = None
    content_chunks: int = 0
    text: str = ""
    error: str | None = None
    connect_error: bool = False


def _endpoint(base_url: str, api: str) -> str:
    base = str(base_url).rstrip("/")
    if api == "ollama":
        for suffix in ("/api/chat", "/v1"):
            if base.endswith(suffix):
                base = base[: -len(suffix)]
        return base + "/api/chat"
    if base.endswith("/chat/completions"):
        return base
    if base.endswith("/v1"):
        return base + "/chat/completions"
    return base + "/v1/chat/completions"


def _messages(prompt):
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    return [dict(m) for m in prompt]


def _content_of(choice: dict) -> str:
    delta = choice.get("delta") or {}
    return delta.get("content") or choice.get("text") or delta.get("reasoning_content") or ""


def _one_openai(client, url, model, prompt, max_tokens, rec: _Request) -> None:
    payload = {
        "model": model,
        "messages": _messages(prompt),
        "max_tokens": max_tokens,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    rec.start = time.perf_counter()
    with client.stream("POST", url, json=payload) as response:
        if response.status_code != 200:
            body = response.read().decode("utf-8", "replace")
            raise RuntimeError(f"HTTP {response.status_code}: {body[:200]}")
        parts = []
        for line in response.iter_lines():
            now = time.perf_counter()
            if not line or not line.startswith("data:"):
                continue  # blank separators, comments (":"), "event:"/"id:" fields
            data = line[5:].strip()
            if data == "[DONE]":
                break
            obj = json.loads(data)
            if not isinstance(obj, dict):
                raise ValueError(f"unexpected stream item: {data[:100]}")
            if obj.get("error"):
                raise RuntimeError(f"error in stream: {str(obj['error'])[:200]}")
            usage = obj.get("usage")
            if isinstance(usage, dict):
                if usage.get("completion_tokens") is not None:
                    rec.output_tokens = int(usage["completion_tokens"])
                if usage.get("prompt_tokens") is not None:
                    rec.input_tokens = int(usage["prompt_tokens"])
            choices = obj.get("choices") or []
            content = "".join(_content_of(c) for c in choices if isinstance(c, dict))
            if content:
                if rec.ttft is None:
                    rec.ttft = now - rec.start
                else:
                    rec.itl.append(now - rec.last_content)
                rec.last_content = now
                rec.content_chunks += 1
                parts.append(content)
        rec.text = "".join(parts)
    if rec.output_tokens is None:
        # the server sent no usage (e.g. llama.cpp): one token per chunk is the best estimate
        rec.output_tokens = rec.content_chunks


def _one_ollama(client, url, model, prompt, max_tokens, rec: _Request) -> None:
    payload = {
        "model": model,
        "messages": _messages(prompt),
        "stream": True,
        "options": {"num_predict": max_tokens, "temperature": 0.0},
    }
    rec.start = time.perf_counter()
    with client.stream("POST", url, json=payload) as response:
        if response.status_code != 200:
            body = response.read().decode("utf-8", "replace")
            raise RuntimeError(f"HTTP {response.status_code}: {body[:200]}")
        parts = []
        done = False
        for line in response.iter_lines():
            now = time.perf_counter()
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("error"):
                raise RuntimeError(f"error in stream: {str(obj['error'])[:200]}")
            content = (obj.get("message") or {}).get("content") or obj.get("response") or ""
            if content:
                if rec.ttft is None:
                    rec.ttft = now - rec.start
                else:
                    rec.itl.append(now - rec.last_content)
                rec.last_content = now
                rec.content_chunks += 1
                parts.append(content)
            if obj.get("done"):
                done = True
                if obj.get("eval_count") is not None:
                    rec.output_tokens = int(obj["eval_count"])
                if obj.get("prompt_eval_count") is not None:
                    rec.input_tokens = int(obj["prompt_eval_count"])
                break
        rec.text = "".join(parts)
    if not done:
        raise RuntimeError("the stream ended without a final (done) object")
    if rec.output_tokens is None:
        rec.output_tokens = rec.content_chunks


def _pct(values, q):
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else None


def _mean(values):
    return float(np.mean(np.asarray(values, dtype=float))) if len(values) else None


def measure(base_url, *, model, prompts, max_tokens=128, concurrency=1, api="openai") -> dict:
    """Benchmark a streaming chat endpoint; see the module docstring for the definitions.

    ``api="openai"``: ``{base_url}/chat/completions`` (base_url like ``http://localhost:8000/v1``),
    streamed with ``stream_options: {include_usage: true}``. ``api="ollama"``: ``{host}/api/chat``
    streamed as NDJSON (base_url like ``http://localhost:11434``).

    Returns ``requests, concurrency, errors, output_tokens, duration_s, ttft_p50_s, ttft_p95_s,
    tpot_mean_s, itl_p50_s, e2e_p50_s, e2e_p95_s, output_tokens_per_s, requests_per_s`` plus
    ``completed, input_tokens, api, error_messages``.
    """
    import httpx

    if api not in ("openai", "ollama"):
        raise ValueError('api must be "openai" or "ollama"')
    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty")
    concurrency = int(concurrency)
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    max_tokens = int(max_tokens)
    url = _endpoint(base_url, api)
    one = _one_ollama if api == "ollama" else _one_openai

    def run(client, prompt) -> _Request:
        rec = _Request()
        try:
            one(client, url, model, prompt, max_tokens, rec)
            if rec.ttft is None:
                raise RuntimeError("no content in the response")
            rec.ok = True
        except Exception as exc:  # a failed request is counted, not raised
            rec.ok = False
            rec.error = f"{type(exc).__name__}: {exc}"[:300]
            rec.connect_error = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
            if not rec.start:
                rec.start = time.perf_counter()
        rec.end = time.perf_counter()
        return rec

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(_READ_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S)
    with httpx.Client(timeout=timeout, limits=limits) as client:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bench") as pool:
            records = list(pool.map(lambda p: run(client, p), prompts))

    if all(r.connect_error for r in records):
        raise ConnectionError(f"nothing answers at {url}: {records[0].error}")

    duration = max(r.end for r in records) - min(r.start for r in records)
    ok = [r for r in records if r.ok]
    output_tokens = sum(r.output_tokens or 0 for r in ok)
    ttfts = [r.ttft for r in ok]
    e2es = [r.last_content - r.start for r in ok]
    tpots = [
        (r.last_content - r.start - r.ttft) / (r.output_tokens - 1)
        for r in ok
        if r.output_tokens is not None and r.output_tokens > 1
    ]
    itls = [gap for r in ok for gap in r.itl]
    input_tokens = [r.input_tokens for r in ok if r.input_tokens is not None]

    errors = [r.error for r in records if not r.ok]
    return {
        "requests": len(records),
        "concurrency": concurrency,
        "errors": len(errors),
        "output_tokens": output_tokens,
        "duration_s": duration,
        "ttft_p50_s": _pct(ttfts, 50),
        "ttft_p95_s": _pct(ttfts, 95),
        "tpot_mean_s": _mean(tpots),
        "itl_p50_s": _pct(itls, 50),
        "e2e_p50_s": _pct(e2es, 50),
        "e2e_p95_s": _pct(e2es, 95),
        "output_tokens_per_s": output_tokens / duration if duration > 0 else 0.0,
        "requests_per_s": len(ok) / duration if duration > 0 else 0.0,
        "completed": len(ok),
        "input_tokens": sum(input_tokens) if input_tokens else None,
        "api": api,
        "error_messages": sorted(set(errors))[:5],
    }
