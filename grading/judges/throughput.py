"""The grader's own benchmark metrics: what ``vllm bench serve`` would report for a set of requests.

A pure reference implementation of the definitions in DESIGN.md (which follow vLLM's
``vllm/benchmarks/serve.py`` ``calculate_metrics`` and the chat request function of
``vllm/benchmarks/lib/endpoint_request_func.py``), computed from per-request timelines:

- TTFT: request sent -> first chunk with content; E2E: request sent -> last chunk with content;
- ITL: the gaps between consecutive content chunks, pooled over every successful request;
- TPOT: ``(e2e - ttft) / (output_tokens - 1)`` for requests with more than one output token;
- output tokens as the server reported them (``usage.completion_tokens`` / ``eval_count``);
- ``duration_s``: first request sent -> last request finished (failures included, as vLLM's
  wall time); throughputs = total output tokens (or completed requests) / ``duration_s``;
- statistics over successful requests only (None when there are none), percentiles by linear
  interpolation (``numpy.percentile``), TPOT as a mean.

The checkpoint ``throughput`` builds timelines from a simulator's request log (``timeline_of``: the
server's own arrival time, content-chunk times and token counts) and judges a student's
``bench.measure`` against :func:`compute_metrics` of them; ``benchmarks/bench_throughput_sim.py``
builds them from the client side. ``tests/test_judge_throughput.py`` checks this module against a
direct transcription of vLLM's code on random timelines.

Usage::

    runs = [timeline_of(r) for r in server.log.records(service="vllm", path="/v1/chat/completions")]
    truth = compute_metrics(runs)          # {"requests": 8, "errors": 1, "ttft_p50_s": 0.061, ...}
    peak_concurrency(runs)                 # the most requests in flight at once
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from .stats import field_of, latency_stats, record_succeeded

__all__ = ["RESULT_KEYS", "TIME_STATS", "Timeline", "timeline_of", "compute_metrics", "peak_concurrency"]

#: the keys of a ``bench.measure`` result (the lab contract)
RESULT_KEYS: tuple[str, ...] = (
    "requests", "concurrency", "errors", "output_tokens", "duration_s", "ttft_p50_s", "ttft_p95_s",
    "tpot_mean_s", "itl_p50_s", "e2e_p50_s", "e2e_p95_s", "output_tokens_per_s", "requests_per_s")
#: each timed statistic: (per-request series, statistic of :func:`grading.judges.stats.latency_stats`)
TIME_STATS: dict[str, tuple[str, str]] = {
    "ttft_p50_s": ("ttft", "p50"),
    "ttft_p95_s": ("ttft", "p95"),
    "tpot_mean_s": ("tpot", "mean"),
    "itl_p50_s": ("itl", "p50"),
    "e2e_p50_s": ("e2e", "p50"),
    "e2e_p95_s": ("e2e", "p95"),
}


@dataclass(frozen=True)
class Timeline:
    """One request: when it was sent, when each content chunk came, when it finished, what it held.

    ``end`` is when the request finished (its response complete, or its failure); for a success it is
    at or after the last content chunk. ``chars`` is the length of the generated text, if known.
    """

    start: float
    end: float | None = None
    chunk_times: tuple[float, ...] = ()
    output_tokens: int | None = None
    ok: bool = True
    chars: int | None = None

    @property
    def ttft(self) -> float | None:
        return self.chunk_times[0] - self.start if self.chunk_times else None

    @property
    def e2e(self) -> float | None:
        return self.chunk_times[-1] - self.start if self.chunk_times else None

    @property
    def itl(self) -> list[float]:
        times = self.chunk_times
        return [b - a for a, b in zip(times, times[1:])]

    @property
    def tpot(self) -> float | None:
        """``(e2e - ttft) / (output_tokens - 1)``, None for one token or fewer (as vLLM)."""
        n = self.output_tokens
        if not self.chunk_times or n is None or n <= 1:
            return None
        return (self.chunk_times[-1] - self.chunk_times[0]) / (n - 1)

    @property
    def finished(self) -> float:
        """When the request was over: ``end``, else its last chunk, else its start."""
        if self.end is not None:
            return self.end
        return self.chunk_times[-1] if self.chunk_times else self.start

    @property
    def succeeded(self) -> bool:
        """A success has content (vLLM marks a stream without a valid chunk as failed)."""
        return bool(self.ok and self.chunk_times)


def timeline_of(record: Any) -> Timeline:
    """The timeline of one logged request (a ``RequestRecord`` or its dict), as the server saw it.

    Content-chunk times come from ``extra.content_times`` (``extra.chunk_times`` accepted), else
    ``t_first_content`` alone; tokens from ``tokens_out``; the text's length from ``extra.text``.
    """
    extra = field_of(record, "extra") or {}
    times = extra.get("content_times")
    if times is None:
        times = extra.get("chunk_times")
    if not times:
        first = field_of(record, "t_first_content")
        times = [] if first is None else [first]
    text = extra.get("text")
    tokens = field_of(record, "tokens_out")
    return Timeline(start=float(field_of(record, "t_start")),
                    end=None if field_of(record, "t_end") is None else float(field_of(record, "t_end")),
                    chunk_times=tuple(float(t) for t in times),
                    output_tokens=None if tokens is None else int(tokens),
                    ok=record_succeeded(record),
                    chars=len(text) if isinstance(text, str) else None)


def compute_metrics(timelines: Sequence[Timeline], *, concurrency: int | None = None,
                    duration_s: float | None = None) -> dict[str, Any]:
    """The contract's result for these requests (``RESULT_KEYS`` plus ``completed``, ``chunks``,
    ``chars`` and ``peak_concurrency``). ``duration_s`` defaults to first start -> last finish."""
    runs = list(timelines)
    ok = [t for t in runs if t.succeeded]
    if duration_s is None:
        duration_s = (max(t.finished for t in runs) - min(t.start for t in runs)) if runs else 0.0
    output_tokens = sum(t.output_tokens or 0 for t in ok)
    series: dict[str, list[float]] = {
        "ttft": [t.ttft for t in ok if t.ttft is not None],
        "e2e": [t.e2e for t in ok if t.e2e is not None],
        "tpot": [t.tpot for t in ok if t.tpot is not None],
        "itl": [gap for t in ok for gap in t.itl],
    }
    stats = {name: latency_stats(values) for name, values in series.items()}
    result: dict[str, Any] = {
        "requests": len(runs),
        "concurrency": concurrency,
        "errors": len(runs) - len(ok),
        "output_tokens": output_tokens,
        "duration_s": float(duration_s),
    }
    for key, (name, stat) in TIME_STATS.items():
        result[key] = stats[name][stat]
    rate = (lambda n: n / duration_s) if duration_s > 0 else (lambda n: 0.0)
    chars = [t.chars for t in ok]
    result.update(
        output_tokens_per_s=rate(output_tokens),
        requests_per_s=rate(len(ok)),
        completed=len(ok),
        chunks=sum(len(t.chunk_times) for t in ok),
        chars=sum(chars) if chars and all(c is not None for c in chars) else None,  # type: ignore[misc]
        peak_concurrency=peak_concurrency(runs),
    )
    return result


def peak_concurrency(timelines: Iterable[Timeline]) -> int:
    """The most requests in flight at once: a sweep over the half-open intervals [start, finished)
    (an end before a start at the same instant, as vLLM's ``max_concurrent_requests``)."""
    events: list[tuple[float, int]] = []
    for t in timelines:
        events.append((t.start, 1))
        events.append((t.finished, -1))
    events.sort()
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak
