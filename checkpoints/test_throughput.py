"""Checkpoint `throughput`: measure tokens/sec and latency.

``inference_lab.bench.measure(base_url, model=..., prompts=[...], max_tokens=..., concurrency=N,
api="openai"|"ollama")`` sends one streamed chat request per prompt, N at a time, and reports
requests, errors, output tokens, the wall time and TTFT p50/p95, TPOT (mean), ITL p50, E2E p50/p95,
output tokens/s and requests/s — defined as ``vllm bench serve`` defines them (DESIGN.md).

The ground truth is the server's own log of the very requests ``measure`` made (when each arrived,
when each content chunk was written, how many tokens it generated, which ones failed):
grading/judges/throughput.py computes the same statistics from it, and grading/judges/throughput_judge.py
compares them with the tolerances of grading/thresholds.toml (counts exact; times within
max(10 ms, 5 %), per-token times within max(3 ms, 5 %), plus a small client allowance). ``measure`` is called three times, once each:

* on the vLLM-style server (continuous batching) at concurrency 1, and at concurrency 4 with more
  prompts than that — one of them longer than the server's context, which it refuses with vLLM's 400
  error: a failed request, to be counted in ``errors`` and left out of the statistics;
* on the Ollama server through its native ``/api/chat`` stream.

Tokens are only right when taken from what the server reports (``usage.completion_tokens`` with
``stream_options.include_usage``, ``eval_count``): a reply has several characters per token. The
vLLM server's pacing (TTFT, inter-token latency) and the Ollama model's rates are drawn from the run's
seed, so only numbers really measured can match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest

from grading.judges.throughput import compute_metrics, timeline_of
from grading.judges.throughput_judge import (judge_concurrency, judge_counts, judge_errors, judge_rates,
                                             judge_shape, judge_times)
from grading.sandbox.errors import StudentCodeError
from grading.sims.seeds import rng_for

PROMPTS = [
    "Why does batching raise an inference server's throughput?",
    "Explain time to first token in one sentence.",
    "What is a KV cache?",
    "Name two differences between Ollama and vLLM.",
    "Why measure p95 latency and not only the mean?",
    "What limits tokens per second on a CPU?",
    "Describe continuous batching briefly.",
    "When is a small local model good enough?",
]
# One prompt longer than the vLLM server's context (max_model_len below): the server answers it with
# vLLM's 400 error, a failed request that must be counted in `errors` and left out of the statistics.
TOO_LONG = "Summarise this log: " + " ".join(f"step{i} finished" for i in range(90))
MAX_MODEL_LEN = 128                       # the short prompts fit with room to spare, TOO_LONG does not
TIME_SCALE = 0.25                         # the vLLM server's times are multiplied by this
MAX_TOKENS = 12
HIGH = 4                                  # the higher concurrency (below the server's batch size)
CALL_TIMEOUT_S = 30.0
TTFT = "ttft_p50_s", "ttft_p95_s"
TOKEN_TIMES = "tpot_mean_s", "itl_p50_s", "e2e_p50_s", "e2e_p95_s"


@dataclass
class Run:
    key: str
    label: str
    api: str
    concurrency: int
    prompts: list[str]
    result: Any = None
    error: StudentCodeError | None = None
    records: list[Any] = field(default_factory=list)
    truth: dict[str, Any] = field(default_factory=dict)

    def value(self) -> dict[str, Any]:
        """The result (raises the student's error, or what is wrong with its type)."""
        if self.error is not None:
            raise self.error
        assert isinstance(self.result, dict), (
            f"{self.label}: measure() returned {type(self.result).__name__} {str(self.result)[:100]}; it must return "
            "a dict")
        return self.result


@dataclass
class Bench:
    runs: dict[str, Run] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)     # service -> why it is not here

    def need(self, *keys: str) -> list[Run]:
        """The runs asked for that exist (skip, with the reason, when none does)."""
        found = [self.runs[k] for k in keys if k in self.runs]
        if not found:
            pytest.skip("; ".join(f"no {svc} server in this tier: {why}" for svc, why in self.missing.items())
                        or "nothing was measured")
        return found

    @property
    def all(self) -> list[Run]:
        return self.need("vllm_c1", f"vllm_c{HIGH}", "ollama")


