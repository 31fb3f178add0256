"""The ``vllm`` service of tier ``local``: real vLLM-CPU behind a logging reverse proxy.

The grader starts its own ``vllm serve`` (DESIGN.md's recipe, grading/engines/vllm_cpu.py) on a free
loopback port and serves, in front of it, an aiohttp proxy with the simulator's interface: ``url``,
``log`` (one ``RequestRecord`` per request, as the simulator writes it: route, body, status, error,
``tokens_in``/``tokens_out`` from vLLM's ``usage``, ``t_first_content``, ``extra.content_times`` -
when each chunk with content was passed on - and ``extra.text``), ``model.name``,
``model.max_model_len``, ``seed``, ``reset()``, ``set_behavior()`` and ``time_scale`` (no-ops but for
the record: a real engine's pacing is what it is, and the log is the truth). The proxy passes bytes on
unchanged, chunk by chunk, with one exception: a stream that did not ask for ``include_usage`` is sent
upstream with it (so the log knows the token count) and the usage chunk is dropped on the way back.

Usage::

    svc = create(tier="local", seed=7).start()       # ~35 s: model prep (cached) + vllm serve
    svc.url, svc.model.name, svc.upstream_url
    svc.stop()                                        # proxy, then the engine's process group
"""

from __future__ import annotations

import json
import os
import socket
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aiohttp import web

from ..sims.log import RequestLog, record_of
from . import vllm_cpu
from .proxy import (UpstreamProxy, forward_headers, json_of, note_openai_body, note_openai_request, relay_sse,
                    with_usage)

__all__ = ["LocalModel", "VLLMLocalService", "LOCAL_MAX_MODEL_LEN", "ROUTE_NAMES"]

#: the grader's server context: short, so that the throughput checkpoint's too-long prompt (~400 tokens)
#: is refused by the real engine exactly as by the simulator, while every other request fits
LOCAL_MAX_MODEL_LEN = 256
ROUTE_NAMES = {"/health": "health", "/version": "version", "/v1/models": "v1-models",
               "/v1/chat/completions": "v1-chat", "/v1/completions": "v1-completions", "/tokenize": "tokenize",
               "/detokenize": "detokenize", "/metrics": "metrics"}
#: a running grader-started `vllm serve` to use instead of starting one (the test session shares one)
SHARED_ENV = "INFERGRADE_VLLM_UPSTREAM"


@dataclass(frozen=True)
class LocalModel:
    """What the real server serves (the simulator's ``ModelConfig`` fields the checkpoints read)."""

    served_model_names: tuple[str, ...]
    root: str
    max_model_len: int
    asked: dict[str, Any] = field(default_factory=dict)   # set_behavior's arguments (not applied)

    @property
    def name(self) -> str:
        return self.served_model_names[0]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _served_max_len(url: str, name: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url + "/v1/models", timeout=10) as resp:
        data = json.loads(resp.read())
    for card in data.get("data", []):
        if card.get("id") == name:
            return int(card["max_model_len"])
    raise RuntimeError(f"the shared vLLM server at {url} ({SHARED_ENV}) does not serve {name!r}")


