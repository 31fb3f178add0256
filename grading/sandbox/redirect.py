"""Transport-level host redirection for unmodified student code.

Student code calls the real Hugging Face hosts (``huggingface_hub`` and
``openai`` through httpx2, ``ollama`` through httpx, hand-written code
through any of httpx, httpx2 or requests). In the worker those requests
must reach the grader's simulators instead, with nothing in the student's
code changed: this module wraps the transports' send methods so a request
to a redirected host goes to the simulator's URL — same path and query —
while the ``Host`` header still names the original host (the simulator
uses it to tell the Hub from the router).

Usage::

    from grading.sandbox import redirect
    redirect.install({"huggingface.co": "http://127.0.0.1:41234",
                      "router.huggingface.co": "http://127.0.0.1:41234"})
    redirect.install_from_env()     # the same, from JSON in $INFERGRADE_REDIRECTS

The class methods are patched (``httpx.HTTPTransport.handle_request``,
``httpx.AsyncHTTPTransport.handle_async_request``, the same on ``httpx2``,
``requests.adapters.HTTPAdapter.send``), so clients built before or after
``install`` are covered. A library not imported yet is patched the moment
it is imported (a post-import hook), so installing costs nothing for
programs that never use it. This file must stay self-contained (stdlib
only, no package-relative imports): the worker's ``sitecustomize`` loads it
by path, without putting the grader on the student's ``sys.path``.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import sys
import threading
import types
from typing import Any, Callable
from urllib.parse import urlsplit

__all__ = ["install", "install_from_env", "uninstall", "installed", "rewrite_url", "ENV_VAR"]

ENV_VAR = "INFERGRADE_REDIRECTS"
_MARK = "__infergrade_redirect_original__"
# libraries whose transports are wrapped, patched when (or once) imported
_TARGETS = ("httpx", "httpx2", "requests")



def _shared_state() -> Any:
    # One state per process even if this file is loaded twice (by path from
    # sitecustomize and as grading.sandbox.redirect): the wrappers installed
    # by either copy read the same mapping, so a later install() is obeyed.
    state = sys.modules.get("_infergrade_redirect_state")
    if state is None:
        state = types.ModuleType("_infergrade_redirect_state")
        state.lock = threading.RLock()
        state.redirects = {}  # host -> target URL, as given
        state.parsed = {}  # host -> (scheme, host, port, path prefix)
        state.patched = []  # (owner, attribute, original) to undo
        state.finder = None  # the post-import hook, while installed
        sys.modules["_infergrade_redirect_state"] = state
    return state


_state = _shared_state()
_lock = _state.lock
_redirects: dict[str, str] = _state.redirects
_parsed: dict[str, tuple[str, str, int, str]] = _state.parsed
_patched: list[tuple[Any, str, Callable[..., Any]]] = _state.patched


def _parse_target(value: str) -> tuple[str, str, int, str]:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"redirect target must be an http(s) URL, not {value!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


def install(redirects: dict[str, str]) -> None:
    """Send requests for each host in ``redirects`` to its URL instead.

    Keys are host names (``"huggingface.co"``), values base URLs
    (``"http://127.0.0.1:41234"``, a path prefix is allowed). Calling it
    again replaces the mapping; the transports are wrapped only once.
    """
    parsed = {str(h).lower().strip(): _parse_target(str(v)) for h, v in redirects.items()}
    with _lock:
        _redirects.clear()
        _redirects.update({str(h).lower().strip(): str(v) for h, v in redirects.items()})
        _parsed.clear()
        _parsed.update(parsed)
        for name in _TARGETS:
            if name in sys.modules:
                _patch(name, sys.modules[name])
        if _state.finder is None:
            _state.finder = _PatchOnImport()
            sys.meta_path.insert(0, _state.finder)


def install_from_env(environ: "dict[str, str] | None" = None) -> dict[str, str]:
    """``install()`` the JSON mapping in ``$INFERGRADE_REDIRECTS``; return it.

    Does nothing (and returns ``{}``) when the variable is unset or empty.
    Raises ValueError when it is not a JSON object of strings.
    """
    raw = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    if not raw:
        return {}
    data = json.loads(raw)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"{ENV_VAR} must be a JSON object mapping hosts to URLs")
    install(data)
    return dict(data)


def installed() -> dict[str, str]:
    """The mapping in effect (a copy; empty when nothing is installed)."""
    with _lock:
        return dict(_redirects)


def uninstall() -> None:
    """Restore the original methods and drop the mapping (used by tests)."""
    with _lock:
        for owner, attr, original in reversed(_patched):
            setattr(owner, attr, original)
        _patched.clear()
        _redirects.clear()
        _parsed.clear()
        if _state.finder in sys.meta_path:
            sys.meta_path.remove(_state.finder)
        _state.finder = None


def rewrite_url(url: str) -> str | None:
    """Where ``url`` would be sent, or None when its host is not redirected."""
    parts = urlsplit(url)
    target = _parsed.get((parts.hostname or "").lower())
    if target is None:
        return None
    scheme, host, port, prefix = target
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    path = prefix + (parts.path or "/")
    return f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


# -- httpx / httpx2 -------------------------------------------------------------
def _httpx_url(url: Any) -> Any:
    target = _parsed.get((url.host or "").lower())
    if target is None:
        return None
    scheme, host, port, prefix = target
    return url.copy_with(scheme=scheme, host=host, port=port, raw_path=prefix.encode("ascii") + url.raw_path)


def _wrap_sync_transport(original: Callable[..., Any]) -> Callable[..., Any]:
    def handle_request(self: Any, request: Any) -> Any:
        new_url = _httpx_url(request.url)
        if new_url is None:
            return original(self, request)
        # The Host header was fixed when the request was built, so only the
        # connection target changes; the URL is put back so the caller's
        # response.request.url still shows the host it asked for.
        old_url, request.url = request.url, new_url
        try:
            return original(self, request)
        finally:
            request.url = old_url

    return handle_request


def _wrap_async_transport(original: Callable[..., Any]) -> Callable[..., Any]:
    async def handle_async_request(self: Any, request: Any) -> Any:
        new_url = _httpx_url(request.url)
        if new_url is None:
            return await original(self, request)
        old_url, request.url = request.url, new_url
        try:
            return await original(self, request)
        finally:
            request.url = old_url

    return handle_async_request


# -- requests ---------------------------------------------------------------------
def _wrap_requests_send(original: Callable[..., Any]) -> Callable[..., Any]:
    def send(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        new_url = rewrite_url(request.url) if request.url else None
        if new_url is None:
            return original(self, request, *args, **kwargs)
        old_url = request.url
        netloc = urlsplit(old_url).netloc.rsplit("@", 1)[-1]
        added_host = "Host" not in request.headers
        if added_host:
            # urllib3 derives Host from the URL unless one is given.
            request.headers["Host"] = netloc
        # Proxies were chosen for the original host; the simulator is local.
        if len(args) >= 5:
            args = args[:4] + ({},) + args[5:]
        else:
            kwargs["proxies"] = {}
        request.url = new_url
        try:
            response = original(self, request, *args, **kwargs)
            response.url = old_url  # relative redirects resolve against the real host
            return response
        finally:
            request.url = old_url
            if added_host:
                del request.headers["Host"]

    return send


def _wrap(owner: Any, attr: str, wrapper_factory: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
    current = owner.__dict__.get(attr)
    if current is None or getattr(current, _MARK, None) is not None:
        return  # not defined here, or already wrapped: never double-wrap
    wrapped = wrapper_factory(current)
    setattr(wrapped, _MARK, current)
    wrapped.__name__ = getattr(current, "__name__", attr)
    wrapped.__doc__ = getattr(current, "__doc__", None)
    setattr(owner, attr, wrapped)
    _patched.append((owner, attr, current))


def _patch(name: str, module: Any) -> None:
    with _lock:
        if name in ("httpx", "httpx2"):
            sync_cls = getattr(module, "HTTPTransport", None)
            async_cls = getattr(module, "AsyncHTTPTransport", None)
            if sync_cls is not None:
                _wrap(sync_cls, "handle_request", _wrap_sync_transport)
            if async_cls is not None:
                _wrap(async_cls, "handle_async_request", _wrap_async_transport)
        elif name == "requests":
            adapters = getattr(module, "adapters", None) or sys.modules.get("requests.adapters")
            if adapters is not None:
                _wrap(adapters.HTTPAdapter, "send", _wrap_requests_send)


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch a target library right after its package finishes importing."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in _TARGETS:
            return None
        spec = None
        # Ask the finders after us (not just PathFinder), so import hooks
        # such as httpx2's httpx alias keep working.
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # let the normal machinery handle (and report) it
        loader = spec.loader
        original_exec = loader.exec_module

        def exec_module(module: Any) -> None:
            original_exec(module)
            if _state.finder is not None:  # still installed
                _patch(fullname, module)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec
