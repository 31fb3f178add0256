"""Checkpoint `failover`: failover and error handling.

``inference_lab.failover.chat_with_failover(messages, *, model, providers, timeout, max_retries,
backoff_base, backoff_max, min_interval_s)`` asks the providers in the order given; per provider it
retries timeouts, connection errors, malformed bodies, 408, 429 and 5xx up to ``max_retries`` times,
waiting before the n-th retry a random time in ``[d/2, d]`` with ``d = min(backoff_max,
backoff_base * 2**(n-1))`` — or, after ``Retry-After: R``, between ``R`` and ``R + d`` (``R > 60``: next
provider at once); it never retries 401/403/404/422 (other 4xx neither); ``min_interval_s`` separates
the starts of any two requests; every attempt is listed in ``attempts``; ``AllProvidersFailed`` when
every provider is exhausted, with a message that lists every attempt (DESIGN.md, "Contract details").

Each test scripts the Hugging Face simulator (``hf_sim.script``: what each provider answers, request
by request, then normal answers) and judges the run from the simulator's request log — who was
called, when, what they answered — with ``grading/judges/failover.py``. Times are small (backoff of
tens of milliseconds, one ``Retry-After: 1``) so the checkpoint stays fast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest

from grading.judges.failover import (Request, chat_requests, judge_failure_message, judge_result, judge_run,
                                     judge_token, summary)
from grading.leaks import redact
from grading.sandbox.errors import CallTimeout, ImportFailed, StudentRaised

TARGET = "failover.chat_with_failover"
MESSAGES = [{"role": "user", "content": "Reply with one word: ready?"}]
# a fixed, short latency for the providers under test (before the simulator's time_scale)
LATENCY = {"kind": "constant", "mean_s": 0.4}
CALL_LIMIT_S = 12.0            # a call that takes longer is stopped (a missing timeout, a 120 s wait)
HANG_S = 3.0                   # a scripted hang ends (connection closed) after this, cut or not
# huggingface_hub 2.4's InferenceClient providers with chat (DESIGN.md); the others are router-only
CLIENT_PROVIDERS = ("baseten", "cerebras", "cohere", "deepinfra", "featherless-ai", "fireworks-ai", "groq",
                    "novita", "nscale", "openai", "ovhcloud", "publicai", "scaleway", "together", "zai-org",
                    "hf-inference")


def _status(status: int, retry_after: str | None = None) -> dict[str, Any]:
    fault: dict[str, Any] = {"kind": "status", "status": status}
    if retry_after is not None:
        fault["headers"] = {"Retry-After": retry_after}
    return fault


HANG = {"kind": "hang", "seconds": HANG_S}


# -- the model and providers every test uses -------------------------------------------------------
def _client_providers() -> set[str]:
    try:
        from huggingface_hub.inference._providers import PROVIDERS
    except ImportError:
        return set(CLIENT_PROVIDERS)
    return {name for name, tasks in PROVIDERS.items() if "conversational" in tasks}


@pytest.fixture(scope="module")
def setup(services: Any) -> tuple[str, list[str]]:
    """(model, three providers): the catalogue's chat model with the most providers InferenceClient
    knows, hf-inference last (it costs an extra Hub lookup)."""
    sim = services.services.get("hf")
    if sim is None:
        pytest.skip("no Hugging Face simulator in this tier: "
                    f"{services.unavailable.get('hf', 'the hf service did not start')}")
    known = _client_providers()
    chat_providers = {name for name, p in sim.catalogue["providers"].items() if p.get("chat_routes")}
    best: tuple[str, list[str]] | None = None
    for model, entry in sim.catalogue["models"].items():
        names = [name for name, m in (entry.get("providers") or {}).items()
                 if m.get("status") == "live" and m.get("task") == "conversational"
                 and name in known and name in chat_providers]
        names.sort(key=lambda name: name == "hf-inference")
        if len(names) >= 3 and (best is None or len(names) > len(best[1])):
            best = (model, names)
    if best is None:
        pytest.fail("grader error: the simulator's catalogue has no chat model with 3 providers", pytrace=False)
    return best[0], best[1][:3]


# -- one scripted call -------------------------------------------------------------------------------
@dataclass
class Run:
    result: Any
    raised: StudentRaised | None
    requests: list[Request]
    records: list[Any]
    t_returned: float
    script: str

    def problems(self, *, params: dict[str, Any], providers: list[str], thresholds: dict[str, Any],
                 attempts: bool = True) -> list[str]:
        return judge_run(self.requests, providers=providers, max_retries=params["max_retries"],
                         backoff_base=params["backoff_base"], backoff_max=params["backoff_max"],
                         timeout=params["timeout"], min_interval_s=params["min_interval_s"],
                         thresholds=thresholds,
                         attempts=(self.result or {}).get("attempts") if attempts and self.raised is None
                         and isinstance(self.result, dict) else None,
                         raised=self.raised is not None, t_returned=self.t_returned)


def _describe_script(providers: list[str], schedule: dict[str, list]) -> str:
    def item(fault: Any) -> str:
        if fault == HANG or (isinstance(fault, dict) and fault.get("kind") == "hang"):
            return "no answer (hang)"
        if isinstance(fault, dict):
            text = f"HTTP {fault['status']}"
            if fault.get("headers"):
                text += "".join(f" with {k}: {v}" for k, v in fault["headers"].items())
            return text
        return str(fault)
    parts = []
    for p in providers:
        steps = [item(f) for f in schedule.get(p, [])]
        parts.append(f"{p}: " + (", ".join(steps) + ", then answers" if steps else "answers"))
    return "; ".join(parts)


def _params(**overrides: Any) -> dict[str, Any]:
    params = {"timeout": 2.0, "max_retries": 2, "backoff_base": 0.02, "backoff_max": 0.05, "min_interval_s": 0.0}
    params.update(overrides)
    return params


def call(lab: Any, hf_sim: Any, model: str, providers: list[str], schedule: dict[str, list],
         canary: str, **params: Any) -> Run:
    for provider in providers:
        hf_sim.set_behavior(provider, latency=LATENCY, failure_rate=0.0)
        hf_sim.script(provider, list(schedule.get(provider, [])))
    script = _describe_script(providers, schedule)
    since = time.monotonic()
    result, raised = None, None
    try:
        result = lab.call(TARGET, MESSAGES, model=model, providers=list(providers), timeout_s=CALL_LIMIT_S,
                          **params)
    except ImportFailed:
        raise
    except StudentRaised as err:
        raised = err
    except CallTimeout as err:
        requests = chat_requests(hf_sim.log.records(), since=since)
        raise AssertionError(
            f"{err}. The providers were scripted as: {script}; with {_show_params(params)} a correct "
            f"solution returns within a few seconds. The providers saw: {summary(requests)}") from None
    t_returned = time.monotonic()
    records = [r for r in hf_sim.log.records() if r.t_start >= since and r.t_start <= t_returned]
    return Run(result, raised, chat_requests(records), records, t_returned, script)


def _show_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _raised_text(run: Run, canary: str) -> str:
    err = run.raised
    assert err is not None
    text = redact(" ".join(str(err.exc_message).split()), [canary])
    return f"{err.exc_type}: {text[:300]}{'…' if len(text) > 300 else ''}"


def verdict(run: Run, problems: list[str], params: dict[str, Any], canary: str, *, what: str) -> None:
    """Fail with every problem found, what was scripted and what the providers saw."""
    if not problems:
        return
    context = (f"(scripted: {run.script}; parameters: {_show_params(params)}; the providers saw: "
               f"{summary(run.requests)}")
    if run.raised is not None:
        context += f"; your function raised {_raised_text(run, canary)}"
    lines = [f"{what}: " + problems[0], context + ")"] + [f"also: {p}" for p in problems[1:4]]
    raise AssertionError("\n".join(lines))


def expect_success(run: Run, model: str, providers: list[str], params: dict[str, Any], thresholds: dict[str, Any],
                   canary: str, *, what: str) -> None:
    problems = run.problems(params=params, providers=providers, thresholds=thresholds)
    if run.raised is not None and not problems:
        problems = [f"a provider answered, but your function raised {_raised_text(run, canary)}"]
    if run.raised is None:
        problems = judge_result(run.result, run.requests, model=model) + problems
    verdict(run, problems, params, canary, what=what)


# -- the tests -----------------------------------------------------------------------------------------
def test_failover_to_next_provider(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, c) = setup
    params = _params(max_retries=1)
    run = call(lab, hf_sim, model, [a, b, c], {a: [_status(503), _status(503)]}, canary_token, **params)
    expect_success(run, model, [a, b, c], params, thresholds, canary_token,
                   what=f"{a} answered 503 twice (max_retries=1), so {b} should have answered")


def test_retry_after_honoured(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, _) = setup
    params = _params(max_retries=2)
    run = call(lab, hf_sim, model, [a, b], {a: [_status(429, "1")]}, canary_token, **params)
    expect_success(run, model, [a, b], params, thresholds, canary_token,
                   what=f"{a} answered 429 with Retry-After: 1, then would answer")


def test_long_retry_after_moves_on(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, _) = setup
    params = _params(max_retries=2)
    run = call(lab, hf_sim, model, [a, b], {a: [_status(429, "120")]}, canary_token, **params)
    expect_success(run, model, [a, b], params, thresholds, canary_token,
                   what=f"{a} answered 429 with Retry-After: 120 (over 60 s)")


def test_timeout_per_attempt(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, _) = setup
    params = _params(timeout=0.3, max_retries=1)
    run = call(lab, hf_sim, model, [a, b], {a: [HANG, HANG]}, canary_token, **params)
    expect_success(run, model, [a, b], params, thresholds, canary_token,
                   what=f"{a} never answered (twice; timeout=0.3, max_retries=1)")


def test_unauthorized_not_retried(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, _) = setup
    params = _params(max_retries=2)
    for status in (401, 403):
        run = call(lab, hf_sim, model, [a, b], {a: [_status(status)]}, canary_token, **params)
        problems = run.problems(params=params, providers=[a, b], thresholds=thresholds)
        if run.raised is None and not problems:
            problems = judge_result(run.result, run.requests, model=model)
        verdict(run, problems, params, canary_token, what=f"{a} answered {status}")


def test_client_errors_move_on(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, c) = setup
    params = _params(max_retries=2)
    run = call(lab, hf_sim, model, [a, b, c], {a: [_status(404)], b: [_status(422)]}, canary_token, **params)
    expect_success(run, model, [a, b, c], params, thresholds, canary_token,
                   what=f"{a} answered 404 and {b} 422")


def test_all_fail_raises(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, _) = setup
    params = _params(max_retries=1)
    schedule = {a: [_status(503), _status(503)], b: [_status(502), _status(404)]}
    run = call(lab, hf_sim, model, [a, b], schedule, canary_token, **params)
    what = "every provider failed"
    problems = run.problems(params=params, providers=[a, b], thresholds=thresholds)
    if run.raised is None:
        verdict(run, problems or [f"your function returned {type(run.result).__name__} instead of raising "
                                  "AllProvidersFailed"], params, canary_token, what=what)
    mro = list(run.raised.exc_mro)
    if "AllProvidersFailed" not in mro:
        problems.insert(0, f"your function raised {_raised_text(run, canary_token)}; when every provider is "
                           "exhausted raise AllProvidersFailed (keep the class of the template: "
                           "class AllProvidersFailed(RuntimeError)) with a message listing every attempt")
    else:
        problems += judge_failure_message(run.raised.exc_message, run.requests)
    verdict(run, problems, params, canary_token, what=what)


def test_exponential_backoff_with_jitter(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, _) = setup
    # d = 0.025, 0.05, 0.1, 0.2 (the cap), 0.2, 0.2: a fixed sleep cannot fit [0.0125, 0.025] and [0.1, 0.2]
    params = _params(max_retries=6, backoff_base=0.025, backoff_max=0.2)
    faults = [_status(503), _status(500), _status(429), _status(502), _status(504), _status(503)]
    run = call(lab, hf_sim, model, [a, b], {a: faults}, canary_token, **params)
    expect_success(run, model, [a, b], params, thresholds, canary_token,
                   what=f"{a} failed 6 times (503, 500, 429, 502, 504, 503) before answering, max_retries=6")


def test_min_interval_respected(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, c) = setup
    params = _params(max_retries=1, backoff_base=0.01, backoff_max=0.02, min_interval_s=0.2)
    run = call(lab, hf_sim, model, [a, b, c], {a: [_status(404)], b: [_status(503)]}, canary_token, **params)
    expect_success(run, model, [a, b, c], params, thresholds, canary_token,
                   what=f"{a} answered 404, {b} 503 then would answer (min_interval_s=0.2)")


def test_token_in_authorization_header(lab, hf_sim, setup, thresholds, canary_token):
    model, (a, b, _) = setup
    params = _params(max_retries=1)
    run = call(lab, hf_sim, model, [a, b], {a: [_status(500), _status(503)]}, canary_token, **params)
    if len(run.requests) < 2:
        verdict(run, [f"only {len(run.requests)} request(s) reached the providers; {a} failed twice, so a "
                      "failover makes at least 3 requests, each with the token"], params, canary_token,
                what="token check")
    problems = judge_token(run.records, canary_token, show="the token (HF_TOKEN)")
    verdict(run, problems, params, canary_token, what="token check")
