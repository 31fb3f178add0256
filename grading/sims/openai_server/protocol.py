"""vLLM's request validation and error bodies, as vLLM 0.32.0 answers them (DESIGN.md, "Facts checked").

Every error is ``{"error": {"message", "type", "param", "code"}}`` with ``code`` = the HTTP status:

* the request does not fit the schema (FastAPI/pydantic ``RequestValidationError``): 400, type
  ``"Bad Request"``, ``param`` the location joined with dots (``"body.messages"``), the message
  pydantic's error list;
* vLLM's own checks (``VLLMValidationError``, an unknown model): type ``"BadRequestError"`` (400) or
  ``"NotFoundError"`` (404 for the model, ``param: "model"``); the message ends with
  ``(parameter=..., value=...)`` when the check names them (``VLLMValidationError.__str__``);
* unknown routes: 404 ``{"detail": "Not Found"}``; a wrong method: 405 ``{"detail": "Method Not Allowed"}``.

Field types are coerced as pydantic's lax mode does (``"5"`` is a fine integer, ``1.5`` is not).
"""

from __future__ import annotations

import json
import math
from typing import Any

from aiohttp import web

__all__ = ["ApiError", "JSON_TYPE", "json_answer", "error_response", "schema_error", "vllm_error", "read_body", "coerce", "not_found",
           "model_not_found", "method_not_allowed", "check_sampling", "check_context"]


class ApiError(Exception):
    """An error answer: status, message, type, param."""

    def __init__(self, status: int, message: str, type_: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param = status, message, type_, param

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.status}}


JSON_TYPE = "application/json"          # vLLM (FastAPI's JSONResponse) sends no charset parameter


