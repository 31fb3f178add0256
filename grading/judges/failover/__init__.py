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
plus ``retry_overhead_s`` (``timeout_overhead_s`` after a hang, ``client_overhead_s`` for a reported
``elapsed_s``). A request that got no answer (a hang) "ends" when the client's per-attempt timeout cut
it: ``t_start + timeout``.

Usage::

    requests = chat_requests(hf_sim.log.records(), since=t0)
    problems = judge_run(requests, providers=["a", "b"], max_retries=2, backoff_base=0.05,
                         backoff_max=0.2, timeout=0.5, min_interval_s=0.0, thresholds=thresholds,
                         attempts=result["attempts"], raised=False)

Records may be :class:`grading.sims.log.RequestRecord` objects or their ``to_dict()`` form.

The package, one job a module: :mod:`.policy` (the policy's numbers, the backoff ``d`` and the timing
tolerances), :mod:`.timeline` (the log as :class:`Request` objects, and how they are named in
messages), :mod:`.sequence` (which requests were made), :mod:`.timing` (waits, timeouts and the
minimum interval), :mod:`.reported` (what the student reported: attempts, the result, the failure
message, the token); :func:`judge_run` runs them on one run.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from grading.judges.failover.policy import RETRY_AFTER_LIMIT_S, backoff_d, client_overhead, overhead, tolerance
from grading.judges.failover.reported import (ATTEMPT_KEYS, RESULT_KEYS, judge_attempts, judge_failure_message,
                                              judge_result, judge_token)
from grading.judges.failover.sequence import judge_sequence
from grading.judges.failover.timeline import CHAT_ROUTES, Request, chat_requests, summary
from grading.judges.failover.timing import judge_min_interval, judge_timeouts, judge_waits

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
