"""Property tests of ``grading.judges.stats``: the judge of measured latencies.

The judge must accept every honest measurement (the log's durations plus a little client overhead,
population or sample stdev, any order of runs) and reject fabricated, constant, shuffled-between-
providers, wrongly counted or wrongly summarised rows — with a hint that names the mistake.
"""

from __future__ import annotations

import random
import statistics

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from grading.judges.stats import (client_overhead, judge_provider_row, judge_ranking, latency_stats,
                                  record_duration, record_succeeded, spread_within, tolerance, truth_of, within)
from grading.rubric import load_thresholds
from grading.sims.log import RequestRecord

THRESHOLDS = load_thresholds()
ABS = THRESHOLDS["timing_abs_s"]
OVER = client_overhead(THRESHOLDS)     # the client overhead a timed request may carry

durations_st = st.lists(st.floats(0.02, 3.0, allow_nan=False), min_size=1, max_size=30)
spread_st = st.lists(st.floats(0.05, 1.0, allow_nan=False), min_size=3, max_size=12)


def make_records(durations, failures=(), start=100.0, gap=0.003):
    """Log records (dicts) of requests in order: a duration is a success, a status in ``failures``
    (inserted after the successes, at the positions given) a failure."""
    records, t = [], start
    items = [("ok", d) for d in durations]
    for position, status in failures:
        items.insert(min(position, len(items)), ("fail", status))
    for kind, value in items:
        if kind == "ok":
            records.append({"status": 200, "outcome": "ok", "t_start": t, "t_end": t + value})
            t += value + gap
        else:
            records.append({"status": value, "outcome": "fault:status", "t_start": t, "t_end": t + 0.002})
            t += 0.002 + gap
    return records


def honest_row(durations, *, runs, overhead=(), provider="together", ddof=0):
    """What a correct solution reports: stats of its own clock (log durations + client overhead)."""
    measured = [d + (overhead[i] if i < len(overhead) else 0.0) for i, d in enumerate(durations)]
    n = len(measured)
    row = {"provider": provider, "runs": runs, "successes": n, "failures": runs - n,
           "success_rate": n / runs}
    if n == 0:
        row.update(latency_p50_s=None, latency_p95_s=None, latency_mean_s=None, latency_stdev_s=None)
    else:
        arr = np.asarray(measured)
        row.update(latency_p50_s=float(np.percentile(arr, 50)), latency_p95_s=float(np.percentile(arr, 95)),
                   latency_mean_s=float(arr.mean()),
                   latency_stdev_s=float(np.std(arr, ddof=ddof)) if n > 1 else 0.0)
    return row


# -- statistics ------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(durations_st)
def test_stats_equal_numpy_and_statistics(durations):
    stats = latency_stats(durations)
    arr = np.asarray(durations)
    assert stats["n"] == len(durations)
    assert stats["p50"] == pytest.approx(float(np.percentile(arr, 50)), abs=1e-12)
    assert stats["p95"] == pytest.approx(float(np.percentile(arr, 95, method="linear")), abs=1e-12)
    assert stats["mean"] == pytest.approx(statistics.fmean(durations), abs=1e-12)
    assert stats["stdev_pop"] == pytest.approx(statistics.pstdev(durations), abs=1e-9)
    expected_sample = statistics.stdev(durations) if len(durations) > 1 else 0.0
    assert stats["stdev_sample"] == pytest.approx(expected_sample, abs=1e-9)
    assert stats["min"] <= stats["p50"] <= stats["p95"] <= stats["max"]
    assert latency_stats(random.Random(len(durations)).sample(durations, len(durations))) == pytest.approx(stats)


