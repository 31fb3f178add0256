"""Streaming benchmark: TTFT, TPOT, ITL, end-to-end latency and throughput.

The definitions are those of vLLM's ``vllm bench serve``:

- TTFT (time to first token): request sent -> first streamed chunk that carries content.
- ITL (inter-token latency): the gaps between consecutive content chunks, pooled over all
  requests.
- E2E latency: request sent -> last content chunk.
- TPOT (time per output token): ``(e2e - ttft) / (output_tokens - 1)``, for requests with more than
  one output token.
- Output tokens: what the server reports - ``usage.completion_tokens`` of an OpenAI stream
  requested with ``"stream_options": {"include_usage": true}`` (a last chunk with empty
  ``choices``), or ``eval_count`` of Ollama's final object. Never characters, never chunks (a
  chunk may hold several tokens).
- ``duration_s``: from the first request sent to the last one finished;
  ``output_tokens_per_s = output_tokens / duration_s``;
  ``requests_per_s = completed requests / duration_s``.
- Statistics over successful requests only (``None`` if there are none); percentiles with
  ``numpy.percentile`` (linear interpolation).
"""

from __future__ import annotations

__all__ = ["measure"]


def measure(base_url, *, model, prompts, max_tokens=128, concurrency=1, api="openai") -> dict:
    """Send one streamed chat request per prompt, ``concurrency`` at a time, and measure.

    ``api="openai"``: POST ``{base_url}/chat/completions`` (base_url like
    ``http://localhost:8000/v1``) with ``"stream": true`` and
    ``"stream_options": {"include_usage": true}``; the answer is Server-Sent Events: lines
    ``data: {...json...}``, ending with ``data: [DONE]``.
    ``api="ollama"``: POST ``{host}/api/chat`` with ``"stream": true`` and
    ``"options": {"num_predict": max_tokens}``; the answer is one JSON object per line, the last
    with ``"done": true`` and ``eval_count``.

    Returns ``{"requests", "concurrency", "errors", "output_tokens", "duration_s", "ttft_p50_s",
    "ttft_p95_s", "tpot_mean_s", "itl_p50_s", "e2e_p50_s", "e2e_p95_s", "output_tokens_per_s",
    "requests_per_s"}`` (``errors`` = number of failed requests).

    TODO:
      - Stream with ``httpx`` (``client.stream("POST", url, json=payload)`` and
        ``response.iter_lines()``), timing with ``time.perf_counter()``.
      - Run ``concurrency`` requests at once with a ``concurrent.futures.ThreadPoolExecutor``.
        Keep the function synchronous: never call ``asyncio.run()`` here (it fails inside a
        Jupyter notebook, where an event loop is already running).
      - A failed request counts in ``errors`` and is left out of the statistics.
    """
    raise NotImplementedError("TODO: implement bench.measure")
