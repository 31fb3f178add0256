"""Checkpoint `provider_strategies`: latency and stability of provider strategies.

``inference_lab.strategies.compare_providers(messages, model=..., providers=[...], runs=N)`` must send
exactly N chat requests to each provider ("auto" included, as "auto"), never retry a failed run, and
report per provider, in the order given: runs, successes, failures, success_rate and the p50 / p95
(linear interpolation) / mean / stdev latency of the successful runs (None when none succeeded).

The ground truth is the Hugging Face simulator's log of the very requests the call made: how many
reached each provider, which ones it answered, and how long each took (``t_end - t_start``). Your own
clock adds a little client overhead; grading/thresholds.toml allows for it: p50, p95 and the mean within
max(10 ms, 5 %) of the log's, plus up to ``stats_client_overhead_s`` above it; the stdev within the same
tolerance plus half that allowance, population or sample. The
providers are given clearly different latency distributions with a real spread, one fails some runs
(scripted and at random), one fails every run; the simulator's seed changes on every official run,
so only numbers really measured can match.

One call is made (in a module fixture) and each test judges one aspect of its result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import pytest

from grading.judges.stats import STAT_KEYS, client_overhead, fmt_s, judge_provider_row, judge_ranking, truth_of
from grading.sandbox.errors import StudentCodeError

MODEL = "meta-llama/Llama-3.1-8B-Instruct"
AUTO = "auto"
AUTO_SERVED_BY = "novita"            # the first live provider in MODEL's mapping: where "auto" goes
FAST, FLAKY, SLOW, DOWN = "cerebras", "fireworks-ai", "nscale", "hf-inference"
# Not in latency order, on purpose. DOWN comes first: a client's one-off costs (a lazy import, the
# connection pool, huggingface_hub's first Hub lookup) land in a run that fails, so they never skew a
# measured latency; after that a client adds ~1-3 ms per request (more on a busy machine), inside
# the tolerance and stats_client_overhead_s.
PROVIDERS = [DOWN, FLAKY, AUTO, SLOW, FAST]
RUNS = 5
REQUEST_TIMEOUT_S = 10.0
CALL_TIMEOUT_S = 90.0
MESSAGES = [{"role": "user", "content": "In one sentence: why measure latency percentiles, not just the mean?"}]
CONTRACT_KEYS = ("provider", "runs", "successes", "failures", "success_rate", *STAT_KEYS)
CHAT_ROUTES = ("router-chat", "provider-chat")

# Latencies before the simulator's time scale; the scale below makes them 40 / 100 / 180 / 280 ms, a
# real spread (stdev 20 %) each: far enough apart to rank beyond the tolerances, fast enough to run in
# a few seconds.
TIME_SCALE = 0.4
OUTLIER_S = 0.4                     # one run of FAST takes this long (a "slow" fault, not scaled): p95 < max
BEHAVIOR: dict[str, dict[str, Any]] = {
    FAST: {"latency": {"kind": "normal", "mean_s": 0.10, "stdev_s": 0.02}, "failure_rate": 0.0},
    AUTO_SERVED_BY: {"latency": {"kind": "normal", "mean_s": 0.25, "stdev_s": 0.05}, "failure_rate": 0.0},
    FLAKY: {"latency": {"kind": "normal", "mean_s": 0.45, "stdev_s": 0.09}, "failure_rate": 0.3},
    SLOW: {"latency": {"kind": "normal", "mean_s": 0.70, "stdev_s": 0.14}, "failure_rate": 0.0},
    DOWN: {"latency": {"kind": "normal", "mean_s": 0.10, "stdev_s": 0.02}, "failure_rate": 1.0},
}
SCRIPTS: dict[str, list[Any]] = {
    FAST: ["ok", "ok", {"kind": "slow", "seconds": OUTLIER_S}, "ok", "ok"],
    # two failed runs whatever the seed; the last two runs fail at random (failure_rate, seeded)
    FLAKY: [503, "ok", "malformed"],
}


@dataclass
class Measurement:
    """One ``compare_providers`` call: its result (or the error it raised) and the log of its requests."""

    result: Any = None
    error: StudentCodeError | None = None
    records: list[Any] = field(default_factory=list)

    def rows(self) -> list[dict[str, Any]]:
        """The result as one dict per provider (raises what the student must fix, if it is not)."""
        if self.error is not None:
            raise self.error
        call = f"compare_providers(messages, model={MODEL!r}, providers={PROVIDERS!r}, runs={RUNS})"
        result = self.result
        assert isinstance(result, list), (
            f"{call} returned {type(result).__name__} {str(result)[:120]}; it must return a list with one dict "
            f"per provider, in the order given")
        assert len(result) == len(PROVIDERS), (
            f"{call} returned {len(result)} results for {len(PROVIDERS)} providers; it must return exactly one "
            "dict per provider, in the order given")
        bad = [i for i, row in enumerate(result) if not isinstance(row, dict)]
        assert not bad, (f"{call}: result {bad[0]} is {type(result[bad[0]]).__name__}, not a dict; each provider's "
                         f"result is a dict with keys {', '.join(CONTRACT_KEYS)}")
        return result

    def logged(self, provider: str) -> list[Any]:
        """This call's chat requests for ``provider`` ("auto": those that asked for auto), in order."""
        if provider == AUTO:
            return [r for r in self.records if (r.extra or {}).get("requested_provider") == AUTO]
        return [r for r in self.records
                if r.provider == provider and (r.extra or {}).get("requested_provider") != AUTO]


