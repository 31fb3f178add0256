"""``SimServer``: run an aiohttp simulator on its own loop in a background thread.

Every service simulator (HF router and providers, Ollama, the vLLM-style
OpenAI server) is an aiohttp ``web.Application`` served by a ``SimServer``:
bound to 127.0.0.1 (a free port by default) and optionally to a unix socket
(the isolation relay forwards the worker's loopback ports to it). Streams
are real ``StreamResponse`` writes over real sockets, so a client sees the
chunk timing the simulator paced — never a buffered body.

Usage, with a factory::

    def make_app(server: SimServer) -> web.Application:
        app = web.Application()
        app.router.add_get("/health", lambda request: web.Response())
        return app

    with SimServer(make_app, name="demo") as sim:
        httpx.get(sim.url + "/health")
        sim.log.records(path="/health")

or a subclass that overrides ``build_app(self)``. The log middleware is
added automatically (outermost), and ``server.clock`` paces handlers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any, Callable

from aiohttp import web

from .clock import PacingClock
from .log import RequestLog, log_middleware, on_response_prepare

__all__ = ["SimServer", "SIM_KEY", "sim_of"]

# Typed app storage (aiohttp >= 3.9 warns on string keys); handlers reach the
# server (its log, clock, name) through ``request.app[SIM_KEY]``.
SIM_KEY: "web.AppKey[Any]" = web.AppKey("infergrade_sim", object)

_logger = logging.getLogger(__name__)


def sim_of(request: web.BaseRequest) -> "SimServer":
    """The ``SimServer`` serving ``request``."""
    return request.app[SIM_KEY]  # type: ignore[no-any-return]


class SimServer:
    """An aiohttp application served from a background thread.

    ``app_factory(server)`` builds the ``web.Application`` (or override
    :meth:`build_app`). ``start()`` returns once the sockets accept
    connections; ``stop()`` is idempotent and returns within about a second
    even with hung or endless streams open (their handlers are cancelled).
    """

    #: seconds stop() lets running handlers finish before cancelling them
    shutdown_grace_s: float = 0.2

    _time_scale: float = 1.0   # simulators set their catalogue's default in __init__

    @property
    def time_scale(self) -> float:
        """Factor applied to every configured latency of this simulator (e.g. 0.05 for fast grading)."""
        return self._time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        value = float(value)
        if not value > 0:
            raise ValueError("time_scale must be > 0")
        self._time_scale = value

    def __init__(
        self,
        app_factory: Callable[["SimServer"], web.Application] | None = None,
        *,
        name: str = "sim",
        host: str = "127.0.0.1",
        port: int = 0,
        unix_path: str | os.PathLike[str] | None = None,
        log: RequestLog | None = None,
        clock: PacingClock | None = None,
    ) -> None:
        self._factory = app_factory
        self.name = name
        self.host = host
        self.port = int(port)
        self.unix_path = None if unix_path is None else os.fspath(unix_path)
        #: more unix sockets to listen on (set before start): e.g. the one a worker's relay of the
        #: service's default port connects to, so that the log tells which port a request used
        self.alias_unix_paths: list[str] = []
        self.log = log if log is not None else RequestLog()
        self.clock = clock if clock is not None else PacingClock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._stopped = False

    # -- building -----------------------------------------------------------
    def build_app(self) -> web.Application:
        """Return the application; subclasses override this or pass a factory."""
        if self._factory is None:
            raise NotImplementedError("pass app_factory or override build_app()")
        return self._factory(self)

    def _prepared_app(self) -> web.Application:
        app = self.build_app()
        app[SIM_KEY] = self
        # Outermost, so faults, validation errors and crashes are all logged.
        app.middlewares.insert(0, log_middleware(self.log, self.name))
        app.on_response_prepare.append(on_response_prepare)
        return app

    # -- lifecycle ----------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://HOST:PORT`` once started (the real port when 0 was asked)."""
        if not self._ready.is_set():
            raise RuntimeError(f"{self.name} simulator is not started")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """True between a successful start() and stop()."""
        return self._ready.is_set() and not self._stopped

    def start(self, timeout: float = 10.0) -> "SimServer":
        """Start serving; return self once connections are accepted."""
        with self._lock:
            if self._thread is not None:
                return self
            self._thread = threading.Thread(target=self._run, name=f"sim-{self.name}", daemon=True)
            self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self._error is not None or not self._thread.is_alive():
                break
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"{self.name} simulator did not start within {timeout} s")
        if self._error is not None or not self._ready.is_set():
            err = self._error
            self.stop()
            if isinstance(err, OSError):
                raise err  # e.g. the port is taken: callers report it as such
            raise RuntimeError(f"{self.name} simulator failed to start: {err!r}") from err
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start() via self._error
            self._error = exc
        finally:
            try:
                self._cancel_leftovers(loop)
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        if self._stopped:  # stop() came before the event existed
            return
        runner = web.AppRunner(
            self._prepared_app(),
            # Never wait long for hung handlers: stop() must be quick.
            shutdown_timeout=self.shutdown_grace_s,
            # A client that gives up (timeout, Ctrl-C) ends its handler, as
            # real servers abort the request: hung faults and streams do not
            # linger, and the log shows when the client left.
            handler_cancellation=True,
            access_log=None,
            handle_signals=False,
        )
        await runner.setup()
        self._runner = runner
        try:
            site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
            await site.start()
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                self.port = server.sockets[0].getsockname()[1]
            for path in self._unix_paths():
                if os.path.exists(path):
                    os.unlink(path)  # a stale socket from a crashed run
                await web.UnixSite(runner, path).start()
            self._ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()
            for path in self._unix_paths():
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def _unix_paths(self) -> list[str]:
        return ([self.unix_path] if self.unix_path is not None else []) + list(self.alias_unix_paths)

    @staticmethod
    def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
        # Handlers aiohttp gave up on (hung past the grace) must not keep the
        # loop open; cancel them and let them unwind for a bounded time.
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in tasks:
            t.cancel()
        if tasks:
            loop.run_until_complete(asyncio.wait(tasks, timeout=0.5))

    def stop(self, timeout: float = 2.0) -> None:
        """Stop serving (idempotent); cancels in-flight handlers after a short grace."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._stopping.set)
            except RuntimeError:  # loop closed meanwhile
                pass
        thread.join(timeout)
        if thread.is_alive():
            _logger.warning("%s simulator thread did not stop within %.1f s", self.name, timeout)

    def __enter__(self) -> "SimServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._ready.is_set() else "not started"
        return f"<SimServer {self.name} {where}>"

    # -- helpers for handlers and tests ---------------------------------------
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the server's loop thread (thread-safe)."""
        if self._loop is None:
            raise RuntimeError("simulator is not started")
        self._loop.call_soon_threadsafe(fn, *args)