def test_stats_hand_computed():
    stats = latency_stats([0.1, 0.2, 0.3, 0.4, 1.0])
    assert stats["p50"] == pytest.approx(0.3)
    assert stats["p95"] == pytest.approx(0.4 + 0.8 * 0.6)    # rank 3.8: 0.8 of the way from 0.4 to 1.0
    assert stats["mean"] == pytest.approx(0.4)
    assert latency_stats([0.25]) == {"n": 1, "p50": 0.25, "p95": 0.25, "mean": 0.25, "stdev_pop": 0.0,
                                     "stdev_sample": 0.0, "min": 0.25, "max": 0.25}
    assert latency_stats([])["p50"] is None and latency_stats([])["n"] == 0


@settings(max_examples=200, deadline=None)
@given(truth=st.floats(0.0, 5.0), frac=st.floats(-1.0, 1.0))
def test_within_is_max_of_abs_and_rel(truth, frac):
    tol = max(ABS, THRESHOLDS["timing_rel"] * truth)
    assert tolerance(truth, THRESHOLDS) == pytest.approx(tol)
    assert within(truth + frac * tol * 0.999, truth, THRESHOLDS)
    assert not within(truth + (1.001 + abs(frac)) * tol, truth, THRESHOLDS)
    assert not within(truth - (1.001 + abs(frac)) * tol, truth, THRESHOLDS)


def test_client_overhead_is_configured_and_one_sided():
    assert 0 < OVER <= 0.05
    tol = tolerance(0.1, THRESHOLDS)
    assert within(0.1 + tol + OVER * 0.99, 0.1, THRESHOLDS, overhead_s=OVER)
    assert not within(0.1 + tol + OVER * 1.01, 0.1, THRESHOLDS, overhead_s=OVER)
    assert not within(0.1 - tol * 1.01, 0.1, THRESHOLDS, overhead_s=OVER)   # never faster than the server
    assert spread_within(0.05 + tol + OVER / 2 * 0.99, 0.05, THRESHOLDS)
    assert spread_within(0.05 - tol - OVER / 2 * 0.99, 0.05, THRESHOLDS)
    assert not spread_within(0.05 + tol + OVER / 2 * 1.01, 0.05, THRESHOLDS)
    assert client_overhead({}) == 0.0


@pytest.mark.parametrize("value", [None, "0.1", float("nan"), float("inf"), True, [0.1]])
def test_within_refuses_non_numbers(value):
    assert not within(value, 0.1, THRESHOLDS)


def test_records_success_and_duration():
    ok = RequestRecord(id=1, service="hf", t_wall=0.0, t_start=10.0, method="POST", path="/v1/chat/completions",
                       status=200, t_end=10.25)
    slow = {"status": 200, "outcome": "fault:slow", "t_start": 1.0, "t_end": 1.5}
    assert record_succeeded(ok) and record_duration(ok) == pytest.approx(0.25)
    assert record_succeeded(slow) and record_duration(slow) == pytest.approx(0.5)
    for failed in ({"status": 503, "outcome": "fault:status"}, {"status": 200, "outcome": "fault:malformed"},
                   {"status": None, "outcome": "fault:reset"}, {"status": 500, "outcome": "error:http_500"},
                   {"status": None, "outcome": "fault:hang"}):
        assert not record_succeeded(failed), failed
    truth = truth_of([ok, slow, {"status": 503, "outcome": "fault:status", "t_start": 2.0, "t_end": 2.001}])
    assert (truth["requests"], truth["successes"], truth["failures"]) == (3, 2, 1)
    assert truth["durations"] == pytest.approx([0.25, 0.5])


# -- honest rows pass ----------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(durations=durations_st, data=st.data(), ddof=st.sampled_from([0, 1]))
def test_honest_rows_pass(durations, data, ddof):
    """The log's durations plus up to the allowed client overhead each, in any order, either stdev."""
    failures = data.draw(st.lists(st.tuples(st.integers(0, 40), st.sampled_from([500, 503, 429])), max_size=5))
    overhead = data.draw(st.lists(st.floats(0.0, OVER), min_size=len(durations), max_size=len(durations)))
    runs = len(durations) + len(failures)
    order = data.draw(st.permutations(range(len(durations))))
    row = honest_row([durations[i] for i in order], runs=runs, overhead=overhead, ddof=ddof)
    records = make_records(durations, failures)
    assert judge_provider_row(row, records, THRESHOLDS, runs=runs) == []


