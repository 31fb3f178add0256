"""Scripted faults for the simulators, described as data.

A checkpoint says exactly what a provider does on each request ("429 with
Retry-After: 1, then a hang, then fine"), so the student's failover can be
judged against a known script; an optional seeded failure rate adds noise
for the stability measurements.

Usage::

    schedule = FaultSchedule.from_data({
        "keys": {
            "together": [{"kind": "status", "status": 429, "headers": {"Retry-After": "1"}}, "ok"],
            "fal-ai": {"faults": ["hang"], "repeat": True},
        },
        "random": {"rate": 0.1, "faults": [503]},
    }, seed=seed)

    async def handler(request):
        fault = schedule.next("together")
        response = await apply(request, fault)
        if response is not None:
            return response            # the fault answered (or cut) the request
        ...                            # normal behaviour

Item shorthands: ``"ok"``, ``"hang"``, ``"reset"``, ``"malformed"``, an int
(``429`` = a status fault) or a full dict with the :class:`Fault` fields.
A bare list applies to every key that has no sequence of its own (one
shared sequence, consumed in arrival order).
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Mapping, Sequence

from aiohttp import web

from .log import record_of
from .seeds import rng_for

__all__ = ["Fault", "FaultSchedule", "apply", "abort_connection", "OK", "DEFAULT_KEY"]

KINDS = ("ok", "status", "hang", "reset", "malformed", "slow")
DEFAULT_KEY = "*"


@dataclass(frozen=True)
class Fault:
    """One scripted behaviour for one request.

    - ``ok``: no fault.
    - ``status``: answer ``status`` (default 500) with ``headers`` and ``body``
      (dict → JSON, str → text; default ``{"error": "<reason phrase>"}``).
    - ``hang``: send nothing for ``seconds`` (default 3600), then cut the
      connection — past any sane client timeout. Cancelled on shutdown.
    - ``reset``: abort the TCP connection with an RST (client: connection error).
    - ``malformed``: 200 ``application/json`` whose body is cut in half.
    - ``slow``: wait ``seconds``, then let the handler answer normally.
    """

    kind: str = "ok"
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | list[Any] | str | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {self.kind!r}")
        if self.status is not None and not 100 <= int(self.status) <= 599:
            raise ValueError(f"fault status must be an HTTP status, not {self.status!r}")
        if self.seconds is not None and self.seconds < 0:
            raise ValueError("fault seconds must be >= 0")

    @classmethod
    def from_data(cls, item: "Fault | Mapping[str, Any] | str | int | None") -> "Fault":
        """Build from a shorthand (``"hang"``, ``429``) or a dict of fields."""
        if isinstance(item, Fault):
            return item
        if item is None:
            return OK
        if isinstance(item, bool):
            raise TypeError("a fault cannot be a bool")
        if isinstance(item, int):
            return cls("status", status=item)
        if isinstance(item, str):
            return cls(item)
        if isinstance(item, Mapping):
            unknown = set(item) - {"kind", "status", "headers", "body", "seconds"}
            if unknown:
                raise ValueError(f"unknown fault keys: {sorted(unknown)}")
            kind = item.get("kind", "status" if "status" in item else "ok")
            seconds = item.get("seconds")
            return cls(
                kind=str(kind),
                status=None if item.get("status") is None else int(item["status"]),
                headers={str(k): str(v) for k, v in dict(item.get("headers") or {}).items()},
                body=item.get("body"),
                seconds=None if seconds is None else float(seconds),
            )
        raise TypeError(f"cannot build a Fault from {type(item).__name__}")

    def to_data(self) -> dict[str, Any]:
        """The dict form, as recorded in reports."""
        out: dict[str, Any] = {"kind": self.kind}
        for name in ("status", "headers", "body", "seconds"):
            value = getattr(self, name)
            if value:
                out[name] = value
        return out


OK = Fault("ok")


class _Sequence:
    def __init__(self, faults: list[Fault], repeat: bool) -> None:
        self.faults = faults
        self.repeat = repeat
        self.used = 0

    def next(self) -> Fault:
        if not self.faults:
            return OK
        if self.used < len(self.faults):
            fault = self.faults[self.used]
        elif self.repeat:
            fault = self.faults[self.used % len(self.faults)]
        else:
            fault = OK
        self.used += 1
        return fault


class FaultSchedule:
    """Per-key fault sequences plus an optional seeded random failure rate.

    ``next(key)`` is thread-safe and consumes one step of ``key``'s sequence
    (or of the default sequence when ``key`` has none). When the scripted
    step is ``ok`` and a random rate applies to ``key``, a draw from that
    key's own seeded stream may replace it with one of the random faults —
    per-key streams keep each key's draws independent of how requests to
    different keys interleave.
    """

    def __init__(
        self,
        sequences: Mapping[str, Sequence[Fault]] | None = None,
        *,
        repeat: Mapping[str, bool] | None = None,
        random_rate: float = 0.0,
        random_faults: Sequence[Fault] = (),
        random_keys: Sequence[str] | None = None,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= random_rate <= 1.0:
            raise ValueError("random failure rate must be within [0, 1]")
        repeat = repeat or {}
        self._seqs = {k: _Sequence(list(v), bool(repeat.get(k))) for k, v in (sequences or {}).items()}
        self._rate = float(random_rate)
        self._random_faults = list(random_faults) or [Fault("status", status=503)]
        self._random_keys = None if random_keys is None else set(random_keys)
        self._seed = seed
        self._rngs: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.history: list[tuple[str, Fault]] = []

    @classmethod
    def from_data(cls, data: Any, *, seed: int = 0) -> "FaultSchedule":
        """Build from a list (default sequence) or a dict, see the module doc.

        Dict form: ``{"keys": {key: [items] | {"faults": [items], "repeat":
        bool}}, "default": [items] | {...}, "random": {"rate": r, "faults":
        [items], "keys": [...]}}``; a dict with none of those three names is
        taken as the ``"keys"`` mapping itself.
        """
        if data is None:
            return cls(seed=seed)
        if isinstance(data, FaultSchedule):
            return data
        if isinstance(data, (list, tuple)):
            data = {"default": list(data)}
        if not isinstance(data, Mapping):
            raise TypeError(f"a fault schedule is a list or a dict, not {type(data).__name__}")
        if not set(data) & {"keys", "default", "random"}:
            data = {"keys": data}
        unknown = set(data) - {"keys", "default", "random"}
        if unknown:
            raise ValueError(f"unknown fault schedule keys: {sorted(unknown)}")
        sequences: dict[str, list[Fault]] = {}
        repeat: dict[str, bool] = {}
        entries = dict(data.get("keys") or {})
        if "default" in data:
            entries[DEFAULT_KEY] = data["default"]
        for key, spec in entries.items():
            if isinstance(spec, Mapping):
                items, rep = spec.get("faults", []), bool(spec.get("repeat", False))
            else:
                items, rep = spec, False
            if isinstance(items, (str, int, Mapping)):
                items = [items]
            sequences[str(key)] = [Fault.from_data(i) for i in items]
            repeat[str(key)] = rep
        rnd = dict(data.get("random") or {})
        faults = rnd.get("faults", [])
        return cls(
            sequences,
            repeat=repeat,
            random_rate=float(rnd.get("rate", 0.0)),
            random_faults=[Fault.from_data(i) for i in faults],
            random_keys=rnd.get("keys"),
            seed=seed,
        )

    def next(self, key: str = DEFAULT_KEY) -> Fault:
        """The fault for the next request to ``key`` (consumes one step)."""
        with self._lock:
            seq = self._seqs.get(key) or self._seqs.get(DEFAULT_KEY)
            fault = seq.next() if seq is not None else OK
            if fault.kind == "ok" and self._rate > 0 and (self._random_keys is None or key in self._random_keys):
                rng = self._rngs.get(key)
                if rng is None:
                    rng = self._rngs[key] = rng_for(self._seed, "faults", key)
                if rng.random() < self._rate:
                    fault = rng.choice(self._random_faults)
            self.history.append((key, fault))
            return fault

    def remaining(self, key: str = DEFAULT_KEY) -> int:
        """Scripted steps left for ``key`` (0 once exhausted or repeating)."""
        with self._lock:
            seq = self._seqs.get(key) or self._seqs.get(DEFAULT_KEY)
            if seq is None or seq.repeat:
                return 0
            return max(0, len(seq.faults) - seq.used)


def abort_connection(request: web.BaseRequest) -> None:
    """Cut the client's TCP connection with an RST (a "connection reset").

    SO_LINGER 0 makes the close send RST instead of FIN, so clients see
    ECONNRESET (httpx ReadError, requests ConnectionError) rather than a
    tidy end of stream. Usable mid-stream too.
    """
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    transport.abort()


async def apply(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """Carry out ``fault`` on ``request``; None means "answer normally".

    Marks the request's log record with ``outcome = "fault:<kind>"``.
    """
    if fault.kind == "ok":
        return None
    rec = record_of(request)
    if rec is not None:
        rec.outcome = f"fault:{fault.kind}"
        rec.extra["fault"] = fault.to_data()
    if fault.kind == "slow":
        await asyncio.sleep(fault.seconds or 0.0)
        return None
    if fault.kind == "status":
        return _status_response(fault)
    if fault.kind == "hang":
        # A plain sleep: the server's shutdown cancels it, so a hung request
        # never keeps the simulator alive.
        await asyncio.sleep(3600.0 if fault.seconds is None else fault.seconds)
        abort_connection(request)
        return _dead_response(rec)
    if fault.kind == "reset":
        abort_connection(request)
        return _dead_response(rec)
    # malformed: a 200 that promises JSON and delivers half of it.
    if isinstance(fault.body, (dict, list)):
        full = json.dumps(fault.body)
    elif isinstance(fault.body, str):
        full = fault.body
    else:
        full = json.dumps({"id": "cmpl-0", "object": "chat.completion", "choices": [{"index": 0}]})
    cut = full[: max(1, len(full) // 2)]
    return web.Response(status=fault.status or 200, text=cut, content_type="application/json", headers=fault.headers)


def _status_response(fault: Fault) -> web.Response:
    status = fault.status or 500
    body = fault.body
    if body is None:
        try:
            body = {"error": HTTPStatus(status).phrase}
        except ValueError:
            body = {"error": f"HTTP {status}"}
    if isinstance(body, (dict, list)):
        return web.json_response(body, status=status, headers=fault.headers)
    return web.Response(status=status, text=str(body), headers=fault.headers)


def _dead_response(rec: Any) -> web.StreamResponse:
    # The connection is gone; aiohttp only needs *a* response object to
    # finish the handler, and its write is dropped on the closed transport.
    if rec is not None:
        rec.status = None
    return web.Response(status=499)