def _pacing(seed: int) -> dict[str, float]:
    """This run's pacing (so that fabricated numbers cannot match): before the vLLM server's time_scale."""
    rng = rng_for(seed, "checkpoint-throughput")
    return {"ttft_s": rng.uniform(0.16, 0.36), "itl_s": rng.uniform(0.05, 0.085),
            "eval_tok_s": rng.uniform(55.0, 110.0), "prompt_eval_tok_s": rng.uniform(400.0, 900.0)}


def _measure(lab: Any, server: Any, run: Run, base_url: str, model: str, path: str) -> Run:
    last_id = max((r.id for r in server.log.records()), default=0)
    try:
        run.result = lab.call("bench.measure", base_url, model=model, prompts=list(run.prompts),
                              max_tokens=MAX_TOKENS, concurrency=run.concurrency, api=run.api,
                              timeout_s=CALL_TIMEOUT_S)
    except StudentCodeError as exc:
        run.error = exc
    deadline = time.monotonic() + 2.0
    while True:  # a response may still be finishing on the server's side
        records = [r for r in server.log.records(id=lambda i: i > last_id) if r.path == path]
        if all(r.t_end is not None for r in records) or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    run.records = sorted(records, key=lambda r: r.t_start)
    run.truth = compute_metrics([timeline_of(r) for r in run.records], concurrency=run.concurrency)
    return run


def _vllm_runs(lab: Any, server: Any, pacing: dict[str, float], bench: Bench) -> None:
    server.reset()
    server.time_scale = TIME_SCALE
    # Two tokens per content chunk, as real vLLM may send: tokens must come from usage, not chunks.
    server.set_behavior(ttft_s=pacing["ttft_s"], itl_s=pacing["itl_s"], batch_size=8, max_model_len=MAX_MODEL_LEN,
                        tokens_per_chunk=2)
    base_url, model = server.url + "/v1", server.model.name
    path = "/v1/chat/completions"
    try:
        one = Run("vllm_c1", "vLLM server, concurrency=1", "openai", 1, PROMPTS[:4])
        bench.runs[one.key] = _measure(lab, server, one, base_url, model, path)
        prompts = PROMPTS[:2] + [TOO_LONG] + PROMPTS[2:]
        high = Run(f"vllm_c{HIGH}", f"vLLM server, concurrency={HIGH}", "openai", HIGH, prompts)
        bench.runs[high.key] = _measure(lab, server, high, base_url, model, path)
    finally:
        server.reset()


def _ollama_run(lab: Any, server: Any, pacing: dict[str, float], bench: Bench) -> None:
    server.reset()
    server.set_model(server.chat_model, eval_tok_s=pacing["eval_tok_s"],
                     prompt_eval_tok_s=pacing["prompt_eval_tok_s"], load_s=0.05)
    try:
        run = Run("ollama", "Ollama server (api=\"ollama\"), concurrency=2", "ollama", 2, PROMPTS[4:])
        bench.runs[run.key] = _measure(lab, server, run, server.url, server.chat_model, "/api/chat")
    finally:
        server.reset()


@pytest.fixture(scope="module")
def bench(lab: Any, services: Any, grading_context: Any) -> Iterator[Bench]:
    """Every measurement, once: vLLM at concurrency 1 and HIGH, then Ollama."""
    pacing = _pacing(grading_context.seed)
    found = Bench()
    lab.start()  # the worker's start-up is not part of any measurement
    for name, runner in (("vllm", _vllm_runs), ("ollama", _ollama_run)):
        server = services.services.get(name)
        if server is None:
            found.missing[name] = services.unavailable.get(name, f"the {name} service did not start")
            continue
        runner(lab, server, pacing, found)
    yield found


def _fail(header: str, problems: list[str]) -> None:
    if problems:
        raise AssertionError(header + "\n" + "\n".join(f"- {p}" for p in problems))


# -- the tests ---------------------------------------------------------------------------------------
def test_result_shape(bench: Bench) -> None:
    problems = []
    for run in bench.all:
        problems += judge_shape(run.value(), label=run.label, concurrency=run.concurrency, requests=len(run.prompts))
    _fail("measure()'s result does not have the contract's shape:", problems)