def test_one_success_stdev_zero_and_no_success_none():
    records = make_records([0.2], failures=[(0, 503), (2, 503)])
    assert judge_provider_row(honest_row([0.2], runs=3), records, THRESHOLDS, runs=3) == []
    records = make_records([], failures=[(0, 503), (1, 500)])
    row = honest_row([], runs=2)
    assert judge_provider_row(row, records, THRESHOLDS, runs=2) == []
    row["latency_p50_s"] = 0.0
    [problem] = judge_provider_row(row, records, THRESHOLDS, runs=2)
    assert "no request succeeded" in problem and "must be None" in problem
    row = honest_row([0.1, 0.2, 0.3], runs=3)
    row["latency_stdev_s"] = None
    [problem] = judge_provider_row(row, make_records([0.1, 0.2, 0.3]), THRESHOLDS, runs=3)
    assert "latency_stdev_s=None" in problem and "must be a number" in problem


# -- dishonest rows fail ---------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(durations=spread_st, value=st.floats(0.01, 2.0))
def test_constant_rows_fail(durations, value):
    stats = latency_stats(durations)
    assume(stats["stdev_pop"] > 2 * (tolerance(stats["stdev_pop"], THRESHOLDS) + OVER))
    runs = len(durations)
    row = honest_row(durations, runs=runs)
    row.update(latency_p50_s=value, latency_p95_s=value, latency_mean_s=value, latency_stdev_s=0.0)
    problems = judge_provider_row(row, make_records(durations), THRESHOLDS, runs=runs)
    assert problems and "latencies look constant" in problems[0]


@settings(max_examples=200, deadline=None)
@given(durations=spread_st, seed=st.integers(0, 2**32 - 1))
def test_fabricated_rows_fail(durations, seed):
    """Statistics of other durations (another seed's, another provider's) fail unless they really agree."""
    rng = random.Random(seed)
    other = [max(0.001, d + rng.gauss(0, 0.2)) for d in durations]
    runs = len(durations)
    truth, fake = latency_stats(durations), latency_stats(other)
    row = honest_row(other, runs=runs, ddof=rng.choice([0, 1]))
    problems = judge_provider_row(row, make_records(durations), THRESHOLDS, runs=runs)
    agrees = all(within(fake[k], truth[k], THRESHOLDS, overhead_s=OVER) for k in ("p50", "p95", "mean")) and (
        spread_within(row["latency_stdev_s"], truth["stdev_pop"], THRESHOLDS)
        or spread_within(row["latency_stdev_s"], truth["stdev_sample"], THRESHOLDS))
    assert bool(problems) == (not agrees)


@settings(max_examples=200, deadline=None)
@given(durations=st.lists(st.floats(0.1, 1.0), min_size=3, max_size=12), factor=st.floats(2.0, 4.0))
def test_rows_of_another_provider_fail(durations, factor):
    """A row swapped with a slower provider's (every run ``factor`` times longer) is rejected."""
    runs = len(durations)
    row = honest_row([d * factor for d in durations], runs=runs)
    problems = judge_provider_row(row, make_records(durations), THRESHOLDS, runs=runs)
    assert any("latency_p50_s" in p for p in problems)
    assert any("latency_mean_s" in p for p in problems)


