"""The failover judge (grading/judges/failover.py), checked on simulated timelines.

* On a FAKE clock (no simulator, no sleeping): hypothesis draws fault schedules and parameters, a
  small model of a client runs a policy against them and produces the request log the simulator
  would have written plus the ``attempts`` it would have returned. A correct policy (equal jitter or
  always d, 401 stop or next, Retry-After honoured anywhere in [R, R + d]) is always accepted; a policy
  with one known mistake — no backoff, a fixed sleep, Retry-After ignored, a 401 retried, one retry too
  many, min_interval_s ignored, no per-attempt timeout — is always rejected, with a message naming it.
* Against the real HF simulator (a few examples, scaled times): the reference solution keeps the
  invariants — never more than max_retries retries a provider, never a retry sooner than Retry-After,
  a bounded total time — and the judge accepts its runs.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grading.judges.failover import (RETRY_AFTER_LIMIT_S, backoff_d, chat_requests, judge_attempts,
                                     judge_failure_message, judge_min_interval, judge_run, judge_sequence,
                                     judge_token, judge_waits)

THRESHOLDS = {"timing_abs_s": 0.010, "timing_rel": 0.05, "retry_overhead_s": 0.030, "client_overhead_s": 0.25,
              "timeout_overhead_s": 0.25}
PROVIDERS = ["alpha", "beta", "gamma", "delta"]
HANG_SECONDS = 2.0          # a hang the client does not cut ends (connection closed) after this


# -- a model of a client on a fake clock ------------------------------------------------------------
@dataclass(frozen=True)
class Params:
    max_retries: int
    backoff_base: float
    backoff_max: float
    timeout: float
    min_interval_s: float


@dataclass(frozen=True)
class Policy:
    """How the simulated client behaves; the defaults are a correct solution."""

    backoff: str = "jitter"          # jitter: uniform(d/2, d) | full: always d | none | fixed
    fixed_s: float = 0.05            # the sleep of backoff="fixed"
    retry_after: bool = True         # honour Retry-After (and move on when > 60 s)
    retry_after_extra: str = "jitter"  # R + uniform(0, d) | "zero": R | "d": R + d
    on_auth: str = "stop"            # after 401/403: stop | next | retry (a mistake)
    extra_retries: int = 0           # 1: one retry too many
    min_interval: bool = True
    use_timeout: bool = True
    timeout_factor: float = 1.0      # cuts a hung attempt after timeout x this (< 1: a mistake)


def fault_of(item: Any) -> dict[str, Any]:
    """A schedule item as the simulator answers it: status, outcome, retry_after_s, hang."""
    if item == "ok":
        return {"status": 200, "outcome": "ok", "retry_after_s": None, "hang": False}
    if item == "hang":
        return {"status": None, "outcome": "fault:hang", "retry_after_s": None, "hang": True}
    if item == "reset":
        return {"status": None, "outcome": "fault:reset", "retry_after_s": None, "hang": False}
    if item == "malformed":
        return {"status": 200, "outcome": "fault:malformed", "retry_after_s": None, "hang": False}
    if isinstance(item, int):
        return {"status": item, "outcome": "fault:status", "retry_after_s": None, "hang": False}
    return {"status": item["status"], "outcome": "fault:status", "retry_after_s": float(item["retry_after"]),
            "hang": False}


def run_policy(schedule: dict[str, list], providers: list[str], params: Params, policy: Policy,
               seed: int) -> tuple[list[dict], list[dict], bool, float]:
    """(log records, attempts, raised, t_returned) of one call on a fake clock starting at 100.0."""
    rng = random.Random(seed)
    t = 100.0
    served: dict[str, int] = {}
    records: list[dict] = []
    attempts: list[dict] = []
    last_send: float | None = None
    for provider in providers:
        retries = 0
        while True:
            if policy.min_interval and last_send is not None and params.min_interval_s > 0:
                t = max(t, last_send + params.min_interval_s + min(0.005, 0.02 * params.min_interval_s))
            send = t
            last_send = send
            k = served.get(provider, 0)
            served[provider] = k + 1
            items = schedule.get(provider, [])
            fault = fault_of(items[k] if k < len(items) else "ok")
            t_start = send + rng.uniform(0.0002, 0.002)
            if fault["hang"]:
                if policy.use_timeout:    # the client cuts it; the simulator is still "answering"
                    t_end, received = None, send + params.timeout * policy.timeout_factor
                else:                     # the client waits until the simulator closes the connection
                    t_end = t_start + HANG_SECONDS
                    received = t_end + 0.001
            elif fault["outcome"] == "fault:reset":
                t_end = t_start + 0.0005
                received = t_end + rng.uniform(0.0002, 0.002)
            else:
                t_end = t_start + rng.uniform(0.005, 0.03)
                received = t_end + rng.uniform(0.0002, 0.002)
            extra: dict[str, Any] = {"route": "provider-chat"}
            if fault["retry_after_s"] is not None:
                extra["retry_after_s"] = fault["retry_after_s"]
            records.append({"service": "hf", "provider": provider, "status": fault["status"],
                            "outcome": fault["outcome"], "t_start": t_start, "t_end": t_end, "extra": extra,
                            "method": "POST", "path": f"/{provider}/v1/chat/completions", "query": {},
                            "headers": {"authorization": "Bearer hf_canary"}})
            status = fault["status"]
            ok = status == 200 and fault["outcome"] == "ok"
            attempts.append({"provider": provider, "ok": ok, "status": status,
                             "error": None if ok else fault["outcome"], "elapsed_s": received - send})
            t = received + rng.uniform(0.0, 0.004)           # the client's own overhead
            if ok:
                return records, attempts, False, t
            if status in (401, 403):
                action = policy.on_auth
            elif status is None or status in (408, 429) or status >= 500 or fault["outcome"] == "fault:malformed":
                action = "retry"
            else:
                action = "next"
            if action == "stop":
                return records, attempts, True, t
            if action == "next" or retries >= params.max_retries + policy.extra_retries:
                break
            retries += 1
            d = backoff_d(retries, params.backoff_base, params.backoff_max)
            ra = fault["retry_after_s"] if policy.retry_after else None
            if ra is not None and ra > RETRY_AFTER_LIMIT_S:
                break
            if policy.backoff == "jitter":
                wait = rng.uniform(d / 2, d)
            elif policy.backoff == "full":
                wait = d
            elif policy.backoff == "none":
                wait = 0.0
            else:
                wait = policy.fixed_s
            if ra is not None:
                extra_s = {"jitter": rng.uniform(0, d), "zero": 0.0, "d": d}[policy.retry_after_extra]
                wait = ra + extra_s
            t += wait
    return records, attempts, True, t


def judge(records, attempts, raised, t_returned, providers, params) -> list[str]:
    requests = chat_requests(records)
    return judge_run(requests, providers=providers, max_retries=params.max_retries,
                     backoff_base=params.backoff_base, backoff_max=params.backoff_max, timeout=params.timeout,
                     min_interval_s=params.min_interval_s, thresholds=THRESHOLDS,
                     attempts=None if raised else attempts, raised=raised, t_returned=t_returned)


# -- strategies -------------------------------------------------------------------------------------
RETRYABLE = st.sampled_from([500, 502, 503, 504, 408, 429, "hang", "reset", "malformed"])
PLAIN_RETRYABLE = st.sampled_from([500, 502, 503, 504, 408, 429])
ITEMS = st.one_of(
    st.just("ok"), RETRYABLE, st.sampled_from([400, 401, 403, 404, 409, 422]),
    st.builds(lambda s, r: {"status": s, "retry_after": r}, st.sampled_from([429, 503]),
              st.sampled_from([1, 2, 120])))

params_st = st.builds(
    Params,
    max_retries=st.integers(0, 4),
    backoff_base=st.sampled_from([0.025, 0.05, 0.1]),
    backoff_max=st.sampled_from([0.1, 0.2, 0.4, 0.8]),
    timeout=st.sampled_from([0.25, 0.5, 1.0]),
    min_interval_s=st.sampled_from([0.0, 0.0, 0.05, 0.15]),
)


@st.composite
def runs(draw, *, min_retries: int = 0, head: Any = None, min_interval: tuple[float, float] | None = None,
         uncapped: int = 0, no_interval: bool = False):
    """(providers, schedule, params) with optional constraints that make one mistake observable."""
    params = draw(params_st)
    if min_retries:
        params = replace(params, max_retries=max(params.max_retries, min_retries))
    if uncapped:
        params = replace(params, backoff_max=max(params.backoff_max, params.backoff_base * 2 ** uncapped))
    if no_interval:   # min_interval_s stretches waits: a missing backoff could hide behind it
        params = replace(params, min_interval_s=0.0)
    if min_interval:
        params = replace(params, min_interval_s=draw(st.floats(*min_interval)))
    n = draw(st.integers(1, 4))
    providers = PROVIDERS[:n]
    schedule = {p: draw(st.lists(ITEMS, max_size=6)) for p in providers}
    if head is not None:
        schedule[providers[0]] = draw(head(params)) + schedule[providers[0]]
    return providers, schedule, params


def correct_policies():
    return st.builds(Policy, backoff=st.sampled_from(["jitter", "full"]),
                     retry_after_extra=st.sampled_from(["jitter", "zero", "d"]),
                     on_auth=st.sampled_from(["stop", "next"]))


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- a correct policy is accepted ----------------------------------------------------------------------
@FAST
@given(run=runs(), policy=correct_policies(), seed=st.integers(0, 2**32 - 1))
def test_correct_policy_is_accepted(run, policy, seed):
    providers, schedule, params = run
    records, attempts, raised, t_returned = run_policy(schedule, providers, params, policy, seed)
    assert judge(records, attempts, raised, t_returned, providers, params) == []


@FAST
@given(run=runs(head=lambda p: st.lists(PLAIN_RETRYABLE, min_size=6, max_size=6), min_retries=3, uncapped=2),
       seed=st.integers(0, 2**32 - 1))
def test_correct_backoff_over_many_retries_is_accepted(run, seed):
    providers, schedule, params = run
    for backoff in ("jitter", "full"):
        records, attempts, raised, t_returned = run_policy(schedule, providers, params, Policy(backoff=backoff), seed)
        assert judge(records, attempts, raised, t_returned, providers, params) == []


# -- each mistake is rejected ----------------------------------------------------------------------------
def rejected(run, policy, seed, *words) -> str:
    providers, schedule, params = run
    records, attempts, raised, t_returned = run_policy(schedule, providers, params, policy, seed)
    problems = judge(records, attempts, raised, t_returned, providers, params)
    assert problems, f"a broken policy {policy} was accepted: {records}"
    text = "\n".join(problems)
    for word in words:
        assert word in text, text
    return text


@FAST
@given(run=runs(head=lambda p: st.lists(PLAIN_RETRYABLE, min_size=2, max_size=3), min_retries=2,
                no_interval=True),
       seed=st.integers(0, 2**32 - 1))
def test_no_backoff_is_rejected(run, seed):
    # two retries: d/2 of the second is >= 25 ms, beyond the 10 ms tolerance and any client noise
    rejected(run, Policy(backoff="none"), seed, "exponential backoff")


@FAST
@given(run=runs(head=lambda p: st.lists(PLAIN_RETRYABLE, min_size=4, max_size=6), min_retries=4, uncapped=3,
                no_interval=True),
       fixed=st.floats(0.01, 0.8), seed=st.integers(0, 2**32 - 1))
def test_fixed_sleep_is_rejected(run, fixed, seed):
    # four retries before the cap: d, 2d, 4d, 8d — no single sleep fits [d/2, d] and [4d, 8d]
    text = rejected(run, Policy(backoff="fixed", fixed_s=fixed), seed, "retry")
    assert "fixed sleep" in text or "without waiting" in text, text


@FAST
@given(run=runs(head=lambda p: st.tuples(st.builds(lambda s, r: {"status": s, "retry_after": r},
                                                  st.sampled_from([429, 503]), st.sampled_from([1, 2, 3, 120])))
                .map(list), min_retries=1),
       seed=st.integers(0, 2**32 - 1))
def test_ignored_retry_after_is_rejected(run, seed):
    rejected(run, Policy(retry_after=False), seed, "Retry-After")


@FAST
@given(run=runs(head=lambda p: st.tuples(st.sampled_from([401, 403])).map(list), min_retries=1),
       seed=st.integers(0, 2**32 - 1))
def test_retrying_401_is_rejected(run, seed):
    rejected(run, Policy(on_auth="retry"), seed, "never retry 401/403")


@FAST
@given(run=runs(head=lambda p: st.lists(RETRYABLE, min_size=p.max_retries + 2, max_size=p.max_retries + 2)),
       seed=st.integers(0, 2**32 - 1))
def test_too_many_retries_is_rejected(run, seed):
    rejected(run, Policy(extra_retries=1), seed, "max_retries")


@FAST
@given(run=runs(head=lambda p: st.tuples(st.sampled_from([400, 404, 422])).map(list), min_interval=(0.08, 0.3)),
       seed=st.integers(0, 2**32 - 1))
def test_ignored_min_interval_is_rejected(run, seed):
    providers, schedule, params = run
    if len(providers) == 1:   # a 4xx on the only provider: no second request to be too close
        providers.append("beta")
        schedule["beta"] = []
    rejected((providers, schedule, params), Policy(min_interval=False), seed, "min_interval_s")


@FAST
@given(run=runs(head=lambda p: st.just(["hang"]), no_interval=True), seed=st.integers(0, 2**32 - 1))
def test_attempt_cut_at_half_the_timeout_is_rejected(run, seed):
    providers, schedule, params = run
    if len(providers) == 1:   # no retry of the hung provider (no backoff hides the cut): the next one
        providers.append("beta")
        schedule["beta"] = []
    params = replace(params, max_retries=0)
    rejected((providers, schedule, params), Policy(timeout_factor=0.5), seed, "was given up after")


@FAST
@given(run=runs(head=lambda p: st.just(["hang"])), seed=st.integers(0, 2**32 - 1))
def test_no_timeout_is_rejected(run, seed):
    rejected(run, Policy(use_timeout=False), seed, "timeout=")


# -- examples with their messages --------------------------------------------------------------------
def rec(provider, status, t_start, t_end, outcome=None, retry_after=None, route="provider-chat"):
    extra = {"route": route}
    if retry_after is not None:
        extra["retry_after_s"] = retry_after
    return {"service": "hf", "provider": provider, "status": status, "t_start": t_start, "t_end": t_end,
            "outcome": outcome or ("ok" if status == 200 else "fault:status"), "extra": extra}


def test_hub_lookups_and_earlier_requests_are_not_attempts():
    records = [rec("a", 200, 1.0, 1.1), rec("a", 200, 5.0, 5.01, route="hub-mapping"), rec("a", 503, 5.1, 5.11),
               rec("b", 200, 5.2, 5.3)]
    requests = chat_requests(records, since=4.0)
    assert [(r.index, r.provider, r.status) for r in requests] == [(1, "a", 503), (2, "b", 200)]


def test_sequence_messages():
    requests = chat_requests([rec("a", 503, 0.0, 0.01), rec("b", 200, 0.02, 0.05)])
    [problem] = judge_sequence(requests, providers=["a", "b"], max_retries=2, raised=False)
    assert "moved on to 'b' without retrying 'a'" in problem and "max_retries=2" in problem
    requests = chat_requests([rec("a", 503, 0.0, 0.01)])
    [problem] = judge_sequence(requests, providers=["a", "b"], max_retries=0, raised=True)
    assert "stopped, but 'b' was not tried yet" in problem and "failover" in problem
    requests = chat_requests([rec("a", 404, 0.0, 0.01), rec("a", 200, 0.02, 0.05)])
    [problem] = judge_sequence(requests, providers=["a", "b"], max_retries=2, raised=False)
    assert "cannot succeed on a retry" in problem
    requests = chat_requests([rec("a", 401, 0.0, 0.01)])
    assert judge_sequence(requests, providers=["a", "b"], max_retries=2, raised=True) == []
    requests = chat_requests([rec("a", 503, 0.0, 0.01), rec("a", 503, 0.1, 0.11), rec("a", 503, 0.3, 0.31)])
    [problem] = judge_sequence(requests, providers=["a"], max_retries=1, raised=True)
    assert "3 requests to 'a' in a row (2 retries)" in problem and "at most 1 retry after" in problem and "max_retries=1" in problem
    requests = chat_requests([rec("a", 200, 0.0, 0.01)])
    [problem] = judge_sequence(requests, providers=["a"], max_retries=1, raised=True)
    assert "raised instead of returning" in problem


def test_wait_messages():
    # base 0.1: retry 1 in [0.05, 0.1], retry 2 in [0.1, 0.2]
    good = chat_requests([rec("a", 503, 0.0, 0.01), rec("a", 503, 0.08, 0.09), rec("a", 200, 0.25, 0.27)])
    assert judge_waits(good, backoff_base=0.1, backoff_max=1, max_retries=3, thresholds=THRESHOLDS) == []
    fixed = chat_requests([rec("a", 503, 0.0, 0.01), rec("a", 503, 0.06, 0.07), rec("a", 503, 0.12, 0.13),
                           rec("a", 200, 0.18, 0.2)])
    problems = judge_waits(fixed, backoff_base=0.1, backoff_max=1, max_retries=3, thresholds=THRESHOLDS)
    assert "fixed sleep" in problems[0] and "retry 2" in problems[1]
    ignored = chat_requests([rec("a", 429, 0.0, 0.01, retry_after=1), rec("a", 200, 0.1, 0.11)])
    [problem] = judge_waits(ignored, backoff_base=0.1, backoff_max=1, max_retries=3, thresholds=THRESHOLDS)
    assert "less than the Retry-After time" in problem and "at least 1 s" in problem
    honoured = chat_requests([rec("a", 429, 0.0, 0.01, retry_after=1), rec("a", 200, 1.05, 1.06)])
    assert judge_waits(honoured, backoff_base=0.1, backoff_max=1, max_retries=3, thresholds=THRESHOLDS) == []
    many = chat_requests([rec("a", 503, 0.0, 0.01), rec("a", 503, 0.08, 0.09), rec("a", 503, 0.25, 0.26)])
    [problem] = judge_waits(many, backoff_base=0.1, backoff_max=1, max_retries=1, thresholds=THRESHOLDS)
    assert "max_retries=1" in problem


def test_min_interval_message():
    requests = chat_requests([rec("a", 404, 0.0, 0.01), rec("b", 404, 0.02, 0.03), rec("c", 200, 0.3, 0.31)])
    [problem] = judge_min_interval(requests, min_interval_s=0.2, thresholds=THRESHOLDS)
    assert "request 1 (a) and request 2 (b) only 0.020 s apart" in problem and "across providers" in problem


def test_attempts_must_match_the_log():
    requests = chat_requests([rec("a", 503, 0.0, 0.02), rec("b", 200, 0.1, 0.15)])
    good = [{"provider": "a", "ok": False, "status": 503, "error": "HTTP 503", "elapsed_s": 0.021},
            {"provider": "b", "ok": True, "status": 200, "error": None, "elapsed_s": 0.052}]
    assert judge_attempts(good, requests, timeout=1.0, thresholds=THRESHOLDS) == []
    assert "lists 1 attempt(s)" in judge_attempts(good[1:], requests, timeout=1.0, thresholds=THRESHOLDS)[0]
    swapped = [dict(good[0], status=500), dict(good[1], elapsed_s=0.5)]
    problems = judge_attempts(swapped, requests, timeout=1.0, thresholds=THRESHOLDS)
    assert any("['status'] is 500" in p for p in problems)
    assert any("['elapsed_s'] is 0.500 s" in p for p in problems)


def test_failure_message_lists_every_attempt():
    requests = chat_requests([rec("a", 503, 0.0, 0.01), rec("a", 503, 0.1, 0.11), rec("b", 404, 0.2, 0.21)])
    full = "All failed:\n 1. a: HTTP 503\n 2. a: HTTP 503\n 3. b: HTTP 404"
    assert judge_failure_message(full, requests) == []
    problems = judge_failure_message("all providers failed (last: b 404)", requests)
    assert any("does not name 'a'" in p for p in problems)
    assert any("HTTP 503 (2×)" in p for p in problems)


def test_token_judge_never_shows_the_token():
    token = "hf_" + "Zq" * 17
    records = [{"method": "POST", "path": "/a/v1/chat/completions", "query": {}, "headers": {"authorization": f"Bearer {token}"}},
               {"method": "GET", "path": "/api/models/x", "query": {"token": token}, "headers": {}}]
    problems = judge_token(records, token)
    assert len(problems) == 2 and not any(token in p for p in problems)
    assert "1 of 2 request(s)" in problems[0] and "in the URL" in problems[1]
    assert judge_token(records[:1], token) == []


# -- the reference against the real simulator -------------------------------------------------------
def _hf_simulator_available() -> bool:
    try:
        from grading.sims.hf import create  # noqa: F401
    except ImportError:
        return False
    return True


needs_sim = pytest.mark.skipif(not _hf_simulator_available(), reason="the HF simulator is not built yet")


REAL_ITEMS = st.sampled_from([503, 500, 502, 429, 404, 401, {"kind": "hang", "seconds": 1.0}, "ok"])
RETRY_AFTER_1 = {"kind": "status", "status": 429, "headers": {"Retry-After": "1"}}


@st.composite
def real_runs(draw):
    """2-3 providers with short scripts; at most one Retry-After: 1 (a whole second) per run."""
    n = draw(st.integers(2, 3))
    schedule = {i: draw(st.lists(REAL_ITEMS, max_size=3)) for i in range(n)}
    if draw(st.booleans()):
        schedule[draw(st.integers(0, n - 1))].insert(0, RETRY_AFTER_1)
    params = {"max_retries": draw(st.integers(0, 2)), "backoff_base": draw(st.sampled_from([0.01, 0.02, 0.03])),
              "backoff_max": 0.05, "timeout": 0.3, "min_interval_s": draw(st.sampled_from([0.0, 0.05]))}
    return n, schedule, params


@pytest.fixture(scope="module")
def real_sim():
    """The HF simulator and a worker over reference/, shared by the examples."""
    from grading.canary import make_canary
    from grading.context import REPO_ROOT
    from grading.sandbox.client import Sandbox
    from grading.sandbox.limits import Limits
    from grading.services import start_services

    canary = make_canary(11)
    services = start_services("sim", 11, ["hf"])
    sim = services.services.get("hf")
    if sim is None:
        services.stop()
        pytest.skip(f"no HF simulator: {services.unavailable}")
    sim.expected_token = canary
    lab = Sandbox(REPO_ROOT / "reference", limits=Limits(call_timeout_s=20), env=services.env(canary))
    try:
        yield sim, lab
    finally:
        lab.close()
        services.stop()


def _chat_model(sim) -> tuple[str, list[str]]:
    from huggingface_hub.inference._providers import PROVIDERS

    for model, entry in sim.catalogue["models"].items():
        names = [p for p, m in (entry.get("providers") or {}).items()
                 if m.get("task") == "conversational" and m.get("status") == "live" and p != "hf-inference"
                 and "conversational" in PROVIDERS.get(p, {}) and sim.catalogue["providers"].get(p, {}).get("chat_routes")]
        if len(names) >= 3:
            return model, names[:3]
    raise AssertionError("no chat model with 3 providers in the catalogue")


@needs_sim
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                               HealthCheck.too_slow])
@given(run=real_runs())
def test_reference_keeps_the_invariants_on_the_simulator(real_sim, run):
    from grading.sandbox.errors import StudentRaised

    sim, lab = real_sim
    n, schedule, params = run
    model, names = _chat_model(sim)
    providers = names[:n]
    sim.reset()
    for i, provider in enumerate(providers):
        sim.set_behavior(provider, latency={"kind": "constant", "mean_s": 0.4}, failure_rate=0.0)
        sim.script(provider, schedule[i])
    since = time.monotonic()
    try:
        result = lab.call("failover.chat_with_failover", [{"role": "user", "content": "hi"}], model=model,
                          providers=providers, **params)
        raised = False
    except StudentRaised as err:
        assert "AllProvidersFailed" in err.exc_mro, err
        result, raised = None, True
    took = time.monotonic() - since
    sim.reset()
    requests = chat_requests(sim.log.records(), since=since)
    # never more than max_retries retries a provider
    run_length = 1
    for a, b in zip(requests, requests[1:]):
        run_length = run_length + 1 if b.provider == a.provider else 1
        assert run_length <= params["max_retries"] + 1, requests
        # never a retry sooner than Retry-After
        if b.provider == a.provider and a.retry_after_s is not None:
            assert b.t_start - a.end(params["timeout"]) >= a.retry_after_s - 0.01, requests
    # a bounded total time: every allowed request timing out, every allowed wait at its longest
    worst = 0.0
    for i in range(n):
        ra = max([1.0 if item == RETRY_AFTER_1 else 0.0 for item in schedule[i]] + [0.0])
        worst += (params["max_retries"] + 1) * (params["timeout"] + params["min_interval_s"])
        worst += sum(backoff_d(k, params["backoff_base"], params["backoff_max"]) for k in
                     range(1, params["max_retries"] + 1)) + ra
    assert took <= worst + 1.5, (took, worst, requests)
    # and the judge accepts it
    problems = judge_run(requests, providers=providers, max_retries=params["max_retries"],
                         backoff_base=params["backoff_base"], backoff_max=params["backoff_max"],
                         timeout=params["timeout"], min_interval_s=params["min_interval_s"],
                         thresholds={**THRESHOLDS}, attempts=None if raised else result["attempts"],
                         raised=raised)
    assert problems == [], (schedule, params, problems)
