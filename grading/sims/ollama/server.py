"""``OllamaServer``: Ollama's API (native ``/api`` and OpenAI-compatible ``/v1``) in one ``SimServer``.

The engine behind it is the paced simulator (tier ``sim``) or llama.cpp (tier ``local``); the
routes, the model store and the request log are the same. Control API for tests and checkpoints::

    server.reset()                                   # catalogue models present, nothing loaded
    server.set_model("smollm2:135m", eval_tok_s=50, prompt_eval_tok_s=500, load_s=0.3)
    server.remove_model("gemma3:1b"); server.add_model("gemma3:1b")
    server.unload("smollm2:135m")                    # next request pays the load again
    server.log.records(service="ollama", path="/api/chat")
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

from aiohttp import web

from ..base import SimServer
from ..log import RequestLog, record_of
from .catalogue import DEFAULT_PRESENT, LIBRARY, ModelSpec, normalize_name
from .engine import SimEngine
from .models import ModelStore
from .native import ROUTES as NATIVE_ROUTES
from .openai_compat import ROUTES as V1_ROUTES
from .openai_compat import handle_model, openai_error
from .wire import ApiError, error_response

__all__ = ["OllamaServer", "BIN_DIR"]

#: holds the ``ollama`` command-line stand-in (put it first on the worker's PATH)
BIN_DIR = Path(__file__).resolve().parent / "bin"
_ROUTES = {**NATIVE_ROUTES, **V1_ROUTES}


class OllamaServer(SimServer):
    """The ``ollama`` service; ``engine`` is a SimEngine (sim) or a llama.cpp engine (local)."""

    redirect_hosts: tuple[str, ...] = ()

    def __init__(self, *, seed: int, tier: str = "sim", engine: Any = None, host: str = "127.0.0.1",
                 port: int = 0, log: RequestLog | None = None, unix_path: str | None = None,
                 library: dict[str, ModelSpec] | None = None,
                 present: tuple[str, ...] | list[str] | None = None, chat_model: str = "smollm2:135m",
                 pull_model: str = "qwen2.5:0.5b") -> None:
        super().__init__(name="ollama", host=host, port=port, unix_path=unix_path, log=log)
        self.seed = int(seed)
        self.tier = tier
        self.engine = engine if engine is not None else SimEngine(self.seed, self.clock)
        self._library = dict(library or LIBRARY)
        self._present = tuple(present if present is not None else DEFAULT_PRESENT)
        self.store = ModelStore(self._library, self._present)
        self._load_locks: dict[str, asyncio.Lock] = {}
        #: the models the checkpoint uses: one present to chat with, one missing that a pull can fetch
        self.chat_model, self.pull_model = chat_model, pull_model

    # -- control --------------------------------------------------------------------------------
    def reset(self) -> None:
        """The starting models present, none loaded, catalogue pacing (the log is kept)."""
        for item in self.store.running():
            self.engine.unload(item.spec.name)
        self.store = ModelStore(self._library, self._present)

    def set_model(self, name: str, **changes: Any) -> ModelSpec:
        """Change a model's pacing or data: ``load_s``, ``prompt_eval_tok_s``, ``eval_tok_s``, ``pull_s``..."""
        return self.store.update(name, **changes)

    def add_model(self, name: str) -> None:
        spec = self.library_spec(name)
        if spec is None:
            raise KeyError(f"{name!r} is not in the simulator's library")
        self.store.add(spec)

    def remove_model(self, name: str) -> None:
        self.store.remove(name)
        self.engine.unload(normalize_name(name))

    def unload(self, name: str) -> None:
        self.store.unload(name)
        self.engine.unload(normalize_name(name))

    def present_models(self) -> list[str]:
        return [spec.name for spec, _ in self.store.tags()]

    def loaded_models(self) -> list[str]:
        return [item.spec.name for item in self.store.running()]

    def library_spec(self, name: str) -> ModelSpec | None:
        key = normalize_name(name)
        return self.store.library.get(key)

    def env(self) -> dict[str, str]:
        """What the worker needs: the server's URL in OLLAMA_HOST, and where the CLI stand-in lives."""
        return {"OLLAMA_HOST": self.url, "INFERGRADE_OLLAMA_BIN": str(BIN_DIR)}

    # -- helpers for the routes -------------------------------------------------------------------
    def load_lock(self, name: str) -> asyncio.Lock:
        lock = self._load_locks.get(name)
        if lock is None:
            lock = self._load_locks[name] = asyncio.Lock()
        return lock

    @contextlib.asynccontextmanager
    async def generation_slot(self) -> AsyncIterator[None]:
        slot = getattr(self.engine, "slot", None)
        if slot is None:
            yield
        else:
            async with slot():
                yield

    def pull_plan(self, spec: ModelSpec, already: bool) -> list[tuple[dict[str, Any], float]]:
        """The progress lines of a pull and the pause before each (seconds)."""
        import hashlib

        layers = [("model", spec.size - 11_000), ("template", 1_429), ("license", 11_357), ("params", 82)]
        lines: list[tuple[dict[str, Any], float]] = []
        total_s = 0.0 if already else spec.pull_s
        for kind, size in layers:
            digest = hashlib.sha256(f"{spec.name}:{kind}".encode()).hexdigest()
            status = f"pulling {digest[:12]}"
            steps = 5 if kind == "model" and not already else 1
            share = 0.8 if kind == "model" else 0.2 / 3
            for step in range(1, steps + 1):
                done = size if already else size * step // steps
                lines.append(({"status": status, "digest": f"sha256:{digest}", "total": size, "completed": done},
                              total_s * share / steps))
        lines.append(({"status": "verifying sha256 digest"}, 0.0))
        lines.append(({"status": "writing manifest"}, 0.0))
        return lines

    # -- app ------------------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        v1 = path.startswith("/v1/")
        methods = _ROUTES.get(path)
        if methods is None and path.startswith("/v1/models/"):
            methods = {"GET": handle_model}
        if methods is None:
            self._route(request, "unknown")
            return web.Response(status=404, text="404 page not found", content_type="text/plain")
        handler = methods.get(request.method)
        if handler is None:
            self._route(request, "wrong-method")
            return web.Response(status=405, text="405 method not allowed", content_type="text/plain")
        try:
            return await handler(request)
        except ApiError as exc:
            return openai_error(exc) if v1 else error_response(exc)

    @staticmethod
    def _route(request: web.Request, route: str) -> None:
        rec = record_of(request)
        if rec is not None:
            rec.extra.setdefault("route", route)
