"""The judge of one ``bench.measure`` result against the metrics of the server's log of its requests.

``truth`` is :func:`grading.judges.throughput.compute_metrics` of the logged requests (the server's
own clock). The student's clock starts a little before the server sees a request and sees a chunk a
little after the server wrote it, so (thresholds.toml, ``[default]``):

- counts (``requests``, ``errors``, ``output_tokens``) are exact;
- TTFT, E2E and ``duration_s`` lie in ``[truth - tol, truth + tol + throughput_client_overhead_s]``
  (tol = max(timing_abs_s, timing_rel x truth)); a percentile of values each delayed by at most the
  overhead is itself delayed by at most the overhead;
- ITL and TPOT (per-token times, differences of two client times) lie within
  ``max(throughput_token_abs_s, timing_rel x truth) + throughput_gap_overhead_s`` of the truth, both ways;
- the throughputs are judged through the duration they imply: ``output_tokens_per_s`` must be the
  log's token count divided by a duration that is itself within the window above (likewise
  ``requests_per_s`` with the completed requests).

Each function returns problems in words a student can act on (empty: right).
"""

from __future__ import annotations

from typing import Any, Mapping

from .stats import fmt_s, is_number, tolerance
from .throughput import RESULT_KEYS, TIME_STATS

__all__ = ["judge_shape", "judge_counts", "judge_errors", "judge_times", "judge_rates", "judge_concurrency",
           "time_window", "is_count"]

_ONE_SIDED = ("ttft_p50_s", "ttft_p95_s", "e2e_p50_s", "e2e_p95_s")


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _over(thresholds: Mapping[str, Any], key: str) -> float:
    return float(thresholds.get(key, 0.0))


def time_window(key: str, truth: float, thresholds: Mapping[str, Any]) -> tuple[float, float]:
    """The accepted [low, high] for the timed statistic ``key`` (or ``duration_s``) given its truth."""
    tol = tolerance(truth, thresholds)
    if key in _ONE_SIDED or key == "duration_s":
        return truth - tol, truth + tol + _over(thresholds, "throughput_client_overhead_s")
    token_abs = float(thresholds.get("throughput_token_abs_s", thresholds.get("timing_abs_s", 0.010)))
    slack = max(token_abs, float(thresholds.get("timing_rel", 0.05)) * abs(truth))
    slack += _over(thresholds, "throughput_gap_overhead_s")
    return truth - slack, truth + slack


def judge_shape(result: Any, *, label: str, concurrency: int, requests: int) -> list[str]:
    if not isinstance(result, Mapping):
        return [f"{label}: measure() returned {type(result).__name__} {str(result)[:100]}; it must return a dict "
                f"with the keys {', '.join(RESULT_KEYS)}"]
    problems = []
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        problems.append(f"{label}: the result has no {', '.join(missing)}")
    for key in ("requests", "concurrency", "errors", "output_tokens"):
        if key in result and not is_count(result[key]):
            problems.append(f"{label}: {key} is {result[key]!r}; it must be an int")
    for key in RESULT_KEYS[4:]:
        value = result.get(key)
        if key in result and value is not None and not is_number(value):
            problems.append(f"{label}: {key} is {value!r}; it must be a number (seconds, or per second) or None")
    if is_count(result.get("concurrency")) and result["concurrency"] != concurrency:
        problems.append(f"{label}: concurrency is {result['concurrency']!r}, but {concurrency} was asked for")
    if is_count(result.get("requests")) and result["requests"] != requests:
        problems.append(f"{label}: requests is {result['requests']!r} for {requests} prompts; send one request "
                        "per prompt and count them all, failed ones included")
    return problems


def judge_counts(result: Mapping[str, Any], truth: Mapping[str, Any], *, label: str) -> list[str]:
    """``output_tokens`` (and ``requests``) exactly as the server counted them."""
    problems = []
    if result.get("requests") != truth["requests"]:
        problems.append(f"{label}: requests={result.get('requests')!r}, but {truth['requests']} requests reached "
                        "the server; one request per prompt, each counted once")
    have, want = result.get("output_tokens"), truth["output_tokens"]
    if have == want and is_count(have):
        return problems
    hint = ("take each request's token count from the server — usage.completion_tokens of the last chunk "
            "(ask for it with \"stream_options\": {\"include_usage\": true}), eval_count of Ollama's final "
            "object — and add them up over the successful requests")
    if is_count(have) and truth.get("chars") is not None and have == truth["chars"] != want:
        hint = ("it equals the number of characters generated: characters are not tokens (a token is often a "
                "whole word or a piece of one); " + hint)
    elif is_count(have) and have == truth.get("chunks") != want:
        hint = ("it equals the number of streamed chunks with content: a chunk may carry more than one token; "
                + hint)
    problems.append(f"{label}: output_tokens={have!r}, but the server generated {want} tokens for the "
                    f"{truth['completed']} successful requests; {hint}")
    return problems


def judge_errors(result: Mapping[str, Any], truth: Mapping[str, Any], *, label: str) -> list[str]:
    have, want = result.get("errors"), truth["errors"]
    if have == want and is_count(have):
        return []
    if is_count(have) and have < want:
        hint = ("a request answered with an HTTP error (or cut off, or without content) is a failed request: "
                "count it in errors and leave it out of the statistics, never hide it or drop it silently")
    else:
        hint = "only the requests that did not get a complete answer are errors"
    return [f"{label}: errors={have!r}, but the server failed {want} of the {truth['requests']} requests; {hint}"]


