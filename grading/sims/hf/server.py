"""``HFSimulator``: the Hub API, the inference router and its providers in one ``SimServer``.

Requests are routed by path (the Host may be huggingface.co,
router.huggingface.co, a CDN host or 127.0.0.1:PORT): ``/api/...`` the Hub,
``/v1/...`` the router's OpenAI-compatible API, ``/files/...`` and
``/xezq/...`` images to fetch, ``/{provider}/...`` the provider routes. The
control API (``time_scale``, ``set_behavior``, ``script``, ``reset``,
``expected_token``) is documented in docs/hf-sim.md.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Iterable

from aiohttp import web

from ...services import HF_HOSTS
from ..base import SimServer
from ..log import RequestLog, record_of
from .catalogue import load_catalogue
from .control import Behavior, Controller
from .hub import handle_hub
from .images import fetch_file
from .router import handle_provider, handle_v1

__all__ = ["HFSimulator", "CDN_HOSTS"]

#: image hosts fal-ai and replicate answers point to (served by the simulator through the redirect)
CDN_HOSTS: tuple[str, ...] = ("v3.fal.media", "fal.media", "replicate.delivery")
_MAX_FILES = 256


class HFSimulator(SimServer):
    """The ``hf`` service of the sim tier (see docs/hf-sim.md)."""

    name = "hf"
    redirect_hosts: tuple[str, ...] = HF_HOSTS + CDN_HOSTS

    def __init__(self, *, seed: int, host: str = "127.0.0.1", port: int = 0, log: RequestLog | None = None,
                 unix_path: str | None = None, catalogue: dict[str, Any] | None = None,
                 canary: str | None = None, time_scale: float | None = None) -> None:
        super().__init__(name="hf", host=host, port=port, unix_path=unix_path, log=log)
        self.seed = int(seed)
        self.catalogue: dict[str, Any] = catalogue if catalogue is not None else load_catalogue()
        default_scale = float(self.catalogue.get("sim", {}).get("time_scale", 1.0))
        self._time_scale = default_scale if time_scale is None else float(time_scale)
        #: the only token accepted when set (the run's canary); any ``hf_…`` token when None
        self.expected_token: str | None = canary
        self.controller = Controller(self.catalogue, self.seed)
        self.files: "OrderedDict[str, tuple[bytes, str, str, str, dict[str, Any]]]" = OrderedDict()
        self.predictions: dict[str, dict[str, Any]] = {}
        self._files_lock = threading.Lock()

    # -- control ------------------------------------------------------------------
    def set_behavior(self, provider: str, *, latency: Any = None, failure_rate: float | None = None,
                     failure: Any = None, ttft: Any = None, itl: Any = None, image_latency: Any = None,
                     role_chunk_at: float | None = None) -> Behavior:
        """Override one provider's behaviour (latencies before time_scale); returns it."""
        return self.controller.set_behavior(provider, latency=latency, failure_rate=failure_rate, failure=failure,
                                            ttft=ttft, itl=itl, image_latency=image_latency,
                                            role_chunk_at=role_chunk_at)

    def behavior(self, provider: str) -> Behavior:
        """One provider's behaviour now."""
        return self.controller.behavior(provider)

    def script(self, provider: str, faults: Iterable[Any]) -> None:
        """A fault sequence for ``provider`` (or "hub"), one per request, then normal behaviour."""
        self.controller.script(provider, faults)

    def reset(self) -> None:
        """Catalogue behaviour back, scripts cleared (the log is kept)."""
        self.controller.reset()

    def env(self) -> dict[str, str]:
        """What student code needs to find the simulator."""
        return {"HF_ENDPOINT": self.url, "OPENAI_BASE_URL": self.url + "/v1"}

    def auto_provider(self, model_id: str, task: str = "conversational") -> str | None:
        """The provider "auto" resolves to for ``model_id`` (first live in mapping order)."""
        from .catalogue import first_live

        return first_live(self.catalogue, model_id, task)

    # -- image files ------------------------------------------------------------------
    def store_file(self, path: str, data: bytes, mime: str, provider: str, model_id: str,
                   info: dict[str, Any]) -> None:
        with self._files_lock:
            self.files[path] = (data, mime, provider, model_id, info)
            while len(self.files) > _MAX_FILES:
                self.files.popitem(last=False)

    # -- app ------------------------------------------------------------------------------
    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/api/"):
            return await handle_hub(request, self)
        if path == "/v1" or path.startswith("/v1/"):
            return await handle_v1(request, self)
        if request.method in ("GET", "HEAD") and (path.startswith("/files/") or path.startswith("/xezq/")):
            return await fetch_file(request, self)
        if path.count("/") >= 2:
            return await handle_provider(request, self)
        rec = record_of(request)
        if rec is not None:
            rec.extra["route"] = "unknown"
        if path in ("", "/"):
            return web.Response(text="infergrade Hugging Face simulator: Hub API, router /v1 and providers\n")
        return web.json_response({"error": "Not Found"}, status=404)
