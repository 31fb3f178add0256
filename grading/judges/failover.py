"""The judge of a failover run (``failover.chat_with_failover``), from the simulator's request log.

The ground truth is what reached the providers: the Hugging Face simulator logs every request with
its provider, status, outcome (``ok`` | ``fault:<kind>`` | ``error:...``), ``t_start``/``t_end``
(``time.monotonic()`` in the grader) and ``extra.retry_after_s`` when a ``Retry-After`` was sent. The
policy judged is DESIGN.md's ("Contract details"):

* per provider, in the order given; ``max_retries`` counts retries after the first try;
* retried: timeouts, connection errors, malformed bodies, 408, 429 and 5xx;
* before the n-th retry wait within ``[d/2, d]``, ``d = min(backoff_max, backoff_base * 2**(n-1))``
  ("equal jitter"); after ``Retry-After: R`` wait within ``[R, R + d]``, or move on if ``R > 60``;
* 404/422 and every other 4xx but 408/429: no retry, next provider; 401/403: never retried (stopping
  at once and trying the next provider are both accepted);
* ``min_interval_s`` between the starts of ANY two requests, across providers;
* every attempt listed in ``attempts``, in order.

Every judge is a pure function (no I/O, no clock): it takes plain data and returns a list of problems
in words a student can act on (empty: nothing wrong). A wait is measured from the end of the previous
answer as the simulator sent it to the start of the next request as it arrived, so the student's own
client overhead (a few ms: building a client, parsing an error) only ever *adds* to a measured wait:
lower bounds get the thresholds' tolerance ``max(timing_abs_s, timing_rel * x)``, upper bounds that
plus ``retry_overhead_s`` (``client_overhead_s`` for a reported ``elapsed_s``). A request that got no
answer (a hang) "ends" when the client's per-attempt timeout cut it: ``t_start + timeout``.

Usage::

    requests = chat_requests(hf_sim.log.records(), since=t0)
    problems = judge_run(requests, providers=["a", "b"], max_retries=2, backoff_base=0.05,
                         backoff_max=0.2, timeout=0.5, min_interval_s=0.0, thresholds=thresholds,
                         attempts=result["attempts"], raised=False)

Records may be :class:`grading.sims.log.RequestRecord` objects or their ``to_dict()`` form.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

__all__ = [
    "CHAT_ROUTES",
    "RETRY_AFTER_LIMIT_S",
    "Request",
    "chat_requests",
    "backoff_d",
    "tolerance",
    "overhead",
    "judge_sequence",
    "judge_waits",
    "judge_timeouts",
    "judge_min_interval",
    "judge_attempts",
    "judge_failure_message",
    "judge_result",
    "judge_token",
    "judge_run",
    "summary",
]

#: the log's ``extra["route"]`` values of a chat request (the Hub's mapping lookups are not attempts)
CHAT_ROUTES = frozenset({"provider-chat", "router-chat"})
RETRY_AFTER_LIMIT_S = 60.0
DEFAULT_ABS_S = 0.010
DEFAULT_REL = 0.05
DEFAULT_RETRY_OVERHEAD_S = 0.030
DEFAULT_CLIENT_OVERHEAD_S = 0.25
ATTEMPT_KEYS = ("provider", "ok", "status", "error", "elapsed_s")
RESULT_KEYS = ("text", "model", "provider", "latency_s", "usage", "attempts")
_POLICY = ("the policy: retry timeouts, connection errors, malformed bodies, 408, 429 and 5xx up to "
           "max_retries times; no retry on 401/403/404/422 (and other 4xx); then the next provider")


# -- tolerances ------------------------------------------------------------------------------------
def tolerance(truth: float, thresholds: Mapping[str, Any]) -> float:
    """The allowed distance from ``truth``: max(timing_abs_s, timing_rel x |truth|)."""
    abs_s = float(thresholds.get("timing_abs_s", DEFAULT_ABS_S))
    rel = float(thresholds.get("timing_rel", DEFAULT_REL))
    return max(abs_s, rel * abs(float(truth)))


def overhead(thresholds: Mapping[str, Any]) -> float:
    """Client-side time a correct solution spends between a failed answer and its next request (handling
    the error, building the next call): added to the upper bounds of waits only (``retry_overhead_s``)."""
    return float(thresholds.get("retry_overhead_s", DEFAULT_RETRY_OVERHEAD_S))


def client_overhead(thresholds: Mapping[str, Any]) -> float:
    """Client-side time inside a measured attempt (connecting, the Hub's provider-mapping lookup):
    added to the upper bound of ``elapsed_s`` only (``client_overhead_s``)."""
    return float(thresholds.get("client_overhead_s", DEFAULT_CLIENT_OVERHEAD_S))


def backoff_d(n: int, backoff_base: float, backoff_max: float) -> float:
    """``d`` of the n-th retry (n = 1, 2, ...): min(backoff_max, backoff_base * 2**(n-1))."""
    return min(float(backoff_max), float(backoff_base) * 2.0 ** (n - 1))


# -- the log ------------------------------------------------------------------------------------------
def _field(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


@dataclass(frozen=True)
class Request:
    """One chat request as the simulator saw it (``index`` counts from 1 within the run)."""

    index: int
    provider: str
    status: int | None
    outcome: str
    t_start: float
    t_end: float | None
    retry_after_s: float | None = None

    @property
    def answered(self) -> bool:
        """Did the provider send a status line (False for a hang or a reset)?"""
        return self.status is not None

    @property
    def hang(self) -> bool:
        return self.outcome == "fault:hang" or (self.status is None and self.t_end is None)

    @property
    def kind(self) -> str:
        """``ok`` | ``retry`` | ``auth`` (401/403) | ``client`` (other 4xx but 408/429)."""
        if self.outcome.startswith("fault:malformed"):
            return "retry"
        if self.status is None:
            return "retry"
        if 200 <= self.status < 300:
            return "ok" if self.outcome in ("ok", "fault:slow") else "retry"
        if self.status in (401, 403):
            return "auth"
        if self.status in (408, 429) or self.status >= 500:
            return "retry"
        if 400 <= self.status < 500:
            return "client"
        return "retry"

    @property
    def retry_later_too_long(self) -> bool:
        """A retryable answer whose Retry-After is over the limit: move on, do not wait."""
        return (self.kind == "retry" and self.retry_after_s is not None
                and self.retry_after_s > RETRY_AFTER_LIMIT_S)

    @property
    def unscripted_error(self) -> bool:
        """The simulator itself refused the request (a malformed call), not a scripted fault."""
        return self.outcome.startswith("error:http_") and self.status is not None and self.status >= 400

    def end(self, timeout: float | None) -> float:
        """When the client saw this attempt end: the answer's end, or the per-attempt timeout."""
        if self.t_end is not None and (self.answered or timeout is None or
                                       self.t_end - self.t_start <= float(timeout)):
            return self.t_end
        if timeout is not None:
            return self.t_start + float(timeout)
        return self.t_start if self.t_end is None else self.t_end

    def describe(self) -> str:
        if self.outcome.startswith("fault:malformed"):
            return "a malformed body (HTTP 200 with broken JSON)"
        if self.status is None:
            if self.outcome == "fault:reset":
                return "a connection reset"
            return "no answer (the provider hung)"
        text = f"HTTP {self.status}"
        if self.retry_after_s is not None:
            text += f" with Retry-After: {self.retry_after_s:g}"
        return text

    def label(self) -> str:
        return f"request {self.index} ({self.provider}: {self.describe()})"


def _retry_after(record: Any) -> float | None:
    """``extra.retry_after_s``, else delta-seconds in the scripted fault's ``Retry-After`` header."""
    extra = _field(record, "extra") or {}
    if not isinstance(extra, Mapping):
        return None
    value = extra.get("retry_after_s")
    if value is None:
        fault = extra.get("fault")
        headers = fault.get("headers") if isinstance(fault, Mapping) else None
        if isinstance(headers, Mapping):
            value = next((v for k, v in headers.items() if str(k).lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def chat_requests(records: Iterable[Any], *, since: float | None = None,
                  until: float | None = None) -> list[Request]:
    """The chat requests among ``records`` that started in ``[since, until]``, in order of arrival.

    Records without a route (a fake log) count as chat requests; the Hub's model-mapping lookups,
    image routes and other services' records do not.
    """
    chosen = []
    for record in records:
        service = _field(record, "service")
        if service not in (None, "hf"):
            continue
        extra = _field(record, "extra") or {}
        route = extra.get("route") if isinstance(extra, Mapping) else None
        if route is not None and route not in CHAT_ROUTES:
            continue
        start = _field(record, "t_start")
        if start is None or (since is not None and start < since) or (until is not None and start > until):
            continue
        chosen.append(record)
    chosen.sort(key=lambda r: float(_field(r, "t_start")))
    out = []
    for i, record in enumerate(chosen, 1):
        status = _field(record, "status")
        end = _field(record, "t_end")
        out.append(Request(index=i, provider=str(_field(record, "provider")),
                           status=None if status is None else int(status),
                           outcome=str(_field(record, "outcome") or "ok"),
                           t_start=float(_field(record, "t_start")),
                           t_end=None if end is None else float(end),
                           retry_after_s=_retry_after(record)))
    return out


def summary(requests: Sequence[Request], limit: int = 12) -> str:
    """``a: HTTP 503, a: HTTP 503, b: HTTP 200`` — what the providers saw, for messages."""
    parts = [f"{r.provider}: {r.describe()}" for r in requests[:limit]]
    if len(requests) > limit:
        parts.append(f"… {len(requests) - limit} more")
    return ", ".join(parts) if parts else "no request at all"


def _n(count: int, word: str) -> str:
    """``1 retry``, ``2 retries``, ``3 requests``."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def _retry_numbers(requests: Sequence[Request]) -> list[int]:
    """For each request, how many requests to the same provider came right before it (0 = first try)."""
    numbers = []
    for i, req in enumerate(requests):
        numbers.append(numbers[-1] + 1 if i and requests[i - 1].provider == req.provider else 0)
    return numbers


# -- which requests were made --------------------------------------------------------------------------
def judge_sequence(requests: Sequence[Request], *, providers: Sequence[str], max_retries: int,
                   raised: bool | None = None) -> list[str]:
    """The order of requests against the policy: retries, no retries, failover, stopping.

    Reports the first place where the run leaves the policy (what follows it is a consequence), plus
    requests the simulator itself refused, and whether returning/raising fits the last answer.
    """
    providers = list(providers)
    problems: list[str] = []
    for req in requests:
        if req.unscripted_error:
            problems.append(
                f"{req.label()}: the provider refused the request itself (not a scripted fault); "
                "send a valid chat completion request (the model id as given, messages as a list of "
                "{role, content} dicts)")
            return problems
    if not requests:
        return ["your function made no chat request to any provider; it must call the providers, in "
                f"the order given ({', '.join(providers)})"]
    if requests[0].provider != providers[0]:
        return [f"the first request went to {requests[0].provider!r}; try the providers in the order "
                f"given: the first request must go to {providers[0]!r}"]
    tried = [providers[0]]
    retries = 0
    for i, req in enumerate(requests):
        p = req.provider
        position = providers.index(p) if p in providers else -1
        following = providers[position + 1] if 0 <= position < len(providers) - 1 else None
        last = i == len(requests) - 1
        nxt = None if last else requests[i + 1]
        if req.kind == "ok":
            if not last:
                return [f"{req.label()} answered, but your function made another request after that "
                        f"({nxt.label()}); return the first successful answer"]
            break
        # what the policy allows after this failed attempt
        may_retry = req.kind == "retry" and retries < max_retries and not req.retry_later_too_long
        if nxt is None:
            action = "stop"
        elif nxt.provider == p:
            action = "retry"
        elif nxt.provider == following:
            action = "next"
        else:
            action = "other"
        if action == "retry" and not may_retry:
            if req.kind == "auth":
                why = (f"{req.status} means the token is refused: never retry 401/403 — stop (raise "
                       "AllProvidersFailed) or try the next provider")
            elif req.kind == "client":
                why = (f"HTTP {req.status} cannot succeed on a retry (404/422 and other 4xx but 408/429): "
                       "move on to the next provider without retrying")
            elif req.retry_later_too_long:
                why = (f"Retry-After: {req.retry_after_s:g} s is more than {RETRY_AFTER_LIMIT_S:g} s: do "
                       "not wait (and do not retry sooner); move on to the next provider")
            else:
                run = 1
                while i + run < len(requests) and requests[i + run].provider == p:
                    run += 1
                total = retries + run
                why = (f"your function made {total} requests to {p!r} in a row ({_n(total - 1, 'retry')}) "
                       f"but max_retries={max_retries} allows at most {_n(max_retries, 'retry')} after the "
                       f"first try ({_n(max_retries + 1, 'request')}); then move on to the next provider")
            return [f"after {req.label()} your function retried {p!r} ({nxt.label()}); {why}"]
        if action == "retry":
            retries += 1
            continue
        if may_retry:
            where = {"stop": "gave up", "next": f"moved on to {nxt.provider!r}" if nxt else "",
                     "other": f"moved on to {nxt.provider!r}" if nxt else ""}[action]
            return [f"after {req.label()} your function {where} without retrying {p!r}; "
                    f"{req.describe()} is retryable: retry the same provider (with backoff) up to "
                    f"max_retries={max_retries} times ({retries} used so far) before moving on"]
        # the policy moves on (or may stop, after 401/403)
        if action == "other":
            if nxt.provider in tried:
                return [f"{nxt.label()} went back to {nxt.provider!r}, which was already tried; go "
                        "through the providers once, in the order given"]
            expected = repr(following) if following else "nothing (every provider was tried)"
            return [f"after {req.label()} your function went to {nxt.provider!r}; the next provider "
                    f"in the list is {expected} — try the providers in the order given"]
        if action == "stop" and following is not None and req.kind != "auth":
            if req.kind == "client":
                why = f"HTTP {req.status} means this provider cannot serve the request"
            elif req.retry_later_too_long:
                why = f"Retry-After: {req.retry_after_s:g} s is too long to wait"
            else:
                why = f"{p!r} was retried max_retries={max_retries} times"
            return [f"after {req.label()} your function stopped, but {following!r} was not tried yet: "
                    f"{why}; move on to the next provider in the list (failover)"]
        if action == "next":
            tried.append(nxt.provider)
            retries = 0
    final = requests[-1]
    if raised is True and final.kind == "ok":
        problems.append(f"{final.label()} answered, but your function raised instead of returning its "
                        "result")
    elif raised is False and final.kind != "ok":
        problems.append(f"no provider answered (the last was {final.label()}), but your function returned "
                        "instead of raising AllProvidersFailed")
    return problems


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
        limit = float(timeout) + allowance[i] + tolerance(timeout, thresholds) + overhead(thresholds)
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


def judge_timeouts(requests: Sequence[Request], *, timeout: float, thresholds: Mapping[str, Any],
                   backoff_base: float = 0.0, backoff_max: float = 0.0, min_interval_s: float = 0.0,
                   t_returned: float | None = None) -> list[str]:
    """Every request that got no answer is cut at the per-attempt ``timeout`` — not much later, not
    much sooner. ``t_returned``: when the call returned (judges a hang that was the last request)."""
    problems = []
    allowance = [_max_wait_after(requests, i, backoff_base=backoff_base, backoff_max=backoff_max,
                                 min_interval_s=min_interval_s) for i in range(len(requests))]
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
        if waited < float(timeout) - tolerance(timeout, thresholds):
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
    allowance = [_max_wait_after(requests, i, backoff_base=backoff_base, backoff_max=backoff_max,
                                 min_interval_s=min_interval_s) for i in range(len(requests))]
    uncut = _uncut(requests, timeout, thresholds, allowance=allowance, t_returned=None)
    slack = overhead(thresholds)
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
    """Any two requests (across providers) start at least ``min_interval_s`` apart."""
    if not min_interval_s or min_interval_s <= 0:
        return []
    lower = float(min_interval_s) - tolerance(min_interval_s, thresholds)
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


# -- what the student reported -----------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def judge_attempts(attempts: Any, requests: Sequence[Request], *, timeout: float | None,
                   thresholds: Mapping[str, Any], where: str = "result['attempts']") -> list[str]:
    """``attempts`` lists every request, in order: provider, ok, status (None without an answer;
    a malformed 200 may be 200 or None), and ``elapsed_s`` within the tolerances of the truth."""
    truth = f"the providers saw {len(requests)} request(s): {summary(requests)}"
    if not isinstance(attempts, list):
        return [f"{where} must be a list of dicts (one per request, in order), not "
                f"{type(attempts).__name__}; {truth}"]
    if len(attempts) != len(requests):
        return [f"{where} lists {len(attempts)} attempt(s), but {truth}; list every request you made, "
                "in order, one dict each"]
    problems = []
    slack = client_overhead(thresholds)
    for i, (attempt, req) in enumerate(zip(attempts, requests)):
        label = f"{where}[{i}]"
        if not isinstance(attempt, Mapping):
            problems.append(f"{label} must be a dict with keys {', '.join(ATTEMPT_KEYS)}, not "
                            f"{type(attempt).__name__}")
            continue
        missing = [k for k in ATTEMPT_KEYS if k not in attempt]
        if missing:
            problems.append(f"{label} lacks {', '.join(missing)}; every attempt needs "
                            f"{', '.join(ATTEMPT_KEYS)}")
            continue
        if attempt["provider"] != req.provider:
            problems.append(f"{label}['provider'] is {attempt['provider']!r}, but {req.label()} went to "
                            f"{req.provider!r}; list the attempts in the order they were made")
            continue
        if req.outcome.startswith("fault:malformed"):
            allowed_status: tuple = (req.status, None)
        else:
            allowed_status = (req.status,)
        status = attempt["status"]
        if isinstance(status, bool) or status not in allowed_status:
            shown = "None (no HTTP answer)" if req.status is None else str(req.status)
            problems.append(f"{label}['status'] is {status!r}, but {req.label()} got {shown}; status is "
                            "the HTTP status of the answer, or None for a timeout or connection error")
        ok = req.kind == "ok"
        if attempt["ok"] is not ok:
            problems.append(f"{label}['ok'] is {attempt['ok']!r}, but {req.label()} "
                            f"{'succeeded' if ok else 'failed'}; ok must be {ok}")
        elapsed = attempt["elapsed_s"]
        server_s = None if req.t_end is None else req.t_end - req.t_start
        if req.answered and server_s is not None:
            shortest = longest = duration = server_s
        elif timeout is not None:
            # no answer: the client cut it at the timeout — or, without one, waited until the
            # provider closed the connection (judge_timeouts says so; the elapsed time is still true)
            shortest = min(float(timeout), server_s if server_s is not None else math.inf)
            longest = max(float(timeout), server_s if server_s is not None else 0.0)
            duration = shortest
        else:
            duration = None
        if not _is_number(elapsed):
            problems.append(f"{label}['elapsed_s'] must be a number of seconds, not {elapsed!r}")
        elif duration is not None:
            lo = shortest - tolerance(shortest, thresholds)
            hi = longest + tolerance(longest, thresholds) + slack
            if not lo <= elapsed <= hi:
                problems.append(
                    f"{label}['elapsed_s'] is {elapsed:.3f} s, but {req.label()} took {duration:.3f} s at the "
                    "provider; time each attempt on its own (from just before the request to its answer "
                    "or error), not the backoff waits or the whole call")
    return problems


def judge_failure_message(message: str, requests: Sequence[Request]) -> list[str]:
    """AllProvidersFailed's message lists every attempt: each provider, and each status as often as
    it was answered."""
    text = str(message or "")
    missing = [p for p in dict.fromkeys(r.provider for r in requests)
               if not re.search(rf"(?<![\w-]){re.escape(p)}(?![\w-])", text)]
    problems = []
    if missing:
        problems.append(f"the AllProvidersFailed message does not name {', '.join(map(repr, missing))}; "
                        f"list every attempt (provider, status, error) — the providers saw: "
                        f"{summary(requests)}")
    counts: dict[int, int] = {}
    for req in requests:
        if req.status is not None:
            counts[req.status] = counts.get(req.status, 0) + 1
    short = [f"HTTP {s} ({n}×)" for s, n in sorted(counts.items())
             if len(re.findall(rf"(?<!\d){s}(?!\d)", text)) < n]
    if short:
        problems.append(f"the AllProvidersFailed message does not show every attempt's status: "
                        f"{', '.join(short)} missing; list every attempt, one per line, e.g. "
                        f"'1. {requests[0].provider}: HTTP {requests[0].status} …' — the providers saw: "
                        f"{summary(requests)}")
    return problems


def judge_result(result: Any, requests: Sequence[Request], *, model: str) -> list[str]:
    """A successful call returns the chat keys plus ``attempts``; ``provider`` is the one that answered."""
    if not isinstance(result, Mapping):
        return [f"chat_with_failover returned {type(result).__name__}; it must return a dict with keys "
                f"{', '.join(RESULT_KEYS)}"]
    missing = [k for k in RESULT_KEYS if k not in result]
    if missing:
        return [f"the result lacks {', '.join(missing)}; return the keys of hf_chat.chat (text, model, "
                "provider, latency_s, usage) plus attempts"]
    problems = []
    answered = [r for r in requests if r.kind == "ok"]
    if answered and result["provider"] != answered[-1].provider:
        problems.append(f"result['provider'] is {result['provider']!r}, but {answered[-1].label()} is the "
                        "one that answered; provider is the provider that answered")
    if result["model"] != model:
        problems.append(f"result['model'] is {result['model']!r}; it must be the model asked for, {model!r}")
    if not isinstance(result["text"], str) or not result["text"]:
        problems.append(f"result['text'] is {result['text']!r}; it must be the answer's text")
    return problems


def judge_token(records: Iterable[Any], token: str, *, show: str = "the token") -> list[str]:
    """Every request carries ``Authorization: Bearer <token>``, and no URL (path or query) holds it."""
    problems: list[str] = []
    wrong = in_url = 0
    first_wrong = first_url = None
    n = 0
    for record in records:
        n += 1
        headers = _field(record, "headers") or {}
        auth = None
        if isinstance(headers, Mapping):
            auth = next((v for k, v in headers.items() if str(k).lower() == "authorization"), None)
        if auth != f"Bearer {token}":
            wrong += 1
            if first_wrong is None:
                what = ("no Authorization header" if auth is None
                        else "an Authorization header that is not 'Bearer ' + the token" if token not in str(auth)
                        else "the token in a malformed Authorization header")
                first_wrong = f"{_field(record, 'method')} {_field(record, 'path')} had {what}"
        query = _field(record, "query") or {}
        url_text = str(_field(record, "path") or "") + " " + " ".join(
            f"{k}={v}" for k, v in (query.items() if isinstance(query, Mapping) else []))
        if token in url_text:
            in_url += 1
            if first_url is None:
                first_url = f"{_field(record, 'method')} {_field(record, 'path')}"
    if n == 0:
        return ["no request reached the providers, so the token could not be checked"]
    if wrong:
        problems.append(f"{wrong} of {n} request(s) did not send {show} as 'Authorization: Bearer <token>' "
                        f"(e.g. {first_wrong}); pass the token to the client (InferenceClient(api_key=...), "
                        "OpenAI(api_key=...)) on every attempt")
    if in_url:
        problems.append(f"{in_url} request(s) put {show} in the URL (e.g. {first_url}); a URL ends up in "
                        "logs and proxies — send the token only in the Authorization header")
    return problems


def judge_run(requests: Sequence[Request], *, providers: Sequence[str], max_retries: int,
              backoff_base: float, backoff_max: float, timeout: float | None, min_interval_s: float,
              thresholds: Mapping[str, Any], attempts: Any = None, raised: bool | None = None,
              t_returned: float | None = None) -> list[str]:
    """Every judge above on one run (attempts only when given: an exception carries none across)."""
    problems = judge_sequence(requests, providers=providers, max_retries=max_retries, raised=raised)
    if timeout is not None:
        problems += judge_timeouts(requests, timeout=timeout, thresholds=thresholds, backoff_base=backoff_base,
                                   backoff_max=backoff_max, min_interval_s=min_interval_s, t_returned=t_returned)
    problems += [p for p in judge_waits(requests, backoff_base=backoff_base, backoff_max=backoff_max,
                                        max_retries=max_retries, thresholds=thresholds, timeout=timeout,
                                        min_interval_s=min_interval_s, count_retries=False)]
    problems += judge_min_interval(requests, min_interval_s=min_interval_s, thresholds=thresholds)
    if attempts is not None:
        problems += judge_attempts(attempts, requests, timeout=timeout, thresholds=thresholds)
    return problems
