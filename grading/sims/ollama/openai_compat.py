"""Ollama's OpenAI-compatible API (``/v1``): chat completions, completions, models, embeddings.

As Ollama's openai middleware answers: ``system_fingerprint: "fp_ollama"``, ids ``chatcmpl-N`` /
``cmpl-N``, errors ``{"error": {"message", "type", "param": null, "code": null}}`` with type
``invalid_request_error`` (400), ``not_found_error`` (404) or ``api_error``; streams are SSE, one
token per chunk with the role in every delta, a last chunk with ``finish_reason``, a usage chunk
(``choices: []``) only with ``stream_options.include_usage``, then ``data: [DONE]``.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..base import sim_of
from ..text import message_text
from .runner import gen_request, generate, keep_alive_of, resolve
from .wire import ApiError, note, read_json

if TYPE_CHECKING:
    from .server import OllamaServer

__all__ = ["ROUTES", "openai_error"]

_IDS = itertools.count(1)
_TYPES = {400: "invalid_request_error", 404: "not_found_error"}


def openai_error(exc: ApiError) -> web.Response:
    return web.json_response({"error": {"message": exc.message, "type": _TYPES.get(exc.status, "api_error"),
                                        "param": None, "code": None}}, status=exc.status)


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _options(data: dict[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if data.get("max_tokens") is not None or data.get("max_completion_tokens") is not None:
        value = data.get("max_tokens", data.get("max_completion_tokens"))
        if not isinstance(value, int) or isinstance(value, bool):
            raise ApiError(400, "invalid max_tokens")
        options["num_predict"] = value
    for key in ("temperature", "seed", "top_p", "stop", "frequency_penalty", "presence_penalty"):
        if data.get(key) is not None:
            options[key] = data[key]
    return options


def _usage(out: Any) -> dict[str, int]:
    s = out.stats
    return {"prompt_tokens": s.prompt_eval_count, "completion_tokens": s.eval_count,
            "total_tokens": s.prompt_eval_count + s.eval_count}


async def _v1_generate(request: web.Request, *, chat: bool) -> web.StreamResponse:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    name, spec = resolve(server, data)
    if chat:
        raw_messages = data.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise ApiError(400, "[] is too short - 'messages'")
        messages = [{"role": m.get("role"), "content": message_text(m.get("content"))}
                    for m in raw_messages if isinstance(m, dict)]
    else:
        prompt = data.get("prompt")
        if not isinstance(prompt, str):
            raise ApiError(400, "prompt must be a string")
        messages = [{"role": "user", "content": prompt}]
    stream = bool(data.get("stream"))
    include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
    note(request, route="v1-chat" if chat else "v1-completions", stream=stream, messages=messages)
    req = gen_request(messages, _options(data))
    keep_alive = keep_alive_of(data)
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{next(_IDS)}"
    created = int(time.time())
    base = {"id": ident, "object": "chat.completion.chunk" if chat else "text_completion", "created": created,
            "model": name, "system_fingerprint": "fp_ollama"}

    def choice(piece: str, finish: str | None) -> dict[str, Any]:
        if chat:
            return {"index": 0, "delta": {"role": "assistant", "content": piece}, "finish_reason": finish}
        return {"text": piece, "index": 0, "finish_reason": finish}

    if not stream:
        out = await generate(server, request, spec, req, keep_alive)
        if chat:
            choices = [{"index": 0, "message": {"role": "assistant", "content": out.stats.text},
                        "finish_reason": out.stats.done_reason}]
        else:
            choices = [{"text": out.stats.text, "index": 0, "finish_reason": out.stats.done_reason}]
        obj = "chat.completion" if chat else "text_completion"
        return web.json_response({**base, "object": obj, "choices": choices, "usage": _usage(out)})
    holder: dict[str, web.StreamResponse] = {}

    async def opened() -> None:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        holder["resp"] = resp

    async def piece(tok: str) -> None:
        await holder["resp"].write(_sse({**base, "choices": [choice(tok, None)]}))

    out = await generate(server, request, spec, req, keep_alive, before_first=opened, on_piece=piece)
    resp = holder["resp"]
    await resp.write(_sse({**base, "choices": [choice("", out.stats.done_reason)]}))
    if include_usage:
        await resp.write(_sse({**base, "choices": [], "usage": _usage(out)}))
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


async def handle_chat_completions(request: web.Request) -> web.StreamResponse:
    return await _v1_generate(request, chat=True)


async def handle_completions(request: web.Request) -> web.StreamResponse:
    return await _v1_generate(request, chat=False)


def _model_obj(name: str, modified: float) -> dict[str, Any]:
    owner = name.split("/", 1)[0] if "/" in name else "library"
    return {"id": name, "object": "model", "created": int(modified), "owned_by": owner}


async def handle_models(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    note(request, route="v1-models")
    return web.json_response({"object": "list",
                              "data": [_model_obj(spec.name, modified) for spec, modified in server.store.tags()]})


async def handle_model(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    name = request.match_info.get("model", "") or request.path.split("/v1/models/", 1)[-1]
    note(request, route="v1-model", model=name)
    for spec, modified in server.store.tags():
        if spec.name == name or spec.name == name + ":latest":
            return web.json_response(_model_obj(spec.name, modified))
    raise ApiError(404, f"model '{name}' not found")


async def handle_embeddings(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    name = data.get("model")
    if not isinstance(name, str) or not name:
        raise ApiError(400, "model is required")
    spec = server.store.get(name)
    if spec is None:
        raise ApiError(404, f"model '{name}' not found")
    items = data.get("input")
    if items is None or items == [] or items == "":
        raise ApiError(400, "invalid input")
    texts = [items] if isinstance(items, str) else [str(t) for t in items]
    note(request, route="v1-embeddings", model=spec.name)
    from .runner import ensure_loaded

    await ensure_loaded(server, spec)
    vectors, n_tokens = server.engine.embed(spec, texts)
    server.store.mark_loaded(spec, keep_alive_of(data))
    note(request, tokens_in=n_tokens)
    dims = data.get("dimensions")
    if isinstance(dims, int) and dims > 0:
        vectors = [v[:dims] for v in vectors]
    return web.json_response({"object": "list", "model": name,
                              "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
                              "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}})


ROUTES: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"POST": handle_chat_completions},
    "/v1/completions": {"POST": handle_completions},
    "/v1/models": {"GET": handle_models},
    "/v1/embeddings": {"POST": handle_embeddings},
}
