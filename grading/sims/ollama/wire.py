"""Wire helpers shared by the native and the OpenAI-compatible routes: bodies, errors, options.

Error bodies are Ollama's (server/routes.go): JSON ``{"error": "..."}`` — an empty body is 400
``missing request body``, bad JSON 400 with the decoder's message, an unknown model 404
``model 'NAME' not found``; a wrong method is gin's plain-text ``405 method not allowed`` and an
unknown path ``404 page not found``.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..log import record_of

__all__ = ["ApiError", "read_json", "error_response", "ndjson_line", "options_of", "not_found", "note"]


class ApiError(Exception):
    """An error answer: ``status`` and the message that goes in ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def not_found(name: str) -> ApiError:
    return ApiError(404, f"model '{name}' not found")


def error_response(exc: ApiError) -> web.Response:
    return web.json_response({"error": exc.message}, status=exc.status)


async def read_json(request: web.Request, *, required: bool = True) -> dict[str, Any]:
    """The JSON object of the body, or ApiError as Ollama answers it."""
    raw = await request.read()
    if not raw.strip():
        if required:
            raise ApiError(400, "missing request body")
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ApiError(400, f"invalid character in request body: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ApiError(400, f"json: cannot unmarshal {type(data).__name__} into Go value of type api.Request")
    return data


def ndjson_line(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


def options_of(data: dict[str, Any]) -> dict[str, Any]:
    """The ``options`` object (validated loosely: a non-object is a 400, like the real server)."""
    options = data.get("options") or {}
    if not isinstance(options, dict):
        raise ApiError(400, "json: cannot unmarshal options into Go struct field of type map[string]interface {}")
    return options


def int_option(options: dict[str, Any], key: str) -> int | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"option \"{key}\" must be of type integer")
    return int(value)


def float_option(options: dict[str, Any], key: str) -> float | None:
    value = options.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"option \"{key}\" must be of type float")
    return float(value)


def note(request: web.Request, **fields: Any) -> None:
    """Fill the request's log record: model/tokens_* fields by name, anything else into ``extra``."""
    rec = record_of(request)
    if rec is None:
        return
    for key, value in fields.items():
        if key in ("model", "tokens_in", "tokens_out", "provider"):
            setattr(rec, key, value)
        else:
            rec.extra[key] = value