def _label(provider: str) -> str:
    return f"provider {provider!r}"


def _fail(header: str, problems: list[str]) -> None:
    if problems:
        raise AssertionError(header + "\n" + "\n".join(f"- {p}" for p in problems))


def _row_problems(measured: Measurement, thresholds: dict[str, Any], *, skip_auto: bool = True,
                  **checks: bool) -> list[str]:
    """Problems with the result rows, one provider at a time (``checks``: judge_provider_row's check_* flags).

    ``skip_auto``: leave out "auto" (judged in test_auto_measured_as_auto).
    """
    problems = []
    for provider, row in zip(PROVIDERS, measured.rows()):
        if skip_auto and provider == AUTO:
            continue
        problems += judge_provider_row(row, measured.logged(provider), thresholds, runs=RUNS,
                                       label=_label(provider), **checks)
    return problems


@pytest.fixture(scope="module")
def measured(lab: Any, services: Any, canary_token: str) -> Iterator[Measurement]:
    """Configure the providers, make the one call, and keep the log of the requests it made."""
    sim = services.services.get("hf")
    if sim is None:
        reason = services.unavailable.get("hf", "the hf service did not start")
        pytest.skip(f"no Hugging Face simulator in this tier: {reason}")
    sim.expected_token = canary_token
    sim.reset()
    saved_scale = sim.time_scale
    measurement = Measurement()
    try:
        sim.time_scale = TIME_SCALE
        for provider, behavior in BEHAVIOR.items():
            sim.set_behavior(provider, **behavior)
        for provider, script in SCRIPTS.items():
            sim.script(provider, script)
        last_id = max((r.id for r in sim.log.records()), default=0)
        try:
            measurement.result = lab.call("strategies.compare_providers", MESSAGES, model=MODEL,
                                          providers=list(PROVIDERS), runs=RUNS, timeout=REQUEST_TIMEOUT_S,
                                          timeout_s=CALL_TIMEOUT_S)
        except StudentCodeError as exc:
            measurement.error = exc
        deadline = time.monotonic() + 2.0
        while True:  # the last response may still be finishing on the simulator's side
            records = sim.log.records(service="hf", id=lambda i: i > last_id)
            if all(r.t_end is not None for r in records) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        measurement.records = [r for r in records if (r.extra or {}).get("route") in CHAT_ROUTES]
    finally:
        sim.time_scale = saved_scale
        sim.reset()
    yield measurement


