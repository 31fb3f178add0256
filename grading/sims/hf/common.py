"""Shared pieces of the HF simulator's handlers: tokens, error bodies, faults, JSON bodies.

Error bodies copy the real services (see docs/hf-sim.md and DESIGN.md "Facts checked"):

- router and provider routes, no or bad token: 401 ``{"error": "Invalid username or password."}``
  with ``X-Error-Message`` and ``WWW-Authenticate`` (recorded);
- Hub API, bad token: 401 ``{"error": "Invalid credentials in Authorization header"}``;
  unknown repo: 404 ``{"error": "Repository not found"}`` with ``X-Error-Code: RepoNotFound``;
- the router's OpenAI-compatible ``/v1``: ``{"error": {message, type, param, code}}``;
- TGI (hf-inference chat): body that does not deserialize -> 422 ``text/plain``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..faults import Fault, apply
from ..log import record_of

if TYPE_CHECKING:
    from .server import HFSimulator

__all__ = [
    "bearer_token",
    "token_ok",
    "router_unauthorized",
    "hub_unauthorized",
    "repo_not_found",
    "openai_error",
    "hf_error",
    "apply_fault",
    "read_json",
    "retry_after_seconds",
]

INVALID_LOGIN = "Invalid username or password."
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"


def bearer_token(request: web.BaseRequest) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (None when absent or another scheme)."""
    value = request.headers.get("Authorization", "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def token_ok(sim: "HFSimulator", token: str | None) -> bool:
    """The canary the simulator was told about, or any ``hf_…`` token when none was."""
    if not token:
        return False
    expected = sim.expected_token
    if expected:
        return token == expected
    return token.startswith("hf_") and len(token) > 3


def router_unauthorized() -> web.Response:
    return web.json_response(
        {"error": INVALID_LOGIN},
        status=401,
        headers={
            "X-Error-Message": INVALID_LOGIN,
            "WWW-Authenticate": 'Bearer realm="Authentication required", charset="UTF-8"',
        },
    )


def hub_unauthorized() -> web.Response:
    return web.json_response(
        {"error": INVALID_CREDENTIALS}, status=401, headers={"X-Error-Message": INVALID_CREDENTIALS}
    )


def repo_not_found(authenticated: bool) -> web.Response:
    """The Hub's answer for a repo that does not exist (401 when anonymous, as the Hub does)."""
    if not authenticated:
        return web.json_response(
            {"error": INVALID_LOGIN},
            status=401,
            headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": INVALID_LOGIN},
        )
    return web.json_response(
        {"error": "Repository not found"},
        status=404,
        headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
    )


_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found_error",
                 422: "invalid_request_error", 429: "rate_limit_error"}


def openai_error(status: int, message: str, *, param: str | None = None, code: Any = None,
                 headers: dict[str, str] | None = None) -> web.Response:
    """An OpenAI-style error (the router's ``/v1``)."""
    kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status, headers=headers)


def hf_error(status: int, message: str, *, headers: dict[str, str] | None = None,
             **extra: Any) -> web.Response:
    """A router/provider-route error: ``{"error": message, ...}``."""
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


def _default_fault_body(status: int, style: str) -> Any:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = f"HTTP {status}"
    messages = {
        429: "Rate limit reached. Please retry later.",
        500: "Internal Server Error",
        502: "Bad Gateway: the provider did not answer",
        503: "Service Unavailable: the model is overloaded, retry later",
        504: "Gateway Timeout",
    }
    message = messages.get(status, phrase)
    if style == "openai":
        kind = _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return {"error": message}


def retry_after_seconds(headers: dict[str, str]) -> float | None:
    for k, v in headers.items():
        if k.lower() == "retry-after":
            try:
                return float(v)
            except ValueError:
                return None
    return None


async def apply_fault(request: web.Request, fault: Fault, *, style: str,
                      malformed_body: Any = None) -> web.StreamResponse | None:
    """``faults.apply`` with bodies shaped like the route's real errors; None: answer normally."""
    if fault.kind == "ok":
        return None
    if fault.kind == "status" and fault.body is None:
        fault = replace(fault, body=_default_fault_body(fault.status or 500, style))
    if fault.kind == "malformed" and fault.body is None and malformed_body is not None:
        fault = replace(fault, body=malformed_body)
    rec = record_of(request)
    if rec is not None and fault.headers:
        ra = retry_after_seconds(fault.headers)
        if ra is not None:
            rec.extra["retry_after_s"] = ra
    return await apply(request, fault)


async def read_json(request: web.Request) -> tuple[Any, bytes, str | None]:
    """``(parsed, raw, error)``: error is a JSON parse message, None when the body parsed."""
    raw = await request.read()
    if not raw.strip():
        return None, raw, "EOF while parsing a value at line 1 column 0"
    try:
        return json.loads(raw), raw, None
    except (ValueError, UnicodeDecodeError) as exc:
        line = getattr(exc, "lineno", 1)
        col = getattr(exc, "colno", 1)
        return None, raw, f"{getattr(exc, 'msg', str(exc))} at line {line} column {col}"
