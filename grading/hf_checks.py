"""What the `hf_chat`, `hf_image` and `auth` checkpoints share: one student call and the Hugging Face
simulator's log of it, and the judging of reported times against that log.

The simulator (docs/hf-sim.md) logs every request with its route, provider, model, headers and
``time.monotonic()`` stamps in the grader's process. :func:`observe` brackets one call of a student
function with the grader's own clock, so the requests the call made are the records that started
inside that bracket. Checkpoint tests run one at a time, so nothing else talks to the simulator then.

Times are judged one-sidedly where the client adds its own work: a latency the student measured
around a request can never be shorter than the time the server spent on it (minus the tolerance),
and may be longer by at most ``client_overhead_s`` (thresholds.toml) — connecting, the Hub's
provider-mapping lookup huggingface_hub makes before an explicit provider's first request, parsing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from grading.leaks import redact

CHAT_ROUTES = ("provider-chat", "router-chat")
IMAGE_ROUTES = ("provider-image",)
FETCH_ROUTES = ("image-fetch",)


@dataclass
class Observed:
    """One call of a student function and the simulator requests that started while it ran."""

    value: Any
    records: list = field(default_factory=list)
    t0: float = 0.0
    t1: float = 0.0

    def routed(self, *routes: str) -> list:
        return [r for r in self.records if (r.extra or {}).get("route") in routes]


def observe(lab: Any, sim: Any, target: str, *args: Any, **kwargs: Any) -> Observed:
    """Call ``inference_lab.<target>`` in the worker and collect the simulator's records of it.

    The worker is started first (a fresh worker imports the student's package at its first call;
    that is not part of the bracket). A :class:`~grading.sandbox.errors.StudentCodeError` of the
    call propagates: the test fails with its message.
    """
    lab.start()
    t0 = time.monotonic()
    value = lab.call(target, *args, **kwargs)
    t1 = time.monotonic()
    records = records_between(sim, t0, t1)
    sim.log.wait_finished(records)
    return Observed(value=value, records=records, t0=t0, t1=t1)


def records_between(sim: Any, t0: float, t1: float) -> list:
    return sorted((r for r in sim.log.records(service="hf") if t0 <= r.t_start <= t1), key=lambda r: r.t_start)


# -- numbers ---------------------------------------------------------------------------------------
def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def tolerance(truth: float, thresholds: dict[str, Any]) -> float:
    """max(timing_abs_s, timing_rel x truth): the thresholds file's tolerance for a time."""
    return max(float(thresholds["timing_abs_s"]), float(thresholds["timing_rel"]) * abs(truth))


def judge_duration(label: str, value: Any, *, server_s: float, span_s: float | None = None,
                   thresholds: dict[str, Any], overhead_key: str = "client_overhead_s",
                   what: str = "the request", how: str = "") -> str | None:
    """None when ``value`` (a time the student measured around requests) agrees with the log.

    ``server_s``: the least it can be (the server's own time for the request(s)); ``span_s``: the
    time from the first request's arrival to the last one's end (defaults to ``server_s``). Accepted:
    ``server_s - tol <= value <= span_s + tol + thresholds[overhead_key]``.
    """
    if not is_number(value):
        return (f"{label} is {value!r}; it must be a number of seconds (a float), measured with "
                "time.perf_counter() around the request")
    span = server_s if span_s is None else span_s
    low = server_s - tolerance(server_s, thresholds)
    allowance = float(thresholds[overhead_key])
    high = span + tolerance(span, thresholds) + allowance
    if value < low:
        return (f"{label} is {value:.3f} s, but {what} took {server_s:.3f} s at the server (the simulator's "
                f"log); a time measured around the request cannot be shorter than that (accepted: "
                f"{low:.3f} s to {high:.3f} s). Measure it: take time.perf_counter() just before the request "
                f"and again {how or 'when the response has arrived'} — never a fixed or estimated number")
    if value > high:
        return (f"{label} is {value:.3f} s, but {what} took {span:.3f} s at the server (the simulator's "
                f"log); accepted up to {high:.3f} s (that plus the tolerance and {allowance:.2f} s for the "
                f"client's own work). Start the timer right before the request — not before imports or "
                f"other calls — and stop it {how or 'as soon as the response has arrived'}")
    return None


# -- requests --------------------------------------------------------------------------------------
def auth_problem(record: Any, token: str) -> str | None:
    """None when the request carried ``Authorization: Bearer <token>``; else what was wrong (masked)."""
    header = (record.headers or {}).get("authorization")
    if header is None:
        return ("it had no Authorization header: pass the token to the client (InferenceClient(api_key=token) "
                "or openai.OpenAI(api_key=token)); it sends 'Authorization: Bearer <token>'")
    if header == f"Bearer {token}":
        return None
    if token in header:
        return (f"its Authorization header was {redact(header, [token])!r}, not 'Bearer <HF_TOKEN>'; let the "
                "client build the header from api_key=token")
    return (f"its Authorization header was {redact(header, [token])!r}, not 'Bearer <HF_TOKEN>': use the "
            "token from auth.get_token() (HF_TOKEN), not another value")


def describe_records(records: Iterable[Any], token: str = "") -> str:
    """The requests in a few words, for a message: 'POST /together/v1/chat/completions (together, 200)'."""
    parts = []
    for rec in records:
        route = (rec.extra or {}).get("route", "?")
        who = rec.provider or "-"
        requested = (rec.extra or {}).get("requested_provider")
        if requested and requested != rec.provider:
            who += f" for {requested!r}"
        parts.append(f"{rec.method} {rec.path} ({route}, provider {who}, status {rec.status})")
    text = "; ".join(parts) if parts else "no request at all"
    return redact(text, [token] if token else [])


def show(value: Any, secrets: Iterable[str] = (), limit: int = 120) -> str:
    """A value for a message: type-aware, shortened, tokens masked."""
    text = repr(value) if isinstance(value, str) else f"{type(value).__name__} {value!r}"
    if len(text) > limit:
        text = text[:limit] + "…"
    return redact(text, list(secrets))


def missing_keys(result: Any, keys: Iterable[str]) -> list[str]:
    if not isinstance(result, dict):
        return list(keys)
    return [k for k in keys if k not in result]
