"""Timing: the waits before retries (backoff with equal jitter, ``Retry-After``), the per-attempt
timeout and the minimum interval between any two requests."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from grading.judges.failover.policy import arrival_jitter, backoff_d, overhead, timeout_overhead, tolerance
from grading.judges.failover.timeline import Request, _n, _retry_numbers


# -- timing -----------------------------------------------------------------------------------------
def _uncut(requests: Sequence[Request], timeout: float | None, thresholds: Mapping[str, Any],
           *, allowance: Sequence[float], t_returned: float | None) -> dict[int, float]:
    """Hung requests the client did not cut at ``timeout``: 0-based index -> seconds it waited."""
    if timeout is None:
        return {}
    out = {}
    for i, req in enumerate(requests):
        if not req.hang:
            continue
        after = requests[i + 1].t_start if i + 1 < len(requests) else t_returned
        if after is None:
            continue
        waited = after - req.t_start
        limit = float(timeout) + allowance[i] + tolerance(timeout, thresholds) + timeout_overhead(thresholds)
        if waited > limit:
            out[i] = waited
    return out


def _wait_bounds(req: Request, n: int, *, backoff_base: float, backoff_max: float) -> tuple[float, float, float]:
    """(lo, hi, d) of the wait before the n-th retry after ``req``."""
    d = backoff_d(n, backoff_base, backoff_max)
    if req.retry_after_s is not None:
        return req.retry_after_s, req.retry_after_s + d, d
    return d / 2, d, d


def _max_wait_after(requests: Sequence[Request], i: int, *, backoff_base: float, backoff_max: float,
                    min_interval_s: float) -> float:
    """The longest a correct client may take between the end of request i and the next request."""
    numbers = _retry_numbers(requests)
    if i + 1 < len(requests) and requests[i + 1].provider == requests[i].provider:
        _, hi, _ = _wait_bounds(requests[i], numbers[i] + 1, backoff_base=backoff_base, backoff_max=backoff_max)
    else:
        hi = 0.0
    return hi + float(min_interval_s or 0.0)


def _allowances(requests: Sequence[Request], *, backoff_base: float, backoff_max: float,
                min_interval_s: float) -> list[float]:
    """:func:`_max_wait_after` of every request, in order (the ``allowance`` of :func:`_uncut`)."""
    return [_max_wait_after(requests, i, backoff_base=backoff_base, backoff_max=backoff_max,
                            min_interval_s=min_interval_s) for i in range(len(requests))]


def judge_timeouts(requests: Sequence[Request], *, timeout: float, thresholds: Mapping[str, Any],
                   backoff_base: float = 0.0, backoff_max: float = 0.0, min_interval_s: float = 0.0,
                   t_returned: float | None = None) -> list[str]:
    """Every request that got no answer is cut at the per-attempt ``timeout`` — not much later, not
    much sooner. ``t_returned``: when the call returned (judges a hang that was the last request)."""
    problems = []
    allowance = _allowances(requests, backoff_base=backoff_base, backoff_max=backoff_max,
                            min_interval_s=min_interval_s)
    for i, waited in _uncut(requests, timeout, thresholds, allowance=allowance, t_returned=t_returned).items():
        req = requests[i]
        problems.append(
            f"{req.label()}: your function waited {waited:.2f} s for it before its next step, but "
            f"timeout={timeout:g} is the limit of each attempt; pass the timeout to the client "
            "(InferenceClient(timeout=...), OpenAI(timeout=...), httpx/requests timeout=...) so a hung "
            f"attempt is cut after {timeout:g} s and counts as a retryable failure")
    for i, req in enumerate(requests):
        if not req.hang or i + 1 >= len(requests):
            continue
        waited = requests[i + 1].t_start - req.t_start
        if waited < float(timeout) - tolerance(timeout, thresholds) - arrival_jitter(timeout, thresholds):
            problems.append(
                f"{req.label()} was given up after {waited:.3f} s, but the per-attempt timeout was "
                f"timeout={timeout:g} s; wait for an answer that long before cutting the attempt")
    return problems


def judge_waits(requests: Sequence[Request], *, backoff_base: float, backoff_max: float, max_retries: int,
                thresholds: Mapping[str, Any], timeout: float | None = None,
                min_interval_s: float = 0.0, count_retries: bool = True) -> list[str]:
    """The wait before every retry: within ``[d/2, d]`` (equal jitter), or ``[R, R + d]`` after a
    ``Retry-After: R``, widened by the tolerances; never more than ``max_retries`` retries a provider.

    A wait runs from the end of the failed attempt (for a hang: its start + ``timeout``) to the start
    of the retry. A wait stretched by ``min_interval_s`` is accepted up to that interval.
    ``count_retries=False`` leaves the retry count to :func:`judge_sequence`.
    """
    problems: list[str] = []
    numbers = _retry_numbers(requests)
    allowance = _allowances(requests, backoff_base=backoff_base, backoff_max=backoff_max,
                            min_interval_s=min_interval_s)
    uncut = _uncut(requests, timeout, thresholds, allowance=allowance, t_returned=None)
    retry_slack = overhead(thresholds)
    waits: list[tuple[int, float, float, float]] = []   # (n, wait, lo, hi) of plain backoff waits
    counted: set[str] = set()
    for i in range(len(requests) - 1):
        prev, nxt = requests[i], requests[i + 1]
        if nxt.provider != prev.provider:
            continue
        n = numbers[i + 1]
        if n > max_retries:
            if count_retries and prev.provider not in counted:
                counted.add(prev.provider)
                problems.append(
                    f"{prev.provider!r} was retried {n} times in a row (or more) but max_retries="
                    f"{max_retries}: at most {_n(max_retries, 'retry')} after the first try")
            continue
        if prev.kind != "retry" or prev.retry_later_too_long or i in uncut:
            continue  # a retry the policy forbids: judge_sequence says so
        lo, hi, d = _wait_bounds(prev, n, backoff_base=backoff_base, backoff_max=backoff_max)
        wait = nxt.t_start - prev.end(timeout)
        interval_hi = prev.t_start + float(min_interval_s or 0.0) - prev.end(timeout)
        slack = timeout_overhead(thresholds) if prev.hang else retry_slack
        upper = max(hi, interval_hi) + tolerance(hi, thresholds) + slack
        lower = lo - tolerance(lo, thresholds)
        rule = f"d = min(backoff_max, backoff_base·2^{n - 1}) = {d:.3f} s"
        if prev.retry_after_s is not None:
            if wait < lower or wait > upper:
                side = "less than the Retry-After time" if wait < lower else "more than Retry-After + d"
                problems.append(
                    f"after {prev.label()} your function retried after {wait:.3f} s, {side}; "
                    f"honour Retry-After: wait at least {lo:g} s and at most Retry-After + d = {hi:.3f} s "
                    f"({rule}) before retry {n}")
            continue
        waits.append((n, wait, lo, hi))
        if wait < lower:
            what = "without waiting" if wait < min(lower, 0.005) else f"after only {wait:.3f} s"
            problems.append(
                f"retry {n} of {prev.provider!r} (after {prev.describe()}) started {what}; before the "
                f"n-th retry wait a random time in [d/2, d] = [{lo:.3f}, {hi:.3f}] s with {rule} "
                "(exponential backoff with equal jitter)")
        elif wait > upper:
            problems.append(
                f"retry {n} of {prev.provider!r} (after {prev.describe()}) started after {wait:.3f} s, longer "
                f"than d = {hi:.3f} s; wait a random time in [d/2, d] = [{lo:.3f}, {hi:.3f}] s with {rule} "
                "— d doubles with each retry but never exceeds backoff_max")
    if problems and len(waits) >= 2:
        values = [w for _, w, _, _ in waits]
        spread = max(values) - min(values)
        if spread <= max(tolerance(max(values), thresholds), 0.1 * max(values)):
            mean = sum(values) / len(values)
            if mean < 0.005:
                lead = "your function retried without any wait (no backoff)"
            else:
                lead = f"the waits before your retries were all about {mean:.3f} s: a fixed sleep"
            problems.insert(0, f"{lead}; the wait must grow exponentially — d = min(backoff_max, "
                               "backoff_base·2^(n-1)) for the n-th retry — with equal jitter: "
                               "random.uniform(d/2, d)")
    return problems


def judge_min_interval(requests: Sequence[Request], *, min_interval_s: float,
                       thresholds: Mapping[str, Any]) -> list[str]:
    """Any two requests (across providers) start at least ``min_interval_s`` apart, as the provider saw
    them start (less the tolerance and :func:`~grading.judges.failover.policy.arrival_jitter`)."""
    if not min_interval_s or min_interval_s <= 0:
        return []
    lower = float(min_interval_s) - tolerance(min_interval_s, thresholds) - arrival_jitter(min_interval_s, thresholds)
    closest = None
    count = 0
    for a, b in zip(requests, requests[1:]):
        gap = b.t_start - a.t_start
        if gap < lower:
            count += 1
            if closest is None or gap < closest[0]:
                closest = (gap, a, b)
    if closest is None:
        return []
    gap, a, b = closest
    return [f"{count} pair(s) of requests started less than min_interval_s={min_interval_s:g} s apart, e.g. "
            f"request {a.index} ({a.provider}) and request {b.index} ({b.provider}) only {gap:.3f} s apart; "
            "min_interval_s is global, across providers: remember when the last request started and sleep "
            "the rest of the interval before every request (retries and failovers included)"]