@settings(max_examples=200, deadline=None)
@given(durations=spread_st)
def test_p95_as_p50_or_max_fails_with_hint(durations):
    stats = latency_stats(durations)
    runs = len(durations)
    records = make_records(durations)
    row = honest_row(durations, runs=runs)
    row["latency_p95_s"] = row["latency_p50_s"]
    problems = judge_provider_row(row, records, THRESHOLDS, runs=runs)
    if within(stats["p50"], stats["p95"], THRESHOLDS, overhead_s=OVER):
        assert problems == []
    else:
        assert any("latency_p95_s " in p for p in problems)
        if not within(stats["p95"], stats["p50"], THRESHOLDS, overhead_s=OVER):
            assert any("your p95 equals your p50: did you compute percentiles?" in p for p in problems)
    row["latency_p95_s"] = stats["max"]
    problems = judge_provider_row(row, records, THRESHOLDS, runs=runs)
    if within(stats["max"], stats["p95"], THRESHOLDS, overhead_s=OVER):
        assert problems == []
    else:
        assert any("latency_p95_s " in p for p in problems)
        if not within(stats["max"], stats["p50"], THRESHOLDS, overhead_s=OVER):
            assert any("your p95 is the slowest run" in p for p in problems)


@settings(max_examples=100, deadline=None)
@given(durations=spread_st)
def test_time_since_first_run_fails(durations):
    """Cumulative time (the clock started once before all runs) instead of per-request latency."""
    runs = len(durations)
    cumulative = list(np.cumsum(durations))
    row = honest_row(durations, runs=runs)
    arr = np.asarray(cumulative)
    row.update(latency_p50_s=float(np.percentile(arr, 50)), latency_p95_s=float(np.percentile(arr, 95)),
               latency_mean_s=float(arr.mean()), latency_stdev_s=float(arr.std()))
    problems = judge_provider_row(row, make_records(durations), THRESHOLDS, runs=runs)
    assert problems
    assert any("latency_mean_s " in p for p in problems) == (
        not within(row["latency_mean_s"], np.mean(durations), THRESHOLDS, overhead_s=OVER))
    if row["latency_mean_s"] > 1.25 * np.mean(durations) + tolerance(np.mean(durations), THRESHOLDS) + OVER:
        assert any("much longer than the requests took" in p for p in problems)


def test_overhead_beyond_the_allowance_fails_with_hint():
    durations = [0.3, 0.32, 0.31, 0.33, 0.305]
    slow = [tolerance(0.33, THRESHOLDS) + OVER + 0.005] * 5    # every run, a constant extra beyond the allowance
    [problem] = judge_provider_row(honest_row(durations, runs=5, overhead=slow), make_records(durations),
                                   THRESHOLDS, runs=5)
    assert "latency_p50_s 0.3" in problem and "latency_mean_s 0.3" in problem and "latency_stdev_s" not in problem
    assert "time the request only" in problem and "(log: 0.310 s, accepted 0.295–0.351 s)" in problem


@pytest.mark.parametrize("ddof", [0, 1])
def test_population_and_sample_stdev_both_accepted(ddof):
    durations = [0.1, 0.3, 0.5, 0.2]
    assert judge_provider_row(honest_row(durations, runs=4, ddof=ddof), make_records(durations), THRESHOLDS,
                              runs=4) == []
    row = honest_row(durations, runs=4)
    row["latency_stdev_s"] = statistics.pvariance(durations)  # the variance, not the deviation
    [problem] = judge_provider_row(row, make_records(durations), THRESHOLDS, runs=4)
    assert "latency_stdev_s" in problem and "population" in problem and "sample" in problem


# -- counts ---------------------------------------------------------------------------------------------
@settings(max_examples=100, deadline=None)
@given(durations=st.lists(st.floats(0.05, 0.5), min_size=1, max_size=8),
       n_fail=st.integers(1, 4))
def test_failures_counted_as_successes_fail(durations, n_fail):
    runs = len(durations) + n_fail
    records = make_records(durations, [(i, 503) for i in range(n_fail)])
    row = honest_row(durations, runs=runs)
    row.update(successes=runs, failures=0, success_rate=1.0)
    problems = judge_provider_row(row, records, THRESHOLDS, runs=runs)
    [problem] = problems
    assert f"you report successes={runs}, failures=0, success_rate=1.0" in problem
    assert f"so successes={len(durations)}, failures={n_fail}, success_rate=" in problem
    assert "success count differs" in problem and "must count as a failure" in problem


