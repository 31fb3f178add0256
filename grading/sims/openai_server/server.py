"""``VLLMServer``: vLLM's OpenAI-compatible surface on a paced, batching simulator (tier ``sim``).

Routes: ``GET /health`` (200, empty body), ``GET /version``, ``GET /v1/models``, ``POST
/v1/chat/completions``, ``POST /v1/completions``, ``POST /tokenize``, ``POST /detokenize``, ``GET
/metrics`` (Prometheus ``vllm:*``); an unknown route is 404 ``{"detail": "Not Found"}``, a wrong method
405. Pacing and batching: engine.py; wire format and log: generate.py; errors: protocol.py.

Control API (grader thread)::

    server.reset()                                      # catalogue pacing back, metrics cleared (log kept)
    server.set_behavior(ttft_s=0.2, itl_s=0.02, batch_size=4, max_model_len=1024)   # before time_scale
    server.time_scale = 1.0                             # multiply every configured time
    server.model.name, server.model.max_model_len       # what the server serves now
    server.truth()                                      # the pacing in effect, in seconds (after time_scale)
    server.log.records(service="vllm", path="/v1/chat/completions")
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aiohttp import web

from ..base import SimServer, sim_of
from ..log import RequestLog, record_of
from ..text import count_prompt_tokens, message_text, tokenize
from .catalogue import ModelConfig, load_catalogue
from .engine import BatchEngine, Metrics
from .generate import handle_chat, handle_completions
from .protocol import (ApiError, coerce, error_response, json_answer, method_not_allowed, model_not_found, not_found,
                       read_body, vllm_error)
from .replies import token_id

__all__ = ["VLLMServer", "STANDIN_DIR", "ROUTES"]

#: the directory holding the worker's stand-in ``vllm`` package (tier sim only)
STANDIN_DIR = Path(__file__).resolve().parent / "standin"


class VLLMServer(SimServer):
    """The ``vllm`` service of the sim tier."""

    redirect_hosts: tuple[str, ...] = ()

    def __init__(self, *, seed: int, host: str = "127.0.0.1", port: int = 0, log: RequestLog | None = None,
                 unix_path: str | None = None, catalogue: dict[str, Any] | None = None,
                 time_scale: float | None = None) -> None:
        super().__init__(name="vllm", host=host, port=port, unix_path=unix_path, log=log)
        self.seed = int(seed)
        self.tier = "sim"
        self.catalogue = catalogue if catalogue is not None else load_catalogue()
        self.version = str(self.catalogue.get("version", "0.32.0"))
        self._base_model = ModelConfig.from_catalogue(self.catalogue)
        self._base_scale = float(self.catalogue.get("sim", {}).get("time_scale", 1.0)) if time_scale is None \
            else float(time_scale)
        self.model = self._base_model
        self._time_scale = self._base_scale
        self.engine = BatchEngine(self)
        self.metrics = Metrics()
        self.vocab: dict[int, str] = {}
        self.started_wall = time.time()

    # -- control --------------------------------------------------------------------------------
    def set_behavior(self, **changes: Any) -> ModelConfig:
        """Change the served model or its pacing: ``ttft_s``, ``itl_s``, ``batch_size``, ``max_model_len``,
        ``served_model_names``, ``root`` (times before time_scale). Returns the new configuration."""
        self.model = self.model.with_(**changes)
        return self.model

    def reset(self) -> None:
        """Catalogue model and pacing back, time_scale back, metrics cleared (the log is kept)."""
        self.model = self._base_model
        self._time_scale = self._base_scale
        self.metrics.reset()

    def truth(self) -> dict[str, Any]:
        """The pacing rule now, in seconds after time_scale (see engine.py)."""
        m, s = self.model, self._time_scale
        return {"ttft_s": m.ttft_s * s, "itl_s": m.itl_s * s, "batch_size": m.batch_size,
                "max_model_len": m.max_model_len, "model": m.name, "time_scale": s,
                "rule": "first token at arrival + ttft_s*load; each next token itl_s*load later; "
                        "load = max(1, running/batch_size)"}

    def env(self) -> dict[str, str]:
        """What the worker needs: the URL, and (sim tier) the stand-in ``vllm`` module on sys.path."""
        return {"INFERGRADE_VLLM_URL": self.url, "INFERGRADE_EXTRA_SYSPATH": str(STANDIN_DIR),
                "INFERGRADE_VLLM_STANDIN_SEED": str(self.seed)}

    # -- app --------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        methods = ROUTES.get(request.path)
        rec = record_of(request)
        if methods is None:
            if rec is not None:
                rec.extra.setdefault("route", "unknown")
            return not_found()
        handler = methods.get(request.method) or (methods.get("GET") if request.method == "HEAD" else None)
        if handler is None:
            if rec is not None:
                rec.extra.setdefault("route", "wrong-method")
            return method_not_allowed(sorted(methods))
        try:
            return await handler(request)
        except ApiError as exc:
            if rec is not None:
                rec.extra["error"] = exc.body()["error"]
            return error_response(exc)


def _note(request: web.Request, route: str) -> None:
    rec = record_of(request)
    if rec is not None:
        rec.extra.setdefault("route", route)


async def handle_health(request: web.Request) -> web.Response:
    _note(request, "health")
    return web.Response(status=200)


async def handle_version(request: web.Request) -> web.Response:
    _note(request, "version")
    return json_answer({"version": sim_of(request).version})


async def handle_models(request: web.Request) -> web.Response:
    server: VLLMServer = sim_of(request)
    _note(request, "v1-models")
    created = int(server.started_wall)
    data = [{"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": server.model.root,
             "parent": None, "max_model_len": server.model.max_model_len,
             "permission": [{"id": f"modelperm-{server.seed:08x}{i:024x}", "object": "model_permission",
                             "created": created, "allow_create_engine": False, "allow_sampling": True,
                             "allow_logprobs": True, "allow_search_indices": False, "allow_view": True,
                             "allow_fine_tuning": False, "organization": "*", "group": None,
                             "is_blocking": False}]}
            for i, name in enumerate(server.model.served_model_names)]
    return json_answer({"object": "list", "data": data})


async def handle_tokenize(request: web.Request) -> web.Response:
    server: VLLMServer = sim_of(request)
    _note(request, "tokenize")
    data = await read_body(request)
    model = coerce(data, "model", "str")
    if model is not None and model not in server.model.served_model_names:
        raise model_not_found(model, server.model.served_model_names)
    if "messages" in data:
        messages = coerce(data, "messages", "list", required=True)
        plain = [{"role": m.get("role"), "content": message_text(m.get("content"))} for m in messages
                 if isinstance(m, dict)]
        pieces = [t for m in plain for t in tokenize(m["content"])]
        count = count_prompt_tokens(plain)
    else:
        pieces = tokenize(coerce(data, "prompt", "str", required=True))
        count = len(pieces)
    ids = [token_id(p) for p in pieces]
    ids += [0] * (count - len(ids))          # the chat template's own tokens
    server.vocab.update(zip(ids, pieces))
    return json_answer({"count": count, "max_model_len": server.model.max_model_len, "tokens": ids,
                              "token_strs": None})


async def handle_detokenize(request: web.Request) -> web.Response:
    server: VLLMServer = sim_of(request)
    _note(request, "detokenize")
    data = await read_body(request)
    ids = coerce(data, "tokens", "list", required=True)
    unknown = [i for i in ids if i not in server.vocab and i != 0]
    if unknown:
        raise vllm_error(f"Token id {unknown[0]} is out of vocabulary", parameter="tokens")
    return json_answer({"prompt": "".join(server.vocab.get(i, "") for i in ids)})


async def handle_metrics(request: web.Request) -> web.Response:
    server: VLLMServer = sim_of(request)
    _note(request, "metrics")
    text = server.metrics.render(server.model.name, server.engine.running)
    return web.Response(text=text, content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


ROUTES: dict[str, dict[str, Any]] = {
    "/health": {"GET": handle_health},
    "/version": {"GET": handle_version},
    "/v1/models": {"GET": handle_models},
    "/v1/chat/completions": {"POST": handle_chat},
    "/v1/completions": {"POST": handle_completions},
    "/tokenize": {"POST": handle_tokenize},
    "/detokenize": {"POST": handle_detokenize},
    "/metrics": {"GET": handle_metrics},
}