def json_answer(obj: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON body the way vLLM sends it: compact, UTF-8, ``Content-Type: application/json``."""
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, headers={"Content-Type": JSON_TYPE, **(headers or {})})


def error_response(exc: ApiError) -> web.Response:
    return json_answer(exc.body(), status=exc.status)


def not_found() -> web.Response:
    return json_answer({"detail": "Not Found"}, status=404)


def method_not_allowed(allowed: list[str]) -> web.Response:
    return json_answer({"detail": "Method Not Allowed"}, status=405, headers={"Allow": ", ".join(allowed)})


def model_not_found(name: str, aliases: "tuple[str, ...] | list[str]" = ()) -> ApiError:
    """vLLM's ``_check_model``: 404 NotFoundError, param "model" (no ``(parameter=...)`` suffix); the
    served names follow as "Valid aliases" (recorded from vLLM 0.32.0)."""
    tail = f" Valid aliases: {', '.join(aliases)}." if aliases else ""
    return ApiError(404, f"The model `{name}` does not exist.{tail}", "NotFoundError", "model")


def vllm_error(message: str, *, parameter: str | None = None, value: Any = None, status: int = 400) -> ApiError:
    """A ``VLLMValidationError`` as the server answers it."""
    extras = []
    if parameter is not None:
        extras.append(f"parameter={parameter}")
    if value is not None:
        extras.append(f"value={value}")
    text = f"{message} ({', '.join(extras)})" if extras else message
    return ApiError(status, text, "BadRequestError" if status == 400 else "NotFoundError", parameter)


_MESSAGES = {
    "missing": "Field required",
    "list_type": "Input should be a valid list",
    "string_type": "Input should be a valid string",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_type": "Input should be a valid integer",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "float_type": "Input should be a valid number",
    "bool_parsing": "Input should be a valid boolean, unable to interpret input",
    "bool_type": "Input should be a valid boolean",
    "dict_type": "Input should be a valid dictionary or object to extract fields from",
    "json_invalid": "JSON decode error",
}


def _input_repr(value: Any) -> str:
    """How vLLM 0.32.0's validation handler shows an input: containers summarised, scalars as strings."""
    if isinstance(value, dict):
        return f"<dict of {len(value)} items>"
    if isinstance(value, list):
        return f"<list of {len(value)} items>"
    return str(value)


def schema_error(kind: str, loc: tuple[Any, ...], value: Any, *, param: str | None = None,
                 ctx: dict[str, Any] | None = None) -> ApiError:
    """FastAPI's RequestValidationError through vLLM's handler (400 "Bad Request"), as recorded from vLLM
    0.32.0: ``1 validation error:\n  {'type': ..., 'loc': 'body.messages', 'msg': ..., 'input': '<dict of
    1 items>'}``, ``param`` the dotted location."""
    where = ".".join(str(p) for p in loc)
    err: dict[str, Any] = {"type": kind, "loc": where, "msg": _MESSAGES[kind], "input": _input_repr(value)}
    if ctx:
        err["ctx"] = ctx
    return ApiError(400, f"1 validation error:\n  {err!r}", "Bad Request", param if param is not None else where)


async def read_body(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body, or the 400 FastAPI gives."""
    raw = await request.read()
    try:
        data = json.loads(raw or b"")
    except ValueError as exc:
        pos = getattr(exc, "pos", 0)
        why = getattr(exc, "msg", str(exc))
        raise schema_error("json_invalid", ("body", pos), {}, ctx={"error": why}) from None
    if not isinstance(data, dict):
        raise schema_error("dict_type", ("body",), data)
    return data


_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def coerce(data: dict[str, Any], key: str, kind: str, *, required: bool = False) -> Any:
    """``data[key]`` as pydantic's lax mode reads a field of ``kind`` (str|int|float|bool|list|dict), or the 400."""
    loc = ("body", key)
    if key not in data or (data[key] is None and not required):
        if required:
            raise schema_error("missing", loc, data)
        return None
    value = data[key]
    if kind == "str":
        if isinstance(value, str):
            return value
        raise schema_error("string_type", loc, value)
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            raise schema_error("int_from_float", loc, value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                raise schema_error("int_parsing", loc, value) from None
        raise schema_error("int_type", loc, value)
    if kind == "float":
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise schema_error("float_parsing", loc, value) from None
        raise schema_error("float_type", loc, value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise schema_error("bool_parsing" if isinstance(value, (str, int)) else "bool_type", loc, value)
    if kind == "list":
        if isinstance(value, list):
            return value
        raise schema_error("list_type", loc, value)
    if kind == "dict":
        if isinstance(value, dict):
            return value
        raise schema_error("dict_type", loc, value)
    raise ValueError(kind)


def check_sampling(temperature: float | None, top_p: float | None, max_tokens: int | None, n: int) -> None:
    """``SamplingParams._verify_args`` and the greedy check, in vLLM's order and words."""
    if n < 1:
        raise vllm_error(f"n must be at least 1, got {n}.", parameter="n", value=n)
    temp = 1.0 if temperature is None else temperature
    if not math.isfinite(temp):
        raise vllm_error(f"temperature must be a finite number, got {temp}.", parameter="temperature", value=temp)
    if temp < 0.0:
        raise vllm_error(f"temperature must be non-negative, got {temp}.", parameter="temperature", value=temp)
    if temp > 2.0:
        raise vllm_error(f"temperature must be in [0, 2], got {temp}.", parameter="temperature", value=temp)
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise vllm_error(f"top_p must be in (0, 1], got {top_p}.", parameter="top_p", value=top_p)
    if max_tokens is not None and max_tokens < 1:
        raise vllm_error(f"max_tokens must be at least 1, got {max_tokens}.", parameter="max_tokens",
                         value=max_tokens)
    if temp < 1e-5 and n > 1:
        raise vllm_error(f"n must be 1 when using greedy sampling, got {n}.")


def check_context(prompt_tokens: int, max_tokens: int | None, max_model_len: int) -> int:
    """The context-length checks, in vLLM 0.32.0's order and words (recorded from a real server); returns
    the max_tokens to use: the request's, clamped to what the context has left (vLLM does not refuse
    prompt + max_tokens > max_model_len: it stops at the context's end with finish_reason "length")."""
    if max_tokens is not None and max_tokens > max_model_len:
        raise vllm_error(f"max_tokens={max_tokens} cannot be greater than max_model_len={max_model_len}. Please "
                         "request fewer output tokens.", parameter="max_tokens", value=max_tokens)
    if prompt_tokens > max_model_len:
        # vLLM tokenizes at most max_model_len + 1 tokens of the prompt, hence "at least"
        seen = max_model_len + 1
        raise vllm_error(f"This model's maximum context length is {max_model_len} tokens. However, your prompt "
                         f"contains at least {seen} input tokens, which exceeds this limit even without any output "
                         "tokens. Please reduce the length of the input prompt.", parameter="input_tokens", value=seen)
    left = max_model_len - prompt_tokens
    use = left if max_tokens is None else min(max_tokens, left)
    if use < 1:
        raise vllm_error(f"max_tokens must be at least 1, got {use}.", parameter="max_tokens", value=use)
    return use
