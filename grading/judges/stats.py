"""Latency statistics and the judge of one measured provider (``provider_strategies``; reusable).

The ground truth of a latency measurement is the simulator's log of the very requests the student
made: ``t_end - t_start`` of each logged request (the student's own clock also holds a little client
overhead, which the tolerances absorb). Statistics follow DESIGN.md: percentiles by linear
interpolation (numpy's default), the mean, and the population *or* sample standard deviation (both
accepted; 0.0 for a single value), computed over the successful requests only.

Usage::

    truth = latency_stats([0.101, 0.134, 0.118])      # {"n": 3, "p50": 0.118, ...}
    within(0.121, truth["p50"], thresholds)           # |0.121 - 0.118| <= max(10 ms, 5 %)
    problems = judge_provider_row(row, records, thresholds, runs=5)
    problems += judge_ranking({"together": 0.12, ...}, {"together": 0.118, ...}, thresholds)

Records may be :class:`grading.sims.log.RequestRecord` objects or their ``to_dict()`` form.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "STAT_KEYS",
    "latency_stats",
    "tolerance",
    "within",
    "spread_within",
    "client_overhead",
    "record_succeeded",
    "field_of",
    "is_number",
    "record_duration",
    "truth_of",
    "judge_provider_row",
    "judge_ranking",
    "fmt_s",
]

#: the contract's statistic keys and the :func:`latency_stats` entry each is judged against
STAT_KEYS: dict[str, str] = {
    "latency_p50_s": "p50",
    "latency_p95_s": "p95",
    "latency_mean_s": "mean",
    "latency_stdev_s": "stdev",
}
DEFAULT_ABS_S = 0.010
DEFAULT_REL = 0.05
# Outcomes of a request that still answered normally: a "slow" fault only delays the answer.
_SUCCESS_OUTCOMES = ("ok", "fault:slow")


# -- statistics ------------------------------------------------------------------------------------
def latency_stats(durations: Iterable[float]) -> dict[str, Any]:
    """``n, p50, p95, mean, stdev_pop, stdev_sample, min, max`` of ``durations`` (seconds).

    Percentiles by linear interpolation (``numpy.percentile``'s default). ``stdev_sample`` is 0.0 for
    one value (as the contract asks of a single success). With no durations every statistic is None.
    """
    values = [float(d) for d in durations]
    if not values:
        return {"n": 0, "p50": None, "p95": None, "mean": None, "stdev_pop": None, "stdev_sample": None,
                "min": None, "max": None}
    arr = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "mean": float(np.mean(arr)),
        "stdev_pop": float(np.std(arr)),
        "stdev_sample": float(np.std(arr, ddof=1)) if len(values) > 1 else 0.0,
        "min": float(np.min(arr)),
        "max": float(np.max(arr)),
    }


def tolerance(truth: float, thresholds: Mapping[str, Any]) -> float:
    """The allowed distance from ``truth``: max(timing_abs_s, timing_rel x |truth|)."""
    abs_s = float(thresholds.get("timing_abs_s", DEFAULT_ABS_S))
    rel = float(thresholds.get("timing_rel", DEFAULT_REL))
    return max(abs_s, rel * abs(float(truth)))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return _is_number(value)


def within(value: Any, truth: float, thresholds: Mapping[str, Any], *, overhead_s: float = 0.0) -> bool:
    """True when ``value`` is a finite number no farther from ``truth`` than :func:`tolerance`.

    ``overhead_s`` widens the window upwards only: ``truth - tol <= value <= truth + tol + overhead_s``
    (a time measured by a client holds the server's time plus the client's own overhead).
    """
    if not _is_number(value):
        return False
    tol = tolerance(truth, thresholds)
    return -tol - 1e-12 <= float(value) - float(truth) <= tol + float(overhead_s) + 1e-12


def client_overhead(thresholds: Mapping[str, Any]) -> float:
    """Seconds of client overhead a timed request may carry (``stats_client_overhead_s``, default 0)."""
    return float(thresholds.get("stats_client_overhead_s", 0.0))


def spread_within(value: Any, truth: float, thresholds: Mapping[str, Any]) -> bool:
    """A standard deviation against the log's: the tolerance plus half the client overhead, both ways.

    Adding per-request overheads within [0, a] to durations moves their standard deviation by at
    most the overheads' own standard deviation, which is at most a/2 (population).
    """
    if not _is_number(value):
        return False
    limit = tolerance(truth, thresholds) + client_overhead(thresholds) / 2
    return abs(float(value) - float(truth)) <= limit + 1e-12


def fmt_s(value: Any) -> str:
    """A reported value for a message: seconds with millisecond precision, else its repr."""
    if _is_number(value):
        return f"{float(value):.3f} s"
    return repr(value)


# -- log records -------------------------------------------------------------------------------------
def _field(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def field_of(record: Any, name: str) -> Any:
    """A field of a log record, whether a :class:`RequestRecord` or its ``to_dict()`` form (None if absent)."""
    return _field(record, name)


def record_succeeded(record: Any) -> bool:
    """Did this logged request get a normal, complete 2xx answer (what a client sees as success)?

    A scripted or random fault (5xx, 429, reset, hang, a malformed 200) is a failure; a ``slow``
    fault only delays a normal answer, so it is a success.
    """
    status = _field(record, "status")
    outcome = _field(record, "outcome") or "ok"
    return status is not None and 200 <= int(status) < 300 and outcome in _SUCCESS_OUTCOMES


def record_duration(record: Any) -> float | None:
    """``t_end - t_start`` in seconds (None if the request never ended)."""
    start, end = _field(record, "t_start"), _field(record, "t_end")
    if start is None or end is None:
        return None
    return float(end) - float(start)


def truth_of(records: Sequence[Any]) -> dict[str, Any]:
    """What the log says about one provider's requests: counts and the stats of the successful ones."""
    ok = [r for r in records if record_succeeded(r)]
    durations = [d for d in (record_duration(r) for r in ok) if d is not None]
    return {"requests": len(records), "successes": len(ok), "failures": len(records) - len(ok),
            "durations": durations, "stats": latency_stats(durations)}


# -- judging one row ----------------------------------------------------------------------------------
def _count_problems(row: Mapping[str, Any], label: str, truth: dict[str, Any], runs: int | None,
                    check_requests: bool, check_counts: bool) -> list[str]:
    problems: list[str] = []
    sent = truth["requests"]
    expected_runs = sent if runs is None else int(runs)
    if check_requests and runs is not None and sent != runs:
        if sent > runs:
            problems.append(
                f"{label}: {sent} requests reached the provider for runs={runs} ({truth['failures']} of them "
                f"failed; you report failures={row.get('failures')!r}); exactly {runs} are expected, one per run. "
                "Did you retry failed runs? A failed run counts as a failure and is never repeated (and the "
                "openai client retries by itself unless you pass max_retries=0)")
        else:
            problems.append(
                f"{label}: only {sent} requests reached the provider for runs={runs}; make exactly one "
                "request per run, every run (do not stop after a failure, do not reuse an earlier answer)")
    if not check_counts:
        return problems
    true_ok = truth["successes"]
    expected = {"runs": expected_runs, "successes": true_ok, "failures": expected_runs - true_ok,
                "success_rate": true_ok / expected_runs if expected_runs else None}
    wrong = []
    for key, want in expected.items():
        have = row.get(key)
        if key == "success_rate":
            ok = want is None or (_is_number(have) and abs(float(have) - want) <= 1e-9)
        else:
            ok = isinstance(have, int) and not isinstance(have, bool) and have == want
        if not ok:
            wrong.append(key)
    if not wrong:
        return problems
    successes = row.get("successes")
    if "successes" not in wrong:
        hint = ("failures = runs - successes and success_rate = successes / runs (a fraction between 0 and 1, "
                "not a percentage)")
    elif not isinstance(successes, int) or isinstance(successes, bool):
        hint = "successes is the number of runs that got an answer (an int)"
    elif successes > true_ok and sent > expected_runs:
        hint = ("success count differs: did you retry? A run that failed stays a failure, even if a retry "
                "worked")
    elif successes > true_ok:
        hint = ("success count differs: a run whose request failed (an HTTP error, a dropped connection, a "
                "malformed body, a timeout) must count as a failure, not a success")
    else:
        hint = ("success count differs: a run that got a normal answer is a success; only the runs that raised "
                "are failures")
    have = ", ".join(f"{k}={row.get(k)!r}" for k in wrong)
    want = ", ".join(f"{k}={expected[k]!r:.4}" if k == "success_rate" else f"{k}={expected[k]!r}" for k in wrong)
    problems.append(f"{label}: you report {have}, but the provider answered {true_ok} of the {sent} requests it "
                    f"got (runs={expected_runs}), so {want}; {hint}")
    return problems


def _stat_problems(row: Mapping[str, Any], label: str, truth: dict[str, Any],
                   thresholds: Mapping[str, Any]) -> list[str]:
    stats = truth["stats"]
    n = stats["n"]
    if n == 0:
        bad = [key for key in STAT_KEYS if row.get(key) is not None]
        if bad:
            return [f"{label}: no request succeeded, so there is no latency to summarise: "
                    f"{', '.join(bad)} must be None (you reported "
                    f"{', '.join(f'{k}={row.get(k)!r}' for k in bad)})"]
        return []
    missing = [key for key in STAT_KEYS if not _is_number(row.get(key))]
    if missing:
        return [f"{label}: {', '.join(f'{k}={row.get(k)!r}' for k in missing)}; with {n} successful runs each "
                "latency statistic must be a number of seconds (None only when nothing succeeded)"]
    p50, p95, mean, stdev = (float(row[k]) for k in STAT_KEYS)
    over = client_overhead(thresholds)
    stdev_ok = (spread_within(stdev, stats["stdev_pop"], thresholds)
                or spread_within(stdev, stats["stdev_sample"], thresholds))
    checks = {"latency_p50_s": within(p50, stats["p50"], thresholds, overhead_s=over),
              "latency_p95_s": within(p95, stats["p95"], thresholds, overhead_s=over),
              "latency_mean_s": within(mean, stats["mean"], thresholds, overhead_s=over),
              "latency_stdev_s": stdev_ok}
    wrong = [key for key, ok in checks.items() if not ok]
    if not wrong:
        return []

    def truth_text(key: str) -> str:
        if key == "latency_stdev_s":
            limit = tolerance(stats["stdev_pop"], thresholds) + over / 2
            return (f"{fmt_s(stats['stdev_pop'])} population or {fmt_s(stats['stdev_sample'])} sample, "
                    f"±{limit * 1000:.0f} ms")
        value = stats[STAT_KEYS[key]]
        tol = tolerance(value, thresholds)
        if over:
            return f"{fmt_s(value)}, accepted {value - tol:.3f}–{value + tol + over:.3f} s"
        return f"{fmt_s(value)} ±{tol * 1000:.0f} ms"

    found = "; ".join(f"{key} {fmt_s(row[key])} (log: {truth_text(key)})" for key in wrong)
    true_spread = stats["stdev_pop"]
    true_range = stats["max"] - stats["min"]
    if abs(stdev) < 1e-9 and (not spread_within(0.0, true_spread, thresholds)
                              or true_range > tolerance(stats["max"], thresholds) + over):
        hint = (f"latencies look constant, but the requests really took {fmt_s(stats['min'])} to "
                f"{fmt_s(stats['max'])}: time every request on its own (time.perf_counter() right before and "
                "right after the call) and compute the statistics from those measurements")
    elif mean > 1.25 * stats["mean"] + tolerance(stats["mean"], thresholds) + over:
        hint = ("your latencies are much longer than the requests took: time each request on its own — start "
                "the clock right before the call and stop it right after — not all runs together or since the "
                "first run")
    elif ("latency_p95_s" in wrong and within(p95, stats["p50"], thresholds, overhead_s=over)
          and not within(stats["p95"], stats["p50"], thresholds, overhead_s=over)):
        hint = ("your p95 equals your p50: did you compute percentiles? use numpy.percentile(latencies, 95), "
                "linear interpolation")
    elif ("latency_p95_s" in wrong and within(p95, stats["max"], thresholds, overhead_s=over)
          and not within(stats["max"], stats["p95"], thresholds, overhead_s=over)):
        hint = ("your p95 is the slowest run: the 95th percentile interpolates linearly between the two "
                "slowest runs here, numpy.percentile(latencies, 95)")
    elif ("latency_p50_s" in wrong and p50 > stats["p50"]) or ("latency_mean_s" in wrong and mean > stats["mean"]):
        hint = ("your times are longer than the provider took: time the request only — create the client and "
                "import what you need before starting the clock")
    elif wrong == ["latency_stdev_s"] and stdev > stats["stdev_sample"]:
        hint = ("is one run much slower than the provider took it (e.g. the first, with an import or a "
                "connection set-up inside the timing)?")
    else:
        hint = ("statistics over the successful runs only: p50 and p95 by linear interpolation "
                "(numpy.percentile), the mean, the standard deviation (numpy.std or statistics.stdev)")
    return [f"{label}, {n} successful run{'s' if n != 1 else ''}: {found}; {hint}"]


def judge_provider_row(row: Any, logged_records: Sequence[Any], thresholds: Mapping[str, Any], *,
                       runs: int | None = None, label: str | None = None,
                       check_requests: bool = True, check_counts: bool = True,
                       check_stats: bool = True) -> list[str]:
    """Problems with one ``compare_providers`` result row, judged against the log of its requests.

    ``logged_records`` are the provider's chat requests that this call made, in order. ``runs`` is the
    number of runs asked for (None: judged against the number of logged requests). ``label`` names the
    provider in messages (default: ``row["provider"]``). An empty list means the row is right.
    ``check_requests`` (exactly ``runs`` requests in the log), ``check_counts`` (``runs``,
    ``successes``, ``failures``, ``success_rate``) and ``check_stats`` (the latency statistics)
    select what is judged.
    """
    if not isinstance(row, Mapping):
        return [f"{label or 'a provider'}: its result is {type(row).__name__} {row!r:.80}, not a dict"]
    label = label or f"provider {row.get('provider')!r}"
    truth = truth_of(list(logged_records))
    problems: list[str] = []
    problems += _count_problems(row, label, truth, runs, check_requests, check_counts)
    if check_stats:
        problems += _stat_problems(row, label, truth, thresholds)
    return problems


# -- ranking ---------------------------------------------------------------------------------------
def judge_ranking(reported: Mapping[str, Any], truth: Mapping[str, float | None],
                  thresholds: Mapping[str, Any]) -> list[str]:
    """Problems with the order of providers by latency (e.g. p50), judged pair by pair.

    ``reported`` and ``truth`` map a provider label to its latency. Only pairs that the truth tells
    apart clearly (further apart than both tolerances and the client overhead together) are judged;
    providers with no truth (nothing succeeded) are left out. Each wrongly ordered pair is one problem.
    """
    labels = [name for name, value in truth.items() if value is not None]
    problems: list[str] = []
    for i, a in enumerate(labels):
        for b in labels[i + 1:]:
            ta, tb = float(truth[a]), float(truth[b])  # type: ignore[arg-type]
            if abs(ta - tb) <= tolerance(ta, thresholds) + tolerance(tb, thresholds) + client_overhead(thresholds):
                continue
            fast, slow = (a, b) if ta < tb else (b, a)
            rf, rs = reported.get(fast), reported.get(slow)
            if not (_is_number(rf) and _is_number(rs)):
                problems.append(f"{fast} and {slow} cannot be ranked: their reported latencies are {rf!r} and "
                                f"{rs!r}")
            elif not float(rf) < float(rs):
                problems.append(f"you rank {slow} ({fmt_s(rs)}) as fast as or faster than {fast} ({fmt_s(rf)}), "
                                f"but {fast} was clearly faster ({fmt_s(truth[fast])} against "
                                f"{fmt_s(truth[slow])} in the providers' logs)")
    return problems
