"""The simulated vLLM engine: continuous batching as a pacing rule, and its metrics.

The truth (also in catalogue.toml), every time multiplied by the server's ``time_scale``:

* ``running`` = sequences generating now (this one included), ``load = max(1, running / batch_size)``;
* a request's first token is due ``ttft_s · load`` after its arrival (load counted on admission);
* each next token one step after the previous one's deadline, ``step = itl_s · load`` (load counted
  when that step starts).

So up to ``batch_size`` concurrent requests each see ITL = ``itl_s`` and the server's throughput grows
with concurrency; beyond it every step slows in proportion, throughput stays at ``batch_size /
itl_s`` tokens/s and latency grows. Deadlines are absolute (drift-free, see clock.py). What really
happened - the moment each chunk was written - is what the request log records and what students
are judged against; the rule above is what makes it predictable.

Usage (in a handler)::

    async with server.engine.admit(t0=rec.t_start) as seq:
        for i in range(n_tokens):
            await seq.next_token()     # sleeps until token i is due
            await write(chunk_i)
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator

if TYPE_CHECKING:
    from .server import VLLMServer

__all__ = ["BatchEngine", "Sequence", "Metrics", "HISTOGRAM_BUCKETS"]

#: vLLM's buckets (seconds) for TTFT / ITL / e2e histograms, trimmed
HISTOGRAM_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
                     10.0, 20.0, 40.0, 80.0)


class Sequence:
    """One admitted request: hands out its token deadlines."""

    def __init__(self, engine: "BatchEngine", t0: float) -> None:
        self.engine, self.t0 = engine, t0
        self.deadline: float | None = None

    async def next_token(self) -> float:
        """Sleep until the next token is due; return the deadline it was due at."""
        server = self.engine.server
        cfg, scale = server.model, server.time_scale
        if self.deadline is None:
            self.deadline = self.t0 + cfg.ttft_s * scale * self._admit_load
        else:
            self.deadline += cfg.itl_s * scale * self.engine.load()
        await server.clock.pace_until(self.deadline)
        return self.deadline

    _admit_load: float = 1.0


class BatchEngine:
    """Counts running sequences; the pacing rule lives in :class:`Sequence`."""

    def __init__(self, server: "VLLMServer") -> None:
        self.server = server
        self.running = 0
        self.peak_running = 0

    def load(self) -> float:
        return max(1.0, self.running / float(self.server.model.batch_size))

    @contextlib.asynccontextmanager
    async def admit(self, t0: float) -> AsyncIterator[Sequence]:
        """Run one request as part of the batch (counted as running until it leaves)."""
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        seq = Sequence(self, t0)
        seq._admit_load = self.load()
        try:
            yield seq
        finally:
            self.running -= 1


@dataclass
class _Histogram:
    buckets: tuple[float, ...] = HISTOGRAM_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * len(HISTOGRAM_BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        self.total += value
        self.count += 1
        for i, upper in enumerate(self.buckets):
            if value <= upper:
                self.counts[i] += 1


class Metrics:
    """vLLM's Prometheus metrics, fed by real traffic (a subset of ``vllm:*``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.prompt_tokens = 0
            self.generation_tokens = 0
            self.success: dict[str, int] = {"stop": 0, "length": 0, "abort": 0}
            self.hist = {name: _Histogram() for name in ("ttft", "itl", "e2e", "prompt", "generation")}

    def request_done(self, *, prompt_tokens: int, generation_tokens: int, finish_reason: str,
                     t_start: float, content_times: list[float], t_end: float) -> None:
        with self._lock:
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += generation_tokens
            self.success[finish_reason] = self.success.get(finish_reason, 0) + 1
            if content_times:
                self.hist["ttft"].observe(content_times[0] - t_start)
            for a, b in zip(content_times, content_times[1:]):
                self.hist["itl"].observe(b - a)
            self.hist["e2e"].observe(t_end - t_start)

    def render(self, model_name: str, running: int) -> str:
        """The Prometheus text exposition format, as ``GET /metrics`` answers."""
        labels = f'engine="0",model_name="{model_name}"'
        out: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")
            for suffix_labels, value in samples:
                out.append(f"{name}{suffix_labels} {float(value)!r}")

        with self._lock:
            metric("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.",
                   [(f"{{{labels}}}", running)])
            metric("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
                   [(f"{{{labels}}}", 0)])
            metric("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.",
                   [(f"{{{labels}}}", self.prompt_tokens)])
            metric("vllm:generation_tokens_total", "counter", "Number of generation tokens processed.",
                   [(f"{{{labels}}}", self.generation_tokens)])
            metric("vllm:request_success_total", "counter", "Count of successfully processed requests.",
                   [(f'{{{labels},finished_reason="{r}"}}', n) for r, n in sorted(self.success.items())])
            for key, name, help_text in (
                    ("ttft", "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds."),
                    ("itl", "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds."),
                    ("e2e", "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.")):
                h = self.hist[key]
                samples = [(f'_bucket{{{labels},le="{upper}"}}', c) for upper, c in zip(h.buckets, h.counts)]
                samples.append((f'_bucket{{{labels},le="+Inf"}}', h.count))
                samples += [(f"_count{{{labels}}}", h.count), (f"_sum{{{labels}}}", h.total)]
                metric(name, "histogram", help_text, samples)
        return "\n".join(out) + "\n"
