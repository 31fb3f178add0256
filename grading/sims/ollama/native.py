"""Ollama's native API: ``/api/generate``, ``/api/chat`` (NDJSON streams), models and embeddings.

Shapes follow ollama/ollama docs/api.md and recorded traffic (tmc/langchaingo's
llms/ollama/testdata/*.httprr): stream lines ``{"model", "created_at", "response"|"message",
"done": false}``, a final object with ``done: true``, ``done_reason`` and the durations in integer
nanoseconds; ``Content-Type: application/x-ndjson``. The model name is echoed as the client gave it.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..base import sim_of
from .catalogue import VERSION, ModelSpec
from .models import iso_time
from .runner import ensure_loaded, gen_request, generate, keep_alive_of, load_only, resolve
from .wire import ApiError, ndjson_line, not_found, note, options_of, read_json

if TYPE_CHECKING:
    from .server import OllamaServer

__all__ = ["ROUTES", "details_of"]

NDJSON = "application/x-ndjson"


def _now() -> str:
    return iso_time(time.time())


def details_of(spec: ModelSpec) -> dict[str, Any]:
    return {"parent_model": "", "format": "gguf", "family": spec.family, "families": [spec.family],
            "parameter_size": spec.parameter_size, "quantization_level": spec.quantization_level}


def _durations(out: Any) -> dict[str, int]:
    s = out.stats
    return {"total_duration": out.total_duration_ns, "load_duration": out.load_duration_ns,
            "prompt_eval_count": s.prompt_eval_count, "prompt_eval_duration": s.prompt_eval_duration_ns,
            "eval_count": s.eval_count, "eval_duration": s.eval_duration_ns}


def _context(spec: ModelSpec, text: str, n: int) -> list[int]:
    digest = hashlib.sha256((spec.name + "\0" + text).encode()).digest()
    return [int.from_bytes(digest[(2 * i) % 30:(2 * i) % 30 + 2], "big") % 49152 for i in range(n)]


async def _stream(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"Content-Type": NDJSON})
    await resp.prepare(request)
    return resp


def _messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    messages = data.get("messages")
    if messages is None:
        return []
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        raise ApiError(400, "json: cannot unmarshal messages into Go struct field ChatRequest.messages of type []api.Message")
    for m in messages:
        if m.get("role") not in ("system", "user", "assistant", "tool"):
            raise ApiError(400, f"invalid role: {m.get('role')!r}")
    return [{"role": m.get("role"), "content": m.get("content") or ""} for m in messages]


async def handle_generate(request: web.Request) -> web.StreamResponse:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    name, spec = resolve(server, data)
    keep_alive, options = keep_alive_of(data), options_of(data)
    stream = data.get("stream", True) is not False
    prompt = data.get("prompt") or ""
    note(request, route="api-generate", stream=stream)
    if not prompt:
        reason = await load_only(server, request, spec, keep_alive)
        return web.json_response({"model": name, "created_at": _now(), "response": "", "done": True,
                                  "done_reason": reason})
    raw = bool(data.get("raw"))
    messages = [{"role": "user", "content": prompt}]
    if data.get("system") and not raw:
        messages.insert(0, {"role": "system", "content": str(data["system"])})
    req = gen_request(messages, options, raw=raw)
    if not stream:
        out = await generate(server, request, spec, req, keep_alive)
        body = {"model": name, "created_at": _now(), "response": out.stats.text, "done": True,
                "done_reason": out.stats.done_reason}
        if not raw:
            body["context"] = _context(spec, prompt, out.stats.prompt_eval_count + out.stats.eval_count)
        return web.json_response({**body, **_durations(out)})
    holder: dict[str, web.StreamResponse] = {}

    async def opened() -> None:
        holder["resp"] = await _stream(request)

    async def piece(tok: str) -> None:
        await holder["resp"].write(ndjson_line({"model": name, "created_at": _now(), "response": tok, "done": False}))

    out = await generate(server, request, spec, req, keep_alive, before_first=opened, on_piece=piece)
    final = {"model": name, "created_at": _now(), "response": "", "done": True, "done_reason": out.stats.done_reason}
    if not raw:
        final["context"] = _context(spec, prompt, out.stats.prompt_eval_count + out.stats.eval_count)
    resp = holder["resp"]
    await resp.write(ndjson_line({**final, **_durations(out)}))
    await resp.write_eof()
    return resp


async def handle_chat(request: web.Request) -> web.StreamResponse:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    name, spec = resolve(server, data)
    keep_alive, options = keep_alive_of(data), options_of(data)
    messages = _messages(data)
    stream = data.get("stream", True) is not False
    note(request, route="api-chat", stream=stream, messages=messages)
    if not messages:
        reason = await load_only(server, request, spec, keep_alive)
        return web.json_response({"model": name, "created_at": _now(),
                                  "message": {"role": "assistant", "content": ""}, "done_reason": reason,
                                  "done": True})
    req = gen_request(messages, options)
    if not stream:
        out = await generate(server, request, spec, req, keep_alive)
        return web.json_response({"model": name, "created_at": _now(),
                                  "message": {"role": "assistant", "content": out.stats.text},
                                  "done_reason": out.stats.done_reason, "done": True, **_durations(out)})
    holder: dict[str, web.StreamResponse] = {}

    async def opened() -> None:
        holder["resp"] = await _stream(request)

    async def piece(tok: str) -> None:
        await holder["resp"].write(ndjson_line({"model": name, "created_at": _now(),
                                                "message": {"role": "assistant", "content": tok}, "done": False}))

    out = await generate(server, request, spec, req, keep_alive, before_first=opened, on_piece=piece)
    resp = holder["resp"]
    await resp.write(ndjson_line({"model": name, "created_at": _now(),
                                  "message": {"role": "assistant", "content": ""},
                                  "done_reason": out.stats.done_reason, "done": True, **_durations(out)}))
    await resp.write_eof()
    return resp


async def handle_pull(request: web.Request) -> web.StreamResponse:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    name = data.get("model") or data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "invalid model name")
    stream = data.get("stream", True) is not False
    spec = server.library_spec(name)
    already = server.store.get(name) is not None
    note(request, route="api-pull", stream=stream, model=None if spec is None else spec.name,
         pulled=spec is not None, already_present=already)
    if spec is None and not stream:
        raise ApiError(500, "pull model manifest: file does not exist")
    lines = server.pull_plan(spec, already) if spec is not None else []
    if not stream:
        for _status, delay in lines:
            await server.clock.sleep(delay)
        server.store.add(spec)
        return web.json_response({"status": "success"})
    resp = await _stream(request)
    await resp.write(ndjson_line({"status": "pulling manifest"}))
    if spec is None:
        await resp.write(ndjson_line({"error": "pull model manifest: file does not exist"}))
        await resp.write_eof()
        return resp
    for status, delay in lines:
        await server.clock.sleep(delay)
        await resp.write(ndjson_line(status))
    server.store.add(spec)
    await resp.write(ndjson_line({"status": "success"}))
    await resp.write_eof()
    return resp


async def handle_tags(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    note(request, route="api-tags")
    models = [{"name": spec.name, "model": spec.name, "modified_at": iso_time(modified), "size": spec.size,
               "digest": spec.digest, "details": details_of(spec)} for spec, modified in server.store.tags()]
    return web.json_response({"models": models})


async def handle_ps(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    note(request, route="api-ps")
    models = [{"name": item.spec.name, "model": item.spec.name, "size": item.spec.size,
               "digest": item.spec.digest, "details": details_of(item.spec),
               "expires_at": iso_time(item.expires_wall), "size_vram": 0,
               "context_length": min(item.spec.context_length, 4096)} for item in server.store.running()]
    return web.json_response({"models": models})


async def handle_show(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    name = data.get("model") or data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required")
    spec = server.store.get(name)
    note(request, route="api-show", model=None if spec is None else spec.name)
    if spec is None:
        raise not_found(name)
    arch = spec.family.replace("-", "_")
    return web.json_response({
        "license": "Apache License 2.0",
        "modelfile": (f"# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, "
                      f"replace FROM with:\n# FROM {spec.name}\n\nFROM /root/.ollama/models/blobs/sha256-"
                      f"{spec.digest}\nTEMPLATE \"{{{{ .Prompt }}}}\"\n"),
        "parameters": "stop                           \"<|im_end|>\"",
        "template": "{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}<|im_start|>assistant\n",
        "details": details_of(spec),
        "model_info": {"general.architecture": arch, "general.parameter_count": _param_count(spec),
                       f"{arch}.context_length": spec.context_length,
                       f"{arch}.embedding_length": spec.embedding_length},
        "capabilities": list(spec.capabilities),
        "modified_at": iso_time(time.time()),
    })


def _param_count(spec: ModelSpec) -> int:
    text = spec.parameter_size.upper()
    scale = {"M": 1e6, "B": 1e9}.get(text[-1:], 1.0)
    try:
        return int(float(text.rstrip("MB")) * scale)
    except ValueError:
        return 0


async def handle_delete(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    name = data.get("model") or data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required")
    note(request, route="api-delete", model=name)
    if not server.store.remove(name):
        raise not_found(name)
    server.engine.unload(name)
    return web.Response(status=200)


async def handle_copy(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    source, destination = data.get("source"), data.get("destination")
    if not source or not destination:
        raise ApiError(400, "source and destination are required")
    note(request, route="api-copy", model=str(source), destination=destination)
    if not server.store.copy(str(source), str(destination)):
        raise not_found(str(source))
    return web.Response(status=200)


async def handle_embed(request: web.Request) -> web.Response:
    server: OllamaServer = sim_of(request)
    data = await read_json(request)
    legacy = request.path == "/api/embeddings"
    name, spec = _embed_model(server, data)
    keep_alive = keep_alive_of(data)
    items = data.get("prompt") if legacy else data.get("input")
    texts = [items] if isinstance(items, str) else [str(t) for t in (items or [])]
    note(request, route="api-embeddings" if legacy else "api-embed", model=spec.name)
    started = time.monotonic()
    load_ns, loaded = await ensure_loaded(server, spec)
    vectors, n_tokens = server.engine.embed(spec, texts)
    server.store.mark_loaded(spec, keep_alive)
    note(request, tokens_in=n_tokens, loaded=loaded, load_duration_ns=load_ns)
    if legacy:
        return web.json_response({"embedding": vectors[0] if vectors else []})
    dims = data.get("dimensions")
    if isinstance(dims, int) and dims > 0:
        vectors = [v[:dims] for v in vectors]
    return web.json_response({"model": name, "embeddings": vectors,
                              "total_duration": max(1, int((time.monotonic() - started) * 1e9)),
                              "load_duration": load_ns, "prompt_eval_count": n_tokens})


def _embed_model(server: "OllamaServer", data: dict[str, Any]) -> tuple[str, ModelSpec]:
    name = data.get("model")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required")
    spec = server.store.get(name)
    if spec is None:
        raise not_found(name)
    return name, spec


async def handle_version(request: web.Request) -> web.Response:
    note(request, route="api-version")
    return web.json_response({"version": VERSION})


async def handle_root(request: web.Request) -> web.Response:
    note(request, route="root")
    return web.Response(text="Ollama is running", content_type="text/plain")


#: path -> {method: handler}
ROUTES: dict[str, dict[str, Any]] = {
    "/": {"GET": handle_root, "HEAD": handle_root},
    "/api/version": {"GET": handle_version, "HEAD": handle_version},
    "/api/tags": {"GET": handle_tags, "HEAD": handle_tags},
    "/api/ps": {"GET": handle_ps},
    "/api/show": {"POST": handle_show},
    "/api/pull": {"POST": handle_pull},
    "/api/delete": {"DELETE": handle_delete},
    "/api/copy": {"POST": handle_copy},
    "/api/generate": {"POST": handle_generate},
    "/api/chat": {"POST": handle_chat},
    "/api/embed": {"POST": handle_embed},
    "/api/embeddings": {"POST": handle_embed},
}