def test_requests_as_asked(bench: Bench) -> None:
    problems = []
    for run in bench.all:
        run.value()
        records = run.records
        if len(records) != len(run.prompts):
            problems.append(f"{run.label}: {len(records)} chat requests reached the server for {len(run.prompts)} "
                            "prompts; send exactly one request per prompt (no retries, no warm-up request)")
        sent = []
        for rec in records:
            body = rec.body if isinstance(rec.body, dict) else {}
            messages = body.get("messages") or []
            sent.append(str((messages[-1] or {}).get("content")) if messages and isinstance(messages[-1], dict) else None)
            if run.api == "openai":
                limit = body.get("max_tokens", body.get("max_completion_tokens"))
                usage = (body.get("stream_options") or {}).get("include_usage")
                if body.get("stream") is not True or usage is not True:
                    problems.append(f"{run.label}: a request had stream={body.get('stream')!r}, stream_options="
                                    f"{body.get('stream_options')!r}; stream it (\"stream\": true) and ask for the "
                                    "token count (\"stream_options\": {\"include_usage\": true})")
            else:
                limit = (body.get("options") or {}).get("num_predict")
                if body.get("stream") is False:
                    problems.append(f"{run.label}: a request had \"stream\": false; stream it to time the tokens")
            if limit != MAX_TOKENS:
                what = "max_tokens" if run.api == "openai" else "options.num_predict"
                problems.append(f"{run.label}: a request had {what}={limit!r}, but max_tokens={MAX_TOKENS} was asked "
                                "for")
        if sorted(map(str, sent)) != sorted(run.prompts) and len(records) == len(run.prompts):
            problems.append(f"{run.label}: the requests' last user messages were {sent!r:.200}; send each prompt "
                            "once, as the user's message")
    _fail("measure() must send one streamed request per prompt, as asked:", sorted(set(problems), key=problems.index))


def test_output_tokens_from_usage(bench: Bench) -> None:
    problems = []
    for run in bench.all:
        problems += judge_counts(run.value(), run.truth, label=run.label)
    _fail("output_tokens must be the tokens the server generated (as it reports them):", problems)


def test_ttft_to_first_content(bench: Bench, thresholds: dict[str, Any]) -> None:
    problems = []
    for run in bench.all:
        problems += judge_times(run.value(), run.truth, thresholds, label=run.label, keys=TTFT)
    _fail("TTFT does not match when the first content reached you (tolerance: max(10 ms, 5 %) plus "
          f"{thresholds['throughput_client_overhead_s'] * 1000:.0f} ms for the client):", problems)


def test_token_latencies(bench: Bench, thresholds: dict[str, Any]) -> None:
    problems = []
    for run in bench.all:
        problems += judge_times(run.value(), run.truth, thresholds, label=run.label, keys=TOKEN_TIMES)
    _fail("TPOT, ITL or E2E latency do not match the server's timing of your requests:", problems)


def test_throughput_and_duration(bench: Bench, thresholds: dict[str, Any]) -> None:
    problems = []
    for run in bench.all:
        problems += judge_rates(run.value(), run.truth, thresholds, label=run.label)
    _fail("duration_s, output_tokens_per_s or requests_per_s do not match what the server did:", problems)


def test_really_concurrent(bench: Bench, thresholds: dict[str, Any]) -> None:
    low, high = bench.need("vllm_c1")[0], bench.need(f"vllm_c{HIGH}")[0]
    problems = judge_concurrency(low.value(), high.value(), low.truth, high.truth, thresholds,
                                 concurrency=HIGH, prompts=len(high.prompts))
    _fail(f"concurrency={HIGH} must really run {HIGH} requests at once:", problems)


def test_errors_counted(bench: Bench) -> None:
    problems = []
    for run in bench.all:
        problems += judge_errors(run.value(), run.truth, label=run.label)
    high = bench.runs.get(f"vllm_c{HIGH}")
    if high is not None and high.truth["errors"] < 1:  # the grader's own check: the failure was scripted
        raise RuntimeError(f"the vLLM server should have refused the too-long prompt but failed no request: "
                           f"{[(r.status, r.outcome) for r in high.records]}")
    _fail("failed requests must be counted in errors (and left out of the statistics):", problems)
