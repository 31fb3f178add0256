"""The log as a timeline: the chat requests the simulator saw (:class:`Request`), in order of arrival,
and how they are named in messages (:func:`summary`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from grading.judges.failover.policy import RETRY_AFTER_LIMIT_S

#: the log's ``extra["route"]`` values of a chat request (the Hub's mapping lookups are not attempts)
CHAT_ROUTES = frozenset({"provider-chat", "router-chat"})


# -- the log ------------------------------------------------------------------------------------------
def _field(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def _header(headers: Mapping, name: str) -> Any:
    """The value of header ``name`` (lower case) in ``headers``, whatever its case there; None if absent."""
    return next((v for k, v in headers.items() if str(k).lower() == name), None)


@dataclass(frozen=True)
class Request:
    """One chat request as the simulator saw it (``index`` counts from 1 within the run)."""

    index: int
    provider: str
    status: int | None
    outcome: str
    t_start: float
    t_end: float | None
    retry_after_s: float | None = None

    @property
    def answered(self) -> bool:
        """Did the provider send a status line (False for a hang or a reset)?"""
        return self.status is not None

    @property
    def hang(self) -> bool:
        return self.outcome == "fault:hang" or (self.status is None and self.t_end is None)

    @property
    def kind(self) -> str:
        """``ok`` | ``retry`` | ``auth`` (401/403) | ``client`` (other 4xx but 408/429)."""
        if self.outcome.startswith("fault:malformed"):
            return "retry"
        if self.status is None:
            return "retry"
        if 200 <= self.status < 300:
            return "ok" if self.outcome in ("ok", "fault:slow") else "retry"
        if self.status in (401, 403):
            return "auth"
        if self.status in (408, 429) or self.status >= 500:
            return "retry"
        if 400 <= self.status < 500:
            return "client"
        return "retry"

    @property
    def retry_later_too_long(self) -> bool:
        """A retryable answer whose Retry-After is over the limit: move on, do not wait."""
        return (self.kind == "retry" and self.retry_after_s is not None
                and self.retry_after_s > RETRY_AFTER_LIMIT_S)

    @property
    def unscripted_error(self) -> bool:
        """The simulator itself refused the request (a malformed call), not a scripted fault."""
        return self.outcome.startswith("error:http_") and self.status is not None and self.status >= 400

    def end(self, timeout: float | None) -> float:
        """When the client saw this attempt end: the answer's end, or the per-attempt timeout."""
        if self.t_end is not None and (self.answered or timeout is None or
                                       self.t_end - self.t_start <= float(timeout)):
            return self.t_end
        if timeout is not None:
            return self.t_start + float(timeout)
        return self.t_start if self.t_end is None else self.t_end

    def describe(self) -> str:
        if self.outcome.startswith("fault:malformed"):
            return "a malformed body (HTTP 200 with broken JSON)"
        if self.status is None:
            if self.outcome == "fault:reset":
                return "a connection reset"
            return "no answer (the provider hung)"
        text = f"HTTP {self.status}"
        if self.retry_after_s is not None:
            text += f" with Retry-After: {self.retry_after_s:g}"
        return text

    def label(self) -> str:
        return f"request {self.index} ({self.provider}: {self.describe()})"


def _retry_after(record: Any) -> float | None:
    """``extra.retry_after_s``, else delta-seconds in the scripted fault's ``Retry-After`` header."""
    extra = _field(record, "extra") or {}
    if not isinstance(extra, Mapping):
        return None
    value = extra.get("retry_after_s")
    if value is None:
        fault = extra.get("fault")
        headers = fault.get("headers") if isinstance(fault, Mapping) else None
        if isinstance(headers, Mapping):
            value = _header(headers, "retry-after")
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def chat_requests(records: Iterable[Any], *, since: float | None = None,
                  until: float | None = None) -> list[Request]:
    """The chat requests among ``records`` that started in ``[since, until]``, in order of arrival.

    Records without a route (a fake log) count as chat requests; the Hub's model-mapping lookups,
    image routes and other services' records do not.
    """
    chosen = []
    for record in records:
        service = _field(record, "service")
        if service not in (None, "hf"):
            continue
        extra = _field(record, "extra") or {}
        route = extra.get("route") if isinstance(extra, Mapping) else None
        if route is not None and route not in CHAT_ROUTES:
            continue
        start = _field(record, "t_start")
        if start is None or (since is not None and start < since) or (until is not None and start > until):
            continue
        chosen.append(record)
    chosen.sort(key=lambda r: float(_field(r, "t_start")))
    out = []
    for i, record in enumerate(chosen, 1):
        status = _field(record, "status")
        end = _field(record, "t_end")
        out.append(Request(index=i, provider=str(_field(record, "provider")),
                           status=None if status is None else int(status),
                           outcome=str(_field(record, "outcome") or "ok"),
                           t_start=float(_field(record, "t_start")),
                           t_end=None if end is None else float(end),
                           retry_after_s=_retry_after(record)))
    return out


def summary(requests: Sequence[Request], limit: int = 12) -> str:
    """``a: HTTP 503, a: HTTP 503, b: HTTP 200`` — what the providers saw, for messages."""
    parts = [f"{r.provider}: {r.describe()}" for r in requests[:limit]]
    if len(requests) > limit:
        parts.append(f"… {len(requests) - limit} more")
    return ", ".join(parts) if parts else "no request at all"


def _n(count: int, word: str) -> str:
    """``1 retry``, ``2 retries``, ``3 requests``."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word[:-1]}ies" if word.endswith("y") else f"{count} {word}s"


def _retry_numbers(requests: Sequence[Request]) -> list[int]:
    """For each request, how many requests to the same provider came right before it (0 = first try)."""
    numbers = []
    for i, req in enumerate(requests):
        numbers.append(numbers[-1] + 1 if i and requests[i - 1].provider == req.provider else 0)
    return numbers