# -- the tests ---------------------------------------------------------------------------------------
def test_result_shape(measured: Measurement) -> None:
    rows = measured.rows()
    problems = []
    for i, (provider, row) in enumerate(zip(PROVIDERS, rows)):
        missing = [key for key in CONTRACT_KEYS if key not in row]
        if missing:
            problems.append(f"result {i} ({provider}) has no {', '.join(missing)}")
        if provider != AUTO and row.get("provider") != provider:
            problems.append(f"result {i} is for provider {row.get('provider')!r}, expected {provider!r}: results "
                            f"follow the order of `providers` ({', '.join(PROVIDERS)})")
        if row.get("runs") != RUNS or isinstance(row.get("runs"), bool):
            problems.append(f"result {i} ({provider}) has runs={row.get('runs')!r}, expected {RUNS}")
        for key in ("successes", "failures"):
            if key in row and (not isinstance(row[key], int) or isinstance(row[key], bool)):
                problems.append(f"result {i} ({provider}): {key} is {row[key]!r}, it must be an int")
        rate = row.get("success_rate")
        if "success_rate" in row and not (isinstance(rate, (int, float)) and not isinstance(rate, bool)
                                         and 0.0 <= rate <= 1.0):
            problems.append(f"result {i} ({provider}): success_rate is {rate!r}, it must be a fraction in [0, 1]")
        for key in STAT_KEYS:
            value = row.get(key)
            if key in row and value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)):
                problems.append(f"result {i} ({provider}): {key} is {value!r}, it must be seconds (float) or None")
    down = rows[PROVIDERS.index(DOWN)]
    not_none = [key for key in STAT_KEYS if down.get(key) is not None]
    if not_none or down.get("successes") != 0 or down.get("success_rate") != 0:
        problems.append(
            f"{_label(DOWN)} failed every run, so its result must be successes=0, success_rate=0.0 and None for "
            f"every latency statistic; you reported successes={down.get('successes')!r}, success_rate="
            f"{down.get('success_rate')!r}" + "".join(f", {k}={down.get(k)!r}" for k in not_none)
            + " (statistics are over the successful runs only; with none there is nothing to summarise)")
    _fail("compare_providers' result does not have the contract's shape:", problems)


def test_exact_runs_no_retries(measured: Measurement) -> None:
    problems = _row_problems(measured, {}, skip_auto=False, check_counts=False, check_stats=False)
    _fail(f"compare_providers(runs={RUNS}) must make exactly {RUNS} requests per provider, no more, no fewer:",
          problems)


def test_success_counts(measured: Measurement, thresholds: dict[str, Any]) -> None:
    problems = _row_problems(measured, thresholds, check_requests=False, check_stats=False)
    _fail("the success counts do not match what the providers answered (a run that raised — an HTTP error, "
          "a malformed body, a timeout — is a failure):", problems)


def test_latency_stats_match_log(measured: Measurement, thresholds: dict[str, Any]) -> None:
    problems = _row_problems(measured, thresholds, check_requests=False, check_counts=False)
    over = client_overhead(thresholds)
    _fail("the latency statistics do not match how long your requests really took at the providers (accepted: "
          f"within max(10 ms, 5 %) of the log's, plus up to {over * 1000:.0f} ms above it for your client's own "
          "overhead):", problems)


def test_auto_measured_as_auto(measured: Measurement, thresholds: dict[str, Any]) -> None:
    rows = measured.rows()
    row = rows[PROVIDERS.index(AUTO)]
    problems = []
    if row.get("provider") != AUTO:
        problems.append(
            f"the result for \"auto\" says provider={row.get('provider')!r}; keep \"auto\" as it was asked for — "
            "it is a strategy of its own, compared with the explicit providers (the router picked "
            f"{AUTO_SERVED_BY!r} here, but that is its choice, not the strategy's name)")
    logged = measured.logged(AUTO)
    if not logged:
        problems.append(
            "no request asked for \"auto\": call it with provider=\"auto\" (InferenceClient(provider=\"auto\"), or "
            "the router's /v1 without a \":provider\" suffix) and let the router choose; do not resolve it to a "
            "provider yourself")
    else:
        problems += judge_provider_row(row, logged, thresholds, runs=RUNS, label="\"auto\"")
    _fail("\"auto\" must be measured like any provider, and reported as \"auto\":", problems)


def test_ranking_by_latency(measured: Measurement, thresholds: dict[str, Any]) -> None:
    rows = measured.rows()
    reported, truth = {}, {}
    for provider, row in zip(PROVIDERS, rows):
        truth[provider] = truth_of(measured.logged(provider))["stats"]["p50"]
        reported[provider] = row.get("latency_p50_s")
    problems = judge_ranking(reported, truth, thresholds)
    if len(problems) > 3:
        problems = problems[:3] + [f"… and {len(problems) - 3} more pairs in the wrong order"]
    if problems:
        real = sorted((p for p in truth if truth[p] is not None), key=lambda p: truth[p])
        problems.append("the providers' real order by p50: " + ", ".join(f"{p} ({fmt_s(truth[p])})" for p in real))
    _fail("ordering the providers by your latency_p50_s does not give their real order (pairs whose real p50s "
          "differ by more than the tolerance are judged):", problems)
