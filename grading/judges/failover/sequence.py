"""Which requests were made: retries, no retries, failover and stopping, against the policy."""

from __future__ import annotations

from typing import Sequence

from grading.judges.failover.policy import RETRY_AFTER_LIMIT_S
from grading.judges.failover.timeline import Request, _n


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
