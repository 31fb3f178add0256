"""What the student reported: ``attempts``, the returned result, AllProvidersFailed's message, and the
token on every request."""

from __future__ import annotations

import math
import re
from typing import Any, Iterable, Mapping, Sequence

from grading.judges.failover.policy import client_overhead, tolerance
from grading.judges.failover.timeline import Request, _field, _header, summary

ATTEMPT_KEYS = ("provider", "ok", "status", "error", "elapsed_s")
RESULT_KEYS = ("text", "model", "provider", "latency_s", "usage", "attempts")


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
            auth = _header(headers, "authorization")
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