def judge_times(result: Mapping[str, Any], truth: Mapping[str, Any], thresholds: Mapping[str, Any], *,
                label: str, keys: tuple[str, ...] = tuple(TIME_STATS)) -> list[str]:
    """The timed statistics ``keys`` against the log's, within :func:`time_window`."""
    problems = []
    for key in keys:
        want, have = truth[key], result.get(key)
        if want is None:
            if have is not None:
                problems.append(f"{label}: {key}={have!r}, but no request qualifies for it (no successful request, "
                                "or none with more than one token): it must be None")
            continue
        low, high = time_window(key, want, thresholds)
        if is_number(have) and low - 1e-12 <= have <= high + 1e-12:
            continue
        msg = (f"{label}: {key} is {fmt_s(have)}, but the server's log gives {fmt_s(want)} for these requests "
               f"(accepted {fmt_s(low)} to {fmt_s(high)})")
        problems.append(msg + _time_hint(key, have, truth))
    return problems


def _time_hint(key: str, have: Any, truth: Mapping[str, Any]) -> str:
    if not is_number(have):
        return "; it must be a number of seconds"
    e2e = truth.get("e2e_p50_s")
    closer_to_e2e = e2e is not None and abs(have - e2e) < abs(have - truth[key])
    if key.startswith("ttft") and have > truth[key] and closer_to_e2e:
        return ("; your TTFT is about as long as the whole request: take the time when the first chunk with "
                "content arrives, not when the response has ended (stream the response and read it chunk by "
                "chunk)")
    if key.startswith("ttft"):
        return "; TTFT runs from sending the request to the first streamed chunk that carries content"
    if key == "tpot_mean_s":
        return ("; TPOT = (e2e - ttft) / (output_tokens - 1) per request with more than one token (tokens as "
                "the server counted them), then the mean")
    if key == "itl_p50_s":
        return "; ITL = the gaps between consecutive content chunks, pooled over all successful requests (p50)"
    return ("; E2E runs from sending a request to its last content chunk, per successful request; percentiles "
            "by linear interpolation (numpy.percentile)")


def judge_rates(result: Mapping[str, Any], truth: Mapping[str, Any], thresholds: Mapping[str, Any], *,
                label: str) -> list[str]:
    """``duration_s``, ``output_tokens_per_s`` and ``requests_per_s`` against the log's wall time."""
    span = truth["duration_s"]
    low, high = time_window("duration_s", span, thresholds)
    problems = []
    have = result.get("duration_s")
    if not (is_number(have) and low - 1e-12 <= have <= high + 1e-12):
        hint = ("; duration_s runs from the first request sent to the last request finished (one wall-clock "
                "span for the whole benchmark, not a sum of request times)")
        problems.append(f"{label}: duration_s is {fmt_s(have)}, but the requests spanned {fmt_s(span)} at the "
                        f"server (accepted {fmt_s(low)} to {fmt_s(high)})" + hint)
    for key, count, what in (("output_tokens_per_s", truth["output_tokens"], "output tokens"),
                             ("requests_per_s", truth["completed"], "completed requests")):
        rate = result.get(key)
        lo_rate, hi_rate = count / high, (count / low if low > 0 else float("inf"))
        if is_number(rate) and lo_rate * (1 - 1e-9) <= rate <= hi_rate * (1 + 1e-9):
            continue
        problems.append(f"{label}: {key} is {rate!r}, but the server saw {count} {what} in {fmt_s(span)} "
                        f"(accepted {lo_rate:.3g} to {hi_rate:.3g} per second: {what} over the wall time from "
                        "the first request sent to the last finished)")
    return problems


def judge_concurrency(low_c: Mapping[str, Any], high_c: Mapping[str, Any], low_truth: Mapping[str, Any],
                      high_truth: Mapping[str, Any], thresholds: Mapping[str, Any], *, concurrency: int,
                      prompts: int) -> list[str]:
    """Requests really overlap at ``concurrency`` (the log's peak), never more than asked, and the
    throughput measured at that concurrency is clearly above the one at concurrency 1."""
    problems = []
    expected = min(concurrency, prompts)
    need = max(2, int(round(float(thresholds.get("throughput_overlap_min", 0.75)) * expected)))
    peak = high_truth["peak_concurrency"]
    if peak < need:
        problems.append(
            f"at concurrency={concurrency} at most {peak} of your requests were in flight at the server at the same "
            f"time (at least {need} expected with {prompts} prompts): the requests were sent one after another. "
            "Run `concurrency` requests at once (a ThreadPoolExecutor(max_workers=concurrency), or asyncio with a "
            "Semaphore), each starting the next prompt as soon as it is done")
    elif peak > concurrency:
        problems.append(f"at concurrency={concurrency}, {peak} requests were in flight at once: never more than "
                        "`concurrency` at a time")
    factor = float(thresholds.get("throughput_scaling_min", 1.5))
    base, top = low_c.get("output_tokens_per_s"), high_c.get("output_tokens_per_s")
    if not (is_number(base) and is_number(top) and base > 0 and top >= factor * base):
        problems.append(
            f"output_tokens_per_s is {base!r} at concurrency 1 and {top!r} at concurrency {concurrency}; on this "
            f"batching server it really went from {low_truth['output_tokens_per_s']:.1f} to "
            f"{high_truth['output_tokens_per_s']:.1f} per second when requests overlap — at least {factor:g}x is "
            "expected from a measurement that sends requests concurrently and divides by the wall time")
    return problems
