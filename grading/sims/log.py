"""The request log every simulator writes and every checkpoint reads.

One schema for all services, so a checkpoint asks the same questions of
the HF router, Ollama and the vLLM-style server: who was called, when, with
which headers and body, and what came back.

Usage::

    log = RequestLog()
    app = web.Application(middlewares=[log_middleware(log, "hf")])

    async def handler(request):
        rec = record_of(request)          # the RequestRecord being filled
        rec.provider, rec.model = "together", body["model"]
        ...

    log.records(service="hf", provider="together", status=429)
    log.to_jsonl("requests.jsonl")
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from aiohttp import web

__all__ = ["RequestRecord", "RequestLog", "log_middleware", "record_of", "RECORD_KEY"]


@dataclass
class RequestRecord:
    """One request as a simulator saw it.

    ``t_wall`` is ``time.time()`` at arrival (for humans and reports); the
    other ``t_*`` are ``time.monotonic()`` values (for arithmetic), None when
    the request never got that far. ``t_first_content`` is set by handlers
    when the first chunk carrying content (a token, image bytes) is written.
    ``outcome`` is ``"ok"``, ``"fault:<kind>"`` (a scripted fault) or
    ``"error:<why>"``: ``http_<status>`` (an error answer), ``cancelled``
    (the client left or the server stopped), or the exception's type name.
    ``status`` stays None when no response was sent (reset, hang, cancel).
    """

    id: int
    service: str
    t_wall: float
    t_start: float
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    body_size: int = 0
    t_first_byte: float | None = None
    t_first_content: float | None = None
    t_end: float | None = None
    provider: str | None = None
    model: str | None = None
    status: int | None = None
    outcome: str = "ok"
    tokens_in: int | None = None
    tokens_out: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        """Seconds from arrival to the end of the response, if it ended."""
        return None if self.t_end is None else self.t_end - self.t_start

    def mark_first_content(self) -> None:
        """Record now as the first content write (only the first call counts)."""
        if self.t_first_content is None:
            self.t_first_content = time.monotonic()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able copy."""
        return dataclasses.asdict(self)


# aiohttp >= 3.12 warns on string keys in request storage; RequestKey is the
# typed replacement. Older versions (pyproject allows 3.9) take a plain str.
RECORD_KEY: Any = web.RequestKey("record", RequestRecord) if hasattr(web, "RequestKey") else "record"


def record_of(request: web.BaseRequest) -> RequestRecord | None:
    """The record the log middleware attached to ``request`` (None if not logged)."""
    return request.get(RECORD_KEY)


