"""Property tests of the grader's own benchmark metrics (``grading.judges.throughput``) and of the judge
of a ``bench.measure`` result (``grading.judges.throughput_judge``).

The metrics are checked against a direct transcription of vLLM's code (``vllm/benchmarks/serve.py``
``calculate_metrics`` and the chat request function of ``vllm/benchmarks/lib/endpoint_request_func.py``,
read at vllm-project/vllm 009e6d4 / 02cfb53) on random timelines: requests with random starts, first
chunks, chunk gaps, tokens per chunk (a chunk may hold several tokens) and failures. Where DESIGN.md
departs from vLLM on purpose it is said here: statistics of nothing are None (vLLM: 0), and the
timeline holds content chunks only (vLLM also times a role-only chunk; real vLLM sends it together with
the first token, so both agree there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.judges.throughput import RESULT_KEYS, Timeline, compute_metrics, peak_concurrency, timeline_of
from grading.judges.throughput_judge import (judge_concurrency, judge_counts, judge_errors, judge_rates,
                                             judge_shape, judge_times, time_window)
from grading.rubric import load_thresholds
from grading.sims.log import RequestRecord

THRESHOLDS = load_thresholds()
OVER = float(THRESHOLDS["throughput_client_overhead_s"])
GAP = float(THRESHOLDS["throughput_gap_overhead_s"])


# -- a transcription of vLLM ---------------------------------------------------------------------------
@dataclass
class RequestFuncOutput:                      # endpoint_request_func.RequestFuncOutput (the fields used)
    generated_text: str = ""
    success: bool = False
    latency: float = 0.0
    output_tokens: int = 0
    ttft: float = 0.0
    itl: list = field(default_factory=list)
    start_time: float = 0.0


def vllm_request(start: float, chunk_times: list[float], completion_tokens: int | None, ok: bool) -> RequestFuncOutput:
    """async_request_openai_chat_completions on a stream whose choices chunks arrive at chunk_times."""
    output = RequestFuncOutput()
    st_, output.start_time = start, start
    most_recent_timestamp = st_
    if not ok:
        output.success = False
        return output
    first_chunk_received = False
    for timestamp in chunk_times:
        if not first_chunk_received:
            first_chunk_received = True
            output.ttft = timestamp - st_
        else:
            output.itl.append(timestamp - most_recent_timestamp)
        most_recent_timestamp = timestamp
    if completion_tokens is not None:
        output.output_tokens = completion_tokens           # the usage chunk
    output.success = first_chunk_received
    output.latency = most_recent_timestamp - st_
    return output


def vllm_calculate_metrics(outputs: list[RequestFuncOutput], dur_s: float, selected_percentiles: list[float]) -> dict:
    """serve.calculate_metrics without tokenizer, goodput and plots."""
    actual_output_lens, completed, itls, tpots, ttfts, e2els = [], 0, [], [], [], []
    for i in range(len(outputs)):
        if outputs[i].success:
            output_len = outputs[i].output_tokens
            if not output_len:
                output_len = 1                                 # tokenizer is None
            actual_output_lens.append(output_len)
            if output_len > 1:
                latency_minus_ttft = outputs[i].latency - outputs[i].ttft
                tpots.append(latency_minus_ttft / (output_len - 1))
            itls += outputs[i].itl
            ttfts.append(outputs[i].ttft)
            e2els.append(outputs[i].latency)
            completed += 1
        else:
            actual_output_lens.append(0)
    successful_outputs = [o for o in outputs if o.success]
    events = []
    for output in successful_outputs:
        events.append((output.start_time, 1))
        events.append((output.start_time + output.latency, -1))
    events.sort(key=lambda x: (x[0], x[1]))
    current_concurrency = peak_concurrency_ = 0
    for _, delta in events:
        current_concurrency += delta
        peak_concurrency_ = max(peak_concurrency_, current_concurrency)
    return {
        "completed": completed,
        "failed": len(outputs) - len(successful_outputs),
        "total_output": sum(actual_output_lens),
        "request_throughput": completed / dur_s,
        "output_throughput": sum(actual_output_lens) / dur_s,
        "median_ttft": np.median(ttfts or 0),
        "percentiles_ttft": [(p, np.percentile(ttfts or 0, p)) for p in selected_percentiles],
        "mean_tpot": np.mean(tpots or 0),
        "median_itl": np.median(itls or 0),
        "median_e2el": np.median(e2els or 0),
        "percentiles_e2el": [(p, np.percentile(e2els or 0, p)) for p in selected_percentiles],
        "max_concurrent_requests": peak_concurrency_,
    }


# -- random timelines ------------------------------------------------------------------------------------
@st.composite
def requests_st(draw):
    """One request: (start, chunk times, completion tokens, ok, end)."""
    start = draw(st.floats(0.0, 5.0))
    ok = draw(st.booleans()) if draw(st.integers(0, 4)) == 0 else True
    n_chunks = draw(st.integers(0 if not ok else 1, 12))
    times, t = [], start + draw(st.floats(0.0005, 2.0))
    for _ in range(n_chunks):
        times.append(t)
        t += draw(st.floats(0.0, 0.3))
    tokens = sum(draw(st.lists(st.integers(1, 4), min_size=n_chunks, max_size=n_chunks))) if n_chunks else 0
    end = (times[-1] if times else start) + draw(st.floats(0.0, 0.05))
    return start, times, tokens, ok, end


runs_st = st.lists(requests_st(), min_size=1, max_size=20)


def _close(a, b):
    return a == pytest.approx(b, rel=1e-9, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(runs_st)
def test_metrics_equal_vllm_calculate_metrics(runs):
    timelines = [Timeline(start=s, end=e, chunk_times=tuple(t), output_tokens=n, ok=ok) for s, t, n, ok, e in runs]
    ours = compute_metrics(timelines, concurrency=3)
    dur_s = max(e for *_, e in runs) - min(s for s, *_ in runs)
    assert _close(ours["duration_s"], dur_s)
    if dur_s <= 0:
        return
    outputs = [vllm_request(s, t, n, ok) for s, t, n, ok, _ in runs]
    theirs = vllm_calculate_metrics(outputs, dur_s, [50, 95])
    assert ours["requests"] == len(runs) and ours["concurrency"] == 3
    assert ours["completed"] == theirs["completed"] and ours["errors"] == theirs["failed"]
    assert ours["output_tokens"] == theirs["total_output"]
    assert _close(ours["output_tokens_per_s"], theirs["output_throughput"])
    assert _close(ours["requests_per_s"], theirs["request_throughput"])
    if theirs["completed"] == 0:  # vLLM reports 0 for the statistics of nothing; the contract says None
        assert all(ours[k] is None for k in ("ttft_p50_s", "ttft_p95_s", "tpot_mean_s", "itl_p50_s", "e2e_p50_s"))
        return
    assert _close(ours["ttft_p50_s"], theirs["median_ttft"])
    assert _close(ours["ttft_p95_s"], dict(theirs["percentiles_ttft"])[95])
    assert _close(ours["e2e_p50_s"], theirs["median_e2el"])
    assert _close(ours["e2e_p95_s"], dict(theirs["percentiles_e2el"])[95])
    has_tpot = any(o.success and o.output_tokens > 1 for o in outputs)
    assert (ours["tpot_mean_s"] is None) == (not has_tpot)
    if has_tpot:
        assert _close(ours["tpot_mean_s"], theirs["mean_tpot"])
    has_itl = any(o.itl for o in outputs if o.success)
    assert (ours["itl_p50_s"] is None) == (not has_itl)
    if has_itl:
        assert _close(ours["itl_p50_s"], theirs["median_itl"])
    # vLLM's peak counts successes over [start, last chunk); ours takes any timelines as given
    ok_lines = [Timeline(start=tl.start, end=tl.chunk_times[-1], chunk_times=tl.chunk_times, output_tokens=1)
                for tl in timelines if tl.succeeded]
    assert peak_concurrency(ok_lines) == theirs["max_concurrent_requests"]


def test_timeline_of_a_logged_request():
    rec = RequestRecord(id=1, service="vllm", t_wall=0.0, t_start=10.0, method="POST", path="/v1/chat/completions",
                        t_first_content=10.2, t_end=10.55, status=200, tokens_out=7,
                        extra={"content_times": [10.2, 10.3, 10.5], "text": "Hello there!"})
    tl = timeline_of(rec)
    assert tl.succeeded and tl.output_tokens == 7 and tl.chars == 12 and tl.finished == 10.55
    assert tl.ttft == pytest.approx(0.2) and tl.e2e == pytest.approx(0.5) and tl.tpot == pytest.approx(0.3 / 6)
    assert timeline_of(rec.to_dict()) == tl
    failed = RequestRecord(id=2, service="vllm", t_wall=0.0, t_start=11.0, method="POST", path="/x", t_end=11.01,
                           status=500, outcome="fault:status")
    assert not timeline_of(failed).succeeded
    m = compute_metrics([tl, timeline_of(failed)])
    assert (m["requests"], m["errors"], m["completed"], m["chunks"], m["chars"]) == (2, 1, 1, 3, 12)
    assert m["duration_s"] == pytest.approx(1.01) and set(RESULT_KEYS) <= set(m)


# -- the judge ----------------------------------------------------------------------------------------------
def _truth(runs):
    return compute_metrics([Timeline(start=s, end=e, chunk_times=tuple(t), output_tokens=n, ok=ok)
                            for s, t, n, ok, e in runs], concurrency=2)


@st.composite
def client_view_st(draw):
    """Server timelines and what an honest client measures: every time delayed by 0..OVER (the request's
    way in and each chunk's way out), never reordering a request's chunks."""
    runs = draw(st.lists(requests_st(), min_size=2, max_size=12))
    seen = []
    for s, times, n, ok, e in runs:
        lead = draw(st.floats(0.0, OVER / 3))           # sent this long before the server saw it
        delays = sorted(draw(st.lists(st.floats(0.0, GAP / 2), min_size=len(times), max_size=len(times))))
        tail = draw(st.floats(0.0, OVER / 3))
        client_times = [t + d for t, d in zip(times, delays)]
        client_end = max([e] + client_times) + tail
        seen.append((s - lead, client_times, n, ok, client_end))
    return runs, seen


@settings(max_examples=200, deadline=None)
@given(client_view_st())
def test_honest_measurements_pass(view):
    runs, seen = view
    truth = _truth(runs)
    result = _truth(seen)
    label = "run"
    assert judge_shape(result, label=label, concurrency=2, requests=len(runs)) == []
    assert judge_counts(result, truth, label=label) == []
    assert judge_errors(result, truth, label=label) == []
    assert judge_times(result, truth, THRESHOLDS, label=label) == []
    if truth["duration_s"] > 0:
        assert judge_rates(result, truth, THRESHOLDS, label=label) == []


def _sample_runs(n=6, tokens_per_chunk=2, fail=1):
    runs = []
    for i in range(n):
        start = 0.01 * i
        times = [start + 0.06 + 0.015 * k for k in range(10)]
        runs.append((start, times, 10 * tokens_per_chunk, i >= fail, times[-1] + 0.002))
    return runs


def test_counting_mistakes_are_named():
    runs = _sample_runs()
    timelines = [Timeline(start=s, end=e, chunk_times=tuple(t), output_tokens=n, ok=ok, chars=37)
                 for s, t, n, ok, e in runs]
    truth = compute_metrics(timelines)
    chars = dict(truth, output_tokens=truth["chars"])
    assert "characters" in judge_counts(chars, truth, label="c")[0]
    chunks = dict(truth, output_tokens=truth["chunks"])
    assert "chunk" in judge_counts(chunks, truth, label="c")[0]
    hidden = dict(truth, errors=0)
    assert "never hide" in judge_errors(hidden, truth, label="c")[0]


def test_ttft_at_the_end_is_named():
    truth = _truth(_sample_runs(fail=0))
    late = dict(truth, ttft_p50_s=truth["e2e_p50_s"], ttft_p95_s=truth["e2e_p95_s"])
    problems = judge_times(late, truth, THRESHOLDS, label="c", keys=("ttft_p50_s", "ttft_p95_s"))
    assert len(problems) == 2 and "first chunk with content arrives" in problems[0]


def test_constant_numbers_fail_on_another_truth():
    a, b = _truth(_sample_runs(fail=0)), None
    slow = [(s, [t * 1.0 + 0.05 * k for k, t in enumerate(times)], n, ok, e + 0.5)
            for s, times, n, ok, e in _sample_runs(fail=0)]
    b = _truth(slow)
    assert judge_times(a, b, THRESHOLDS, label="c") and judge_rates(a, b, THRESHOLDS, label="c")


def test_time_window_shapes():
    low, high = time_window("ttft_p50_s", 0.1, THRESHOLDS)
    assert low == pytest.approx(0.09) and high == pytest.approx(0.11 + OVER)
    low, high = time_window("itl_p50_s", 0.02, THRESHOLDS)
    token = max(THRESHOLDS["throughput_token_abs_s"], 0.05 * 0.02) + GAP
    assert low == pytest.approx(0.02 - token) and high == pytest.approx(0.02 + token)


def test_sequential_requests_are_not_concurrency():
    def timed(starts, length):
        return compute_metrics([Timeline(start=s, end=s + length, chunk_times=(s + 0.05, s + length),
                                         output_tokens=10) for s in starts])
    one = timed([0.2 * i for i in range(4)], 0.2)
    sequential = timed([0.2 * i for i in range(8)], 0.2)
    concurrent = timed([0.2 * (i // 4) for i in range(8)], 0.2)
    problems = judge_concurrency(one, sequential, one, sequential, THRESHOLDS, concurrency=4, prompts=8)
    assert any("one after another" in p for p in problems) and any("at least" in p for p in problems)
    assert judge_concurrency(one, concurrent, one, concurrent, THRESHOLDS, concurrency=4, prompts=8) == []
    assert "never more" in judge_concurrency(one, concurrent, one, concurrent, THRESHOLDS, concurrency=2,
                                             prompts=8)[0]


def test_tpot_over_characters_fails():
    runs = _sample_runs(fail=0)
    truth = _truth(runs)
    per_char = _truth([(s, t, n * 5, ok, e) for s, t, n, ok, e in runs])   # ~5 characters per token
    problems = judge_times(per_char, truth, THRESHOLDS, label="c", keys=("tpot_mean_s",))
    assert problems and "tokens as the server counted them" in problems[0]
