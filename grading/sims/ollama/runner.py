"""One generation as the server runs it: resolve the model, load it if needed, generate, log.

Shared by ``/api/generate``, ``/api/chat`` and the ``/v1`` routes, so every route reports the same
ground truth in the request log (``record.extra``): ``eval_count``, ``eval_duration_ns``,
``prompt_eval_count``, ``prompt_eval_duration_ns``, ``load_duration_ns``, ``total_duration_ns``,
``loaded`` (this request paid a load), ``text``, ``content_times``, ``done_reason``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from ..log import record_of
from .catalogue import ModelSpec
from .engine import GenRequest, GenStats
from .models import KeepAliveError, parse_keep_alive
from .wire import ApiError, float_option, int_option, not_found, note

if TYPE_CHECKING:
    from .server import OllamaServer

__all__ = ["Outcome", "resolve", "keep_alive_of", "ensure_loaded", "generate", "gen_request"]


@dataclass
class Outcome:
    stats: GenStats
    load_duration_ns: int
    total_duration_ns: int


def resolve(server: "OllamaServer", data: dict[str, Any], *, need: str = "completion") -> tuple[str, ModelSpec]:
    """The model asked for (as given) and its spec; ApiError when missing or not capable."""
    name = data.get("model") or data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, "model is required")
    spec = server.store.get(name)
    if spec is None:
        raise not_found(name)
    if need not in spec.capabilities:
        what = "generate" if need == "completion" else need
        raise ApiError(400, f"\"{name}\" does not support {what}")
    return name, spec


def keep_alive_of(data: dict[str, Any]) -> float | None:
    try:
        return parse_keep_alive(data.get("keep_alive"))
    except KeepAliveError as exc:
        raise ApiError(400, str(exc)) from None


def gen_request(messages: list[dict[str, Any]], options: dict[str, Any], *, raw: bool = False) -> GenRequest:
    stop = options.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    return GenRequest(messages=messages, raw=raw, num_predict=int_option(options, "num_predict"),
                      temperature=float_option(options, "temperature"), seed=int_option(options, "seed"),
                      stop=[str(s) for s in stop])


async def ensure_loaded(server: "OllamaServer", spec: ModelSpec) -> tuple[int, bool]:
    """Load ``spec`` unless it is in memory; return (load_duration_ns, whether it loaded now)."""
    started = time.monotonic()
    lock = server.load_lock(spec.name)
    async with lock:
        if server.store.is_loaded(spec.name):
            return max(1, int((time.monotonic() - started) * 1e9)), False
        await server.engine.load(spec)
        server.store.mark_loaded(spec, None)   # loaded; keep_alive applies when the request ends
    return max(1, int((time.monotonic() - started) * 1e9)), True


async def generate(server: "OllamaServer", request: web.Request, spec: ModelSpec, req: GenRequest,
                   keep_alive: float | None, *, before_first: Callable[[], Awaitable[None]] | None = None,
                   on_piece: Callable[[str], Awaitable[None]] | None = None) -> Outcome:
    """Load if needed, then generate; ``before_first`` runs once the model is ready (open the stream
    there), ``on_piece`` gets every token. Logs the ground truth and applies ``keep_alive``."""
    started = time.monotonic()
    rec = record_of(request)
    load_ns, loaded = await ensure_loaded(server, spec)
    note(request, model=spec.name, loaded=loaded, load_duration_ns=load_ns)
    if before_first is not None:
        await before_first()

    async def emit(piece: str) -> None:
        if rec is not None and piece:
            rec.mark_first_content()
        if on_piece is not None:
            await on_piece(piece)

    try:
        async with server.generation_slot():
            stats = await server.engine.generate(spec, req, emit)
    finally:
        server.store.mark_loaded(spec, keep_alive)
        if keep_alive == 0:
            server.engine.unload(spec.name)
    total_ns = max(1, int((time.monotonic() - started) * 1e9))
    note(request, tokens_in=stats.prompt_eval_count, tokens_out=stats.eval_count,
         eval_count=stats.eval_count, eval_duration_ns=stats.eval_duration_ns,
         prompt_eval_count=stats.prompt_eval_count, prompt_eval_duration_ns=stats.prompt_eval_duration_ns,
         total_duration_ns=total_ns, done_reason=stats.done_reason, text=stats.text,
         content_times=list(stats.content_times), keep_alive_s=keep_alive)
    return Outcome(stats, load_ns, total_ns)


async def load_only(server: "OllamaServer", request: web.Request, spec: ModelSpec,
                    keep_alive: float | None) -> str:
    """An empty prompt / empty messages: load (or, with keep_alive 0, unload); the done_reason."""
    if keep_alive == 0:
        server.store.unload(spec.name)
        server.engine.unload(spec.name)
        note(request, model=spec.name, loaded=False, done_reason="unload")
        return "unload"
    load_ns, loaded = await ensure_loaded(server, spec)
    server.store.mark_loaded(spec, keep_alive)
    note(request, model=spec.name, loaded=loaded, load_duration_ns=load_ns, done_reason="load")
    return "load"

