"""The ``ollama`` service of tier ``live``: the student's own Ollama behind a logging reverse proxy.

Nothing is simulated: every request (``/``, ``/api/*``, ``/v1/*``) goes on unchanged to the real
Ollama (``INFERGRADE_OLLAMA_UPSTREAM``, default ``http://127.0.0.1:11434``) and its answer comes back
unchanged, NDJSON and SSE streams line by line / event by event as Ollama writes them. On the way the
proxy writes the request log the simulator writes (grading/sims/ollama), so the checkpoints judge a
real server with the same assertions: ``route``, ``stream``, ``messages``, the model, ``text``, when
each chunk with content went out (``t_first_content``, ``extra.content_times``) and the figures of
Ollama's final object (``eval_count``, ``eval_duration_ns``, ``prompt_eval_count``,
``prompt_eval_duration_ns``, ``load_duration_ns``, ``total_duration_ns``, ``done_reason``;
``tokens_in``/``tokens_out``). One exception to "unchanged", as in grading/engines/vllm_local.py: a
``/v1`` stream that did not ask for ``include_usage`` is sent with it and the usage chunk is dropped
on the way back, so the log has the token counts.

The model the checkpoints chat with is ``INFERGRADE_OLLAMA_MODEL`` when set, else the smallest model
the server lists that can generate. A pull is judged only with ``INFERGRADE_OLLAMA_PULL_MODEL`` naming
a model the server does not have (the grader never downloads on its own). The simulator's control
surface is kept but touches nothing the student owns: ``reset()`` forgets what ``set_model`` asked
(the log is kept, as the simulator keeps it), ``set_model`` is recorded and not applied (a real
model's pacing is what it is), ``unload`` asks Ollama to unload (``keep_alive: 0``); no model is
ever deleted.

Usage::

    svc = create_live(seed=7).start()       # ServiceNotAvailable, with the reason, when no Ollama answers
    svc.url, svc.chat_model, svc.upstream_url
    svc.log.records(path="/api/chat")
    svc.stop()
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from typing import Any

from aiohttp import ClientConnectorError, web

from ..services import ServiceNotAvailable
from ..sims.log import RequestLog, record_of
from ..sims.ollama.catalogue import normalize_name
from ..sims.ollama.server import BIN_DIR
from .proxy import (UpstreamProxy, forward_headers, json_of, note_openai_body, note_openai_request, relay_sse,
                    with_usage)

__all__ = ["OllamaLiveService", "create_live", "upstream_from_env", "DEFAULT_UPSTREAM", "UPSTREAM_ENV",
           "MODEL_ENV", "PULL_ENV", "ROUTES"]

DEFAULT_UPSTREAM = "http://127.0.0.1:11434"
UPSTREAM_ENV = "INFERGRADE_OLLAMA_UPSTREAM"
MODEL_ENV = "INFERGRADE_OLLAMA_MODEL"
PULL_ENV = "INFERGRADE_OLLAMA_PULL_MODEL"
#: path -> (the simulator's route name, the methods Ollama serves there)
ROUTES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/": ("root", ("GET", "HEAD")), "/api/version": ("api-version", ("GET", "HEAD")),
    "/api/tags": ("api-tags", ("GET", "HEAD")), "/api/ps": ("api-ps", ("GET",)),
    "/api/show": ("api-show", ("POST",)), "/api/pull": ("api-pull", ("POST",)),
    "/api/delete": ("api-delete", ("DELETE",)), "/api/copy": ("api-copy", ("POST",)),
    "/api/generate": ("api-generate", ("POST",)), "/api/chat": ("api-chat", ("POST",)),
    "/api/embed": ("api-embed", ("POST",)), "/api/embeddings": ("api-embeddings", ("POST",)),
    "/v1/chat/completions": ("v1-chat", ("POST",)), "/v1/completions": ("v1-completions", ("POST",)),
    "/v1/models": ("v1-models", ("GET",)), "/v1/embeddings": ("v1-embeddings", ("POST",)),
}
_GENERATING = ("api-generate", "api-chat", "v1-chat", "v1-completions")
#: Ollama's final object -> the simulator's log field
_FINAL = {"eval_count": "eval_count", "eval_duration": "eval_duration_ns", "prompt_eval_count": "prompt_eval_count",
          "prompt_eval_duration": "prompt_eval_duration_ns", "load_duration": "load_duration_ns",
          "total_duration": "total_duration_ns", "done_reason": "done_reason"}
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # loopback: never via a proxy


# -- the upstream, from the grader's thread ----------------------------------------------------------
def upstream_from_env() -> str:
    """``INFERGRADE_OLLAMA_UPSTREAM`` (``host:port`` or a URL), else Ollama's default address."""
    url = (os.environ.get(UPSTREAM_ENV) or DEFAULT_UPSTREAM).strip().rstrip("/")
    return url if "://" in url else "http://" + url


