"""The policy's numbers: the ``Retry-After`` limit, the backoff ``d`` of the n-th retry, and the
tolerances every timing judge applies (the thresholds' ``timing_abs_s``, ``timing_rel``,
``retry_overhead_s``, ``timeout_overhead_s``, ``arrival_jitter_s`` and ``client_overhead_s``)."""

from __future__ import annotations

from typing import Any, Mapping

from grading.judges.stats import tolerance

__all__ = ["RETRY_AFTER_LIMIT_S", "arrival_jitter", "backoff_d", "client_overhead", "overhead", "timeout_overhead",
           "tolerance"]

RETRY_AFTER_LIMIT_S = 60.0
DEFAULT_RETRY_OVERHEAD_S = 0.030
DEFAULT_CLIENT_OVERHEAD_S = 0.25
DEFAULT_TIMEOUT_OVERHEAD_S = 0.25
DEFAULT_ARRIVAL_JITTER_S = 0.05
_POLICY = ("the policy: retry timeouts, connection errors, malformed bodies, 408, 429 and 5xx up to "
           "max_retries times; no retry on 401/403/404/422 (and other 4xx); then the next provider")


# -- tolerances ------------------------------------------------------------------------------------
def overhead(thresholds: Mapping[str, Any]) -> float:
    """Client-side time a correct solution spends between a failed answer and its next request (handling
    the error, building the next call): added to the upper bounds of waits only (``retry_overhead_s``)."""
    return float(thresholds.get("retry_overhead_s", DEFAULT_RETRY_OVERHEAD_S))


def timeout_overhead(thresholds: Mapping[str, Any]) -> float:
    """Client-side time between a per-attempt timeout firing and the next request (the client raising
    and unwinding its timeout error; a busy machine's timer firing late): added to upper bounds after a
    hang instead of ``retry_overhead_s`` (``timeout_overhead_s``). A client without a timeout still
    waits the whole hang (seconds)."""
    return float(thresholds.get("timeout_overhead_s", DEFAULT_TIMEOUT_OVERHEAD_S))


def arrival_jitter(span_s: float, thresholds: Mapping[str, Any]) -> float:
    """How much shorter than the client made it a span between two request starts may look in the
    provider's log (``min_interval_s``; a hung attempt until the next request): a client's way from its
    own clock reading to the provider varies from request to request (``arrival_jitter_s``, at most a
    quarter of the span). Lower bounds only."""
    return min(float(thresholds.get("arrival_jitter_s", DEFAULT_ARRIVAL_JITTER_S)), 0.25 * span_s)


def client_overhead(thresholds: Mapping[str, Any]) -> float:
    """Client-side time inside a measured attempt (connecting, the Hub's provider-mapping lookup):
    added to the upper bound of ``elapsed_s`` only (``client_overhead_s``)."""
    return float(thresholds.get("client_overhead_s", DEFAULT_CLIENT_OVERHEAD_S))


def backoff_d(n: int, backoff_base: float, backoff_max: float) -> float:
    """``d`` of the n-th retry (n = 1, 2, ...): min(backoff_max, backoff_base * 2**(n-1))."""
    return min(float(backoff_max), float(backoff_base) * 2.0 ** (n - 1))