class VLLMLocalService(UpstreamProxy):
    """Real ``vllm serve`` + the logging proxy (the ``vllm`` service of tier ``local``)."""

    redirect_hosts: tuple[str, ...] = ()

    def __init__(self, *, seed: int, host: str = "127.0.0.1", port: int = 0, log: RequestLog | None = None,
                 unix_path: str | None = None, max_model_len: int = LOCAL_MAX_MODEL_LEN,
                 served_name: str = vllm_cpu.SERVED_NAME, start_deadline_s: float | None = None) -> None:
        super().__init__(name="vllm", host=host, port=port, unix_path=unix_path, log=log)
        self.seed, self.tier, self.version = int(seed), "local", "0.32.0"
        self.model = self._base = LocalModel((served_name,), "", int(max_model_len))
        self.time_scale = 1.0
        self.engine: vllm_cpu.ServerHandle | vllm_cpu.AttachedServer | None = None
        self.model_dir: Path | None = None
        self._deadline = start_deadline_s

    # -- lifecycle ------------------------------------------------------------------------------
    @property
    def upstream_url(self) -> str:
        if self.engine is None:
            raise RuntimeError("the vLLM engine is not started")
        return self.engine.url

    def start(self, timeout: float = 10.0) -> "VLLMLocalService":  # type: ignore[override]
        shared = os.environ.get(SHARED_ENV)
        if self.engine is None and shared:
            self.model_dir = vllm_cpu.prepare_model()
            self.engine = vllm_cpu.attach(shared)
            self.model = self._base = replace(self._base, root=str(self.model_dir),
                                              max_model_len=_served_max_len(shared, self.model.name))
        if self.engine is None:
            self.model_dir = vllm_cpu.prepare_model()
            port = _free_port("127.0.0.1")
            argv = vllm_cpu.serve_argv(self.model_dir, port=port, served_name=self.model.name,
                                       max_model_len=self.model.max_model_len)
            kwargs = {} if self._deadline is None else {"deadline_s": self._deadline}
            self.engine = vllm_cpu.launch(argv, port=port, **kwargs)
            self.model = self._base = replace(self._base, root=str(self.model_dir))
        try:
            super().start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 2.0) -> None:
        try:
            super().stop(timeout)
        finally:
            engine, self.engine = self.engine, None
            if engine is not None:
                engine.stop()

    # -- the simulator's control surface ------------------------------------------------------------
    def set_behavior(self, **changes: Any) -> LocalModel:
        """Recorded, not applied: the real engine's pacing, batch size and context are fixed."""
        self.model = replace(self.model, asked={**self.model.asked, **changes})
        return self.model

    def reset(self) -> None:
        self.model = self._base
        self.time_scale = 1.0

    def truth(self) -> dict[str, Any]:
        return {"model": self.model.name, "max_model_len": self.model.max_model_len, "time_scale": 1.0,
                "engine": "vllm-cpu 0.32.0", "rule": "a real engine: the request log's timings are the truth"}

    def env(self) -> dict[str, str]:
        """The worker's: the URL, the prepared model folder and the recipe's settings for ``vllm.LLM``."""
        return {"INFERGRADE_VLLM_URL": self.url, "INFERGRADE_VLLM_MODEL_DIR": str(self.model_dir or ""),
                **vllm_cpu.RECIPE_ENV}

    # -- the proxy ----------------------------------------------------------------------------------
    async def forward(self, request: web.Request) -> web.StreamResponse:
        rec = record_of(request)
        raw = await request.read()
        body = rec.body if rec is not None else None
        stream, add_usage = _note_request(rec, request.path, body) if rec is not None else (False, False)
        if add_usage:
            raw = with_usage(body)
        url = self.upstream_url + request.path_qs
        headers = forward_headers(request)
        async with self.session().request(request.method, url, data=raw or None, headers=headers) as up:
            ctype = up.headers.get("Content-Type", "")
            out_headers = {"Content-Type": ctype} if ctype else {}
            if "text/event-stream" in ctype:
                return await relay_sse(request, rec, up, out_headers, drop_usage=add_usage)
            data = await up.read()
            if rec is not None:
                note_openai_body(rec, json_of(data), up.status)
            resp = web.Response(status=up.status, body=data, headers=out_headers)
            if rec is not None and up.status < 400 and rec.extra.get("route") in ("v1-chat", "v1-completions"):
                await resp.prepare(request)
                rec.mark_first_content()
            return resp


def _note_request(rec: Any, path: str, body: Any) -> tuple[bool, bool]:
    """Fill the record from the request; (stream, whether usage must be added upstream)."""
    rec.extra.setdefault("route", ROUTE_NAMES.get(path, "unknown"))
    if path not in ("/v1/chat/completions", "/v1/completions"):
        return False, False
    return note_openai_request(rec, body)