def _call(url: str, path: str, body: dict[str, Any] | None = None, *, timeout: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    with _OPENER.open(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def probe(url: str) -> str:
    """Ollama's version at ``url``; ServiceNotAvailable (the checks skip with it) when none answers."""
    try:
        info = _call(url, "/api/version", timeout=3.0)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "reason", None) or exc
        raise ServiceNotAvailable(f"no Ollama answers on {url}: start `ollama serve`, or set {UPSTREAM_ENV} "
                                  f"({why})") from None
    if not isinstance(info, dict) or not isinstance(info.get("version"), str):
        raise ServiceNotAvailable(f"what answers on {url} is not Ollama (GET /api/version gave {str(info)[:80]}): "
                                  f"start `ollama serve`, or set {UPSTREAM_ENV}")
    return info["version"]


def _listed(url: str) -> list[dict[str, Any]]:
    models = (_call(url, "/api/tags") or {}).get("models") or []
    return [m for m in models if isinstance(m, dict) and (m.get("model") or m.get("name"))]


def _name(entry: dict[str, Any]) -> str:
    return str(entry.get("model") or entry.get("name"))


def _can_generate(url: str, entry: dict[str, Any]) -> bool:
    try:
        caps = (_call(url, "/api/show", {"model": _name(entry)}) or {}).get("capabilities")
    except (OSError, ValueError):
        caps = None
    if isinstance(caps, list):
        return "completion" in caps
    family = str((entry.get("details") or {}).get("family") or "")   # an Ollama without capabilities
    return "bert" not in family and "embed" not in _name(entry)


def pick_model(url: str, wanted: str | None = None) -> str:
    """The model to chat with: ``wanted`` as the server lists it, else its smallest that can generate."""
    models = _listed(url)
    names = [_name(m) for m in models]
    if wanted:
        for name in names:
            if normalize_name(name) == normalize_name(wanted):
                return name
        raise ServiceNotAvailable(f"{MODEL_ENV}={wanted} is not on the Ollama at {url} (it has: "
                                  f"{', '.join(names) or 'no model'}): `ollama pull {wanted}`, or name one it has")
    for entry in sorted(models, key=lambda m: int(m.get("size") or 0))[:12]:
        if _can_generate(url, entry):
            return _name(entry)
    raise ServiceNotAvailable(f"the Ollama at {url} has no model that can generate (it has: "
                              f"{', '.join(names) or 'none'}): `ollama pull smollm2:135m` (or any chat model), "
                              f"or set {MODEL_ENV}")


# -- the service ------------------------------------------------------------------------------------
class OllamaLiveService(UpstreamProxy):
    """The student's Ollama behind the logging proxy (the ``ollama`` service of tier ``live``)."""

    redirect_hosts: tuple[str, ...] = ()

    def __init__(self, *, seed: int, upstream: str, chat_model: str, pull_model: str | None = None,
                 version: str = "", host: str = "127.0.0.1", port: int = 0, log: RequestLog | None = None,
                 unix_path: str | None = None) -> None:
        super().__init__(name="ollama", host=host, port=port, unix_path=unix_path, log=log)
        self.seed, self.tier, self.version = int(seed), "live", version
        self.upstream_url = upstream
        #: the model the checkpoints use; a missing one a pull may fetch (None: pulls are not judged)
        self.chat_model = chat_model
        self.pull_model = None if not pull_model else normalize_name(pull_model)
        self.asked: dict[str, dict[str, Any]] = {}

    # -- the simulator's control surface, harmless on a real server ----------------------------------
    def reset(self) -> None:
        """Forget what set_model asked; the log is kept (as the simulator's), the models are untouched."""
        self.asked = {}

    def set_model(self, name: str, **changes: Any) -> dict[str, Any]:
        """Recorded, not applied: a real model's load time and rates are what they are."""
        self.asked[name] = {**self.asked.get(name, {}), **changes}
        return self.asked[name]

    def unload(self, name: str) -> None:
        """Ask Ollama to unload ``name`` (``keep_alive: 0``), so the next request pays the load again."""
        try:
            _call(self.upstream_url, "/api/generate", {"model": name, "keep_alive": 0}, timeout=30.0)
        except (OSError, ValueError):
            pass   # not loaded, or gone: the next request shows it

    def present_models(self) -> list[str]:
        return [_name(m) for m in _listed(self.upstream_url)]

    def loaded_models(self) -> list[str]:
        running = (_call(self.upstream_url, "/api/ps") or {}).get("models") or []
        return [_name(m) for m in running if isinstance(m, dict)]

    def library_spec(self, name: str) -> None:
        return None   # the real library is not known here

    def why_no_pull(self) -> str | None:
        """Why ensure_model's pull cannot be judged on this server (None when it can)."""
        if self.pull_model is None:
            return (f"the pull of a missing model was not judged: the grader downloads nothing onto your machine "
                    f"unless {PULL_ENV} names a model your Ollama does not have (e.g. {PULL_ENV}=smollm2:135m, "
                    "271 MB)")
        if self.pull_model in {normalize_name(n) for n in self.present_models()}:
            return (f"{PULL_ENV}={self.pull_model} is already on your Ollama, so nothing would be pulled: "
                    f"`ollama rm {self.pull_model}` first, or name a model it does not have")
        return None

    def truth(self) -> dict[str, Any]:
        return {"upstream": self.upstream_url, "version": self.version, "model": self.chat_model,
                "rule": "a real Ollama: the request log's timings and Ollama's own figures are the truth"}

    def env(self) -> dict[str, str]:
        """As the simulator's: the proxy in OLLAMA_HOST, and the `ollama` stand-in (it talks to OLLAMA_HOST)."""
        return {"OLLAMA_HOST": self.url, "INFERGRADE_OLLAMA_BIN": str(BIN_DIR)}

    # -- the proxy ----------------------------------------------------------------------------------
    async def forward(self, request: web.Request) -> web.StreamResponse:
        rec = record_of(request)
        raw = await request.read()
        add_usage = False
        if rec is not None:
            add_usage = _note_request(rec, request.method, request.path, rec.body)
        if add_usage:
            raw = with_usage(rec.body)
        url = self.upstream_url + request.path_qs
        try:
            async with self.session().request(request.method, url, data=raw or None,
                                              headers=forward_headers(request)) as up:
                ctype = up.headers.get("Content-Type", "")
                headers = {"Content-Type": ctype} if ctype else {}
                if "text/event-stream" in ctype:
                    return await relay_sse(request, rec, up, headers, drop_usage=add_usage)
                if "ndjson" in ctype:
                    return await _relay_ndjson(request, rec, up, headers)
                data = await up.read()
                if rec is not None:
                    _note_body(rec, json_of(data), up.status)
                resp = web.Response(status=up.status, body=data, headers=headers)
                if rec is not None and up.status < 400 and rec.extra.get("route") in _GENERATING:
                    await resp.prepare(request)
                    rec.mark_first_content()
                return resp
        except ClientConnectorError as exc:
            message = f"the Ollama at {self.upstream_url} did not answer: {exc}"
            if rec is not None:
                rec.extra["error"] = message
            return web.json_response({"error": message}, status=502)


def _route(method: str, path: str) -> str:
    found = ROUTES.get(path)
    if found is None:
        return "v1-model" if path.startswith("/v1/models/") else "unknown"
    route, methods = found
    return route if method in methods else "wrong-method"


def _note_request(rec: Any, method: str, path: str, body: Any) -> bool:
    """Fill the record from the request as the simulator does; whether usage must be asked for upstream."""
    route = _route(method, path)
    rec.extra.setdefault("route", route)
    if not isinstance(body, dict):
        return False
    if route in ("v1-chat", "v1-completions"):
        _stream, add_usage = note_openai_request(rec, body)
        return add_usage
    name = body.get("model") or body.get("name") or body.get("source")
    if isinstance(name, str) and name.strip() and route.startswith("api-"):
        rec.model = normalize_name(name)
    if route in ("api-generate", "api-chat", "api-pull"):
        rec.extra["stream"] = body.get("stream", True) is not False
    if route == "api-chat" and isinstance(body.get("messages"), list):
        rec.extra["messages"] = [{"role": m.get("role"), "content": m.get("content") or ""}
                                 for m in body["messages"] if isinstance(m, dict)]
    return False


def _content_of(obj: dict[str, Any]) -> str:
    message = obj.get("message")
    if isinstance(message, dict):
        return str(message.get("content") or "")
    return str(obj.get("response") or "")


def _note_final(rec: Any, obj: dict[str, Any]) -> None:
    for key, field in _FINAL.items():
        if key in obj:
            rec.extra[field] = obj[key]
    if "prompt_eval_count" in obj:
        rec.tokens_in = obj["prompt_eval_count"]
    if "eval_count" in obj:
        rec.tokens_out = obj["eval_count"]


def _note_error(rec: Any, message: Any) -> None:
    rec.extra["error"] = message
    if rec.outcome == "ok":
        rec.outcome = "error:upstream"   # a 200 stream that ended in {"error": ...}: the client sees a failure


def _note_body(rec: Any, obj: Any, status: int) -> None:
    """Fill the record from a whole answer (not streamed)."""
    route = rec.extra.get("route")
    if route in ("v1-chat", "v1-completions"):
        note_openai_body(rec, obj, status)
        return
    if not isinstance(obj, dict):
        return
    if status >= 400:
        if "error" in obj:
            rec.extra["error"] = obj["error"]
        return
    if route in ("api-generate", "api-chat"):
        rec.extra["text"] = _content_of(obj)
        _note_final(rec, obj)
    elif route in ("api-embed", "api-embeddings", "v1-embeddings"):
        _note_final(rec, obj)
        usage = obj.get("usage")
        if isinstance(usage, dict):
            rec.tokens_in = usage.get("prompt_tokens", rec.tokens_in)
    elif route == "api-pull":
        rec.extra["pulled"] = obj.get("status") == "success"


async def _relay_ndjson(request: web.Request, rec: Any, up: Any, headers: dict[str, str]) -> web.StreamResponse:
    """Pass an NDJSON stream on line by line, logging its text, when each line with content went out,
    and the figures of its final (``done``) object."""
    resp = web.StreamResponse(status=up.status, headers=headers)
    await resp.prepare(request)
    parts: list[str] = []
    content_times: list[float] = []
    if rec is not None and rec.extra.get("route") in ("api-generate", "api-chat"):
        rec.extra.update(text="", content_times=content_times)
    pending = b""
    async for piece in up.content.iter_any():
        pending += piece
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            await _pass_line(resp, rec, line + b"\n", parts, content_times)
    if pending:
        await _pass_line(resp, rec, pending, parts, content_times)
    await resp.write_eof()
    return resp


async def _pass_line(resp: web.StreamResponse, rec: Any, line: bytes, parts: list[str],
                     content_times: list[float]) -> None:
    obj = json_of(line.strip())
    content = ""
    if rec is not None and isinstance(obj, dict):
        if "error" in obj:
            _note_error(rec, obj["error"])
        content = _content_of(obj) if rec.extra.get("route") in ("api-generate", "api-chat") else ""
        if content:
            parts.append(content)
            rec.extra["text"] = "".join(parts)
        if obj.get("done") is True:
            _note_final(rec, obj)
        if obj.get("status") == "success":
            rec.extra["pulled"] = True
    await resp.write(line)
    if content:
        content_times.append(time.monotonic())
        rec.mark_first_content()


def create_live(*, seed: int, host: str = "127.0.0.1", port: int = 0, log: RequestLog | None = None,
                unix_path: str | None = None, upstream: str | None = None, chat_model: str | None = None,
                pull_model: str | None = None) -> OllamaLiveService:
    """The proxy (not started) in front of the Ollama that answers; ServiceNotAvailable, with the reason and
    what to do, when none answers or it has no model to chat with."""
    url = upstream or upstream_from_env()
    version = probe(url)
    try:
        model = chat_model or pick_model(url, os.environ.get(MODEL_ENV) or None)
    except (OSError, ValueError) as exc:
        raise ServiceNotAvailable(f"the Ollama at {url} did not list its models ({exc})") from None
    return OllamaLiveService(seed=seed, upstream=url, chat_model=model,
                             pull_model=pull_model if pull_model is not None else os.environ.get(PULL_ENV),
                             version=version, host=host, port=port, log=log, unix_path=unix_path)