def test_retries_fail():
    # runs=4: two runs failed once and were retried (6 requests), the student reports 4/4
    records = make_records([0.1, 0.12, 0.11, 0.13], [(0, 503), (2, 500)])
    row = honest_row([0.1, 0.12, 0.11, 0.13], runs=4)
    problems = judge_provider_row(row, records, THRESHOLDS, runs=4)
    # (a retried run that ends well is one success in the log too: only the request count can tell)
    [problem] = judge_provider_row(row, records, THRESHOLDS, runs=4)
    assert "6 requests reached the provider for runs=4 (2 of them failed; you report failures=0)" in problem
    assert "Did you retry" in problem and "max_retries=0" in problem
    # the student counts a run retried into success as a success although the log has it failing
    row.update(successes=5, failures=-1, success_rate=1.25)
    problems = judge_provider_row(row, records, THRESHOLDS, runs=4)
    assert any("success count differs: did you retry?" in p for p in problems)
    # too few requests
    problems = judge_provider_row(honest_row([0.1, 0.12], runs=4), make_records([0.1, 0.12]), THRESHOLDS,
                                  runs=4)
    assert any("only 2 requests reached the provider for runs=4" in p for p in problems)


def test_successes_undercounted_and_bad_types():
    records = make_records([0.1, 0.2, 0.3])
    row = honest_row([0.1, 0.2, 0.3], runs=3)
    row.update(successes=2, failures=1, success_rate=2 / 3)
    problems = judge_provider_row(row, records, THRESHOLDS, runs=3)
    assert any("a run that got a normal answer is a success" in p for p in problems)
    row = honest_row([0.1, 0.2, 0.3], runs=3)
    row.update(success_rate=100.0)  # a percentage
    [problem] = judge_provider_row(row, records, THRESHOLDS, runs=3)
    assert "you report success_rate=100.0" in problem and "so success_rate=1.0" in problem
    assert "not a percentage" in problem
    assert judge_provider_row(["not", "a dict"], records, THRESHOLDS, runs=3)[0].startswith("a provider")


# -- ranking ---------------------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(truths=st.lists(st.floats(0.02, 2.0), min_size=2, max_size=6, unique=True),
       noise=st.lists(st.floats(-0.009, 0.009), min_size=6, max_size=6), seed=st.integers(0, 1000))
def test_ranking(truths, noise, seed):
    names = [f"p{i}" for i in range(len(truths))]
    truth = dict(zip(names, truths))
    honest = {n: t + noise[i] for i, (n, t) in enumerate(truth.items())}
    assert judge_ranking(honest, truth, THRESHOLDS) == []
    # a shuffled assignment of the same numbers fails exactly when it orders a clear pair wrongly
    values = list(honest.values())
    random.Random(seed).shuffle(values)
    shuffled = dict(zip(names, values))
    clear_wrong = [(a, b) for a in names for b in names
                   if truth[a] + tolerance(truth[a], THRESHOLDS) + tolerance(truth[b], THRESHOLDS) + OVER < truth[b]
                   and not shuffled[a] < shuffled[b]]
    assert bool(judge_ranking(shuffled, truth, THRESHOLDS)) == bool(clear_wrong)


def test_ranking_messages_and_unknowns():
    truth = {"auto": 0.1, "together": 0.1005, "novita": 0.3, "broken": None}
    ok = {"auto": 0.101, "together": 0.099, "novita": 0.31, "broken": None}
    assert judge_ranking(ok, truth, THRESHOLDS) == []        # auto and together are a tie: any order
    [problem] = judge_ranking({"auto": 0.4, "together": 0.1, "novita": 0.3}, truth, THRESHOLDS)
    assert problem.startswith("you rank novita (0.300 s) as fast as or faster than auto (0.400 s), but auto "
                              "was clearly faster")
    problems = judge_ranking({"auto": 0.1, "together": None, "novita": 0.3}, truth, THRESHOLDS)
    assert problems and "cannot be ranked" in problems[0]