class RequestLog:
    """Thread-safe list of :class:`RequestRecord`.

    Simulators append from their event-loop thread while the grader reads
    from its own, hence the lock. ``listeners`` are called with each record
    once its response has finished (used by ``serve`` to print one line per
    request); a failing listener never breaks a request.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []
        self._ids = itertools.count(1)
        self._listeners: list[Callable[[RequestRecord], None]] = []

    def add_listener(self, callback: Callable[[RequestRecord], None]) -> None:
        """Call ``callback(record)`` whenever a request finishes."""
        with self._lock:
            self._listeners.append(callback)

    def new_record(self, service: str, method: str, path: str, **fields: Any) -> RequestRecord:
        """Create, append and return a record stamped with the arrival times."""
        with self._lock:
            rec = RequestRecord(
                id=next(self._ids),
                service=service,
                t_wall=time.time(),
                t_start=time.monotonic(),
                method=method,
                path=path,
                **fields,
            )
            self._records.append(rec)
        return rec

    def finished(self, record: RequestRecord) -> None:
        """Tell the listeners that ``record`` is complete."""
        with self._lock:
            listeners = list(self._listeners)
        for cb in listeners:
            try:
                cb(record)
            except Exception:  # a display hook must never fail a request
                pass

    @staticmethod
    def wait_finished(records: list[RequestRecord], timeout_s: float = 2.0) -> None:
        """Wait (at most ``timeout_s``) until every record has its end stamped. A client may return as
        soon as it has read a stream's last event (``data: [DONE]``), a moment before the server's
        handler closes the response and stamps ``t_end``; on a busy machine that moment grows."""
        deadline = time.monotonic() + timeout_s
        while any(r.t_end is None for r in records) and time.monotonic() < deadline:
            time.sleep(0.005)

    def records(self, **filters: Any) -> list[RequestRecord]:
        """Records whose fields equal the given values, in arrival order.

        A filter value may be a callable used as a predicate on that field:
        ``log.records(service="hf", status=lambda s: s and s >= 500)``.
        """
        for name in filters:
            if name not in RequestRecord.__dataclass_fields__:
                raise TypeError(f"RequestRecord has no field {name!r}")
        with self._lock:
            items = list(self._records)
        out = []
        for rec in items:
            ok = True
            for name, want in filters.items():
                have = getattr(rec, name)
                if callable(want):
                    ok = bool(want(have))
                else:
                    ok = have == want
                if not ok:
                    break
            if ok:
                out.append(rec)
        return out

    def __iter__(self) -> Iterator[RequestRecord]:
        return iter(self.records())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def snapshot(self) -> list[dict[str, Any]]:
        """All records as JSON-able dicts (copies, safe to keep)."""
        return [rec.to_dict() for rec in self.records()]

    def to_jsonl(self, path: str | os.PathLike[str]) -> int:
        """Write one JSON object per line to ``path``; return the count."""
        snap = self.snapshot()
        with open(path, "w", encoding="utf-8") as fh:
            for item in snap:
                fh.write(json.dumps(item, default=str, ensure_ascii=False) + "\n")
        return len(snap)

    def clear(self) -> None:
        """Forget every record (ids keep counting, so they stay unique)."""
        with self._lock:
            self._records.clear()


def _parse_body(raw: bytes, content_type: str) -> Any:
    # Only JSON bodies are kept parsed; anything else is summarised by size.
    if not raw:
        return None
    if "json" in content_type or raw.lstrip()[:1] in (b"{", b"["):
        try:
            return json.loads(raw)
        except ValueError:
            return None
    return None


def log_middleware(log: RequestLog, service: str) -> Any:
    """aiohttp middleware that records every request into ``log``.

    Place it first (outermost) so faults, validation errors and crashes
    are all recorded. Handlers fill ``provider``, ``model``, ``tokens_*``
    and ``t_first_content`` through :func:`record_of`.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        raw = await request.read()  # aiohttp caches it, handlers can read again
        rec = log.new_record(
            service,
            request.method,
            request.path,
            query={k: v for k, v in request.query.items()},
            # Keep Authorization: checkpoints verify the canary token was
            # sent as a header (and never in the URL or the body).
            headers={k.lower(): v for k, v in _joined_headers(request)},
            body=_parse_body(raw, request.content_type),
            body_size=len(raw),
        )
        request[RECORD_KEY] = rec
        # Which of the server's sockets the request came in on (a worker's relay connects to the one
        # of the port it was reached on: grading/sandbox/netrelay.py).
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if isinstance(sockname, str) and sockname:
            rec.extra["listener"] = sockname
        try:
            resp = await handler(request)
            await _send(request, rec, resp)
            return resp
        except web.HTTPException as exc:
            # aiohttp 3.x: an HTTPException is a Response; send it here (for
            # the timings) and re-raise, as returning one is deprecated.
            await _send(request, rec, exc)
            raise
        except BaseException as exc:
            if rec.outcome == "ok":
                rec.outcome = "error:" + _why(exc)
            if rec.status is None and isinstance(exc, Exception) and not isinstance(exc, OSError):
                rec.status = 500  # what aiohttp answers for a crashed handler
            raise
        finally:
            if rec.t_end is None:  # not stamped by write_eof (crash, cancel, reset)
                rec.t_end = time.monotonic()
            log.finished(rec)

    return middleware


async def _send(request: web.Request, rec: RequestRecord, resp: web.StreamResponse) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        return  # cut on purpose (a reset/hang fault) or by the client: no status
    if not resp.prepared:
        # Send a plain Response now, so t_first_byte and t_end are the
        # moments the bytes really left, not when the object was built.
        await resp.prepare(request)
        await resp.write_eof()


def _joined_headers(request: web.BaseRequest) -> Iterator[tuple[str, str]]:
    seen: dict[str, str] = {}
    for k, v in request.headers.items():
        key = k.lower()
        seen[key] = f"{seen[key]}, {v}" if key in seen else v
    return iter(seen.items())


def _why(exc: BaseException) -> str:
    if isinstance(exc, asyncio.CancelledError):
        return "cancelled"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)) or type(exc).__name__ in (
        "ClientConnectionResetError",
    ):
        return "client_disconnected"
    return type(exc).__name__


async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Signal handler: stamp status and ``t_first_byte`` as the headers go out.

    It also makes the response stamp ``t_end`` just before its final write,
    so a client that has read the whole response finds the record complete
    (status, outcome, t_end); a streaming client that stops at the last event
    (``data: [DONE]``) may return just before that: see
    :meth:`RequestLog.wait_finished`.
    ``SimServer`` installs it; add it to ``app.on_response_prepare`` yourself
    when using :func:`log_middleware` without a SimServer.
    """
    rec = record_of(request)
    transport = request.transport
    if rec is None or transport is None or transport.is_closing():
        return
    if rec.t_first_byte is None:
        rec.t_first_byte = time.monotonic()
    rec.status = response.status
    if response.status >= 400 and rec.outcome == "ok":
        rec.outcome = f"error:http_{response.status}"
    write_eof = response.write_eof

    async def stamped_write_eof(data: bytes = b"") -> None:
        if rec.t_end is None:
            rec.t_end = time.monotonic()
        await write_eof(data)

    try:
        response.write_eof = stamped_write_eof  # type: ignore[method-assign]
    except AttributeError:  # a future aiohttp with slots: the middleware stamps it
        pass
