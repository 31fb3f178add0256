"""Fixtures every checkpoint uses. A checkpoint test reads like this::

    def test_get_token_from_env(lab, canary_token):
        assert lab.call("auth.get_token") == canary_token, "get_token() must return HF_TOKEN"

``lab`` is a :class:`~grading.sandbox.client.Sandbox` over a private copy of the submission, one per
checkpoint module, with that checkpoint's limits from the rubric and the tier's service environment.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from grading.context import GradingContext, checkpoint_id_of
from grading.plugin import CONTEXT_KEY
from grading.sandbox.client import Sandbox
from grading.sandbox.errors import SandboxUnavailable
from grading.sandbox.forkserver import ForkServer
from grading.sandbox.forkserver import enabled as forkserver_enabled
from grading.sandbox.isolation import weak_isolation_reason
from grading.sandbox.limits import Limits


@pytest.fixture(scope="session")
def grading_context(pytestconfig: pytest.Config) -> GradingContext:
    return pytestconfig.stash[CONTEXT_KEY]


@pytest.fixture(scope="session")
def submission_dir(grading_context: GradingContext) -> Path:
    """The submission as handed in (read it as data only; run nothing from it)."""
    return grading_context.submission


@pytest.fixture(scope="session")
def canary_token(grading_context: GradingContext) -> str:
    return grading_context.canary_token


@pytest.fixture(scope="session")
def tier(grading_context: GradingContext) -> str:
    return grading_context.tier


@pytest.fixture(scope="session")
def hardware(grading_context: GradingContext) -> dict[str, Any]:
    """This machine as the grader sees it (the ground truth for the ``hardware`` checkpoint)."""
    from grading.hardware import detect_hardware

    if not grading_context.hardware:
        grading_context.hardware = detect_hardware()
    return grading_context.hardware


@pytest.fixture(scope="session")
def thresholds(hardware: dict[str, Any], grading_context: GradingContext) -> dict[str, Any]:
    from grading.rubric import load_thresholds

    return load_thresholds(hardware_class=hardware.get("hardware_class"), tier=grading_context.tier)


@pytest.fixture(scope="session")
def services(grading_context: GradingContext) -> Iterator[Any]:
    """The tier's services (simulators for ``sim``), started once per grading session."""
    from grading.services import start_services

    # Each service also listens on a unix socket here: a worker with a network of its own reaches it
    # through its relays (grading/sandbox/netrelay.py), on the same port numbers as the TCP URLs.
    sockets = tempfile.mkdtemp(prefix="infergrade-svc-")
    try:
        started = start_services(grading_context.tier, grading_context.seed, unix_dir=sockets)
        try:
            yield started
        finally:
            started.stop()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


@pytest.fixture(scope="session")
def forkserver(grading_context: GradingContext, services: Any) -> Iterator[ForkServer | None]:
    """The submission's zygote (grading/sandbox/forkserver.py): every checkpoint's worker is a fork of
    one interpreter that imported the client libraries once. None where workers are not bubblewrapped."""
    if not forkserver_enabled() or weak_isolation_reason(grading_context.isolation_mode) is not None:
        yield None
        return
    checkpoints = grading_context.rubric.checkpoints
    # the zygote's own limits bound its workers' (a fork can only lower them): the largest of any checkpoint
    widest = {name: max(getattr(c.limits, name) for c in checkpoints)
              for name in ("cpu_s", "memory_mb", "max_procs", "file_size_mb", "startup_timeout_s")}
    server = ForkServer(Limits.from_data(widest), services.env(grading_context.canary_token),
                        services.relay_map(), isolation=grading_context.isolation_mode)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, grading_context: GradingContext, services: Any,
        forkserver: ForkServer | None) -> Iterator[Sandbox]:
    checkpoint_id = checkpoint_id_of(Path(request.node.path))
    if checkpoint_id is None:
        raise pytest.UsageError("the lab fixture is for checkpoint modules (checkpoints/test_<id>.py)")
    limits = grading_context.rubric.checkpoint(checkpoint_id).limits
    try:
        sandbox = Sandbox(grading_context.submission, limits=limits,
                          env=services.env(grading_context.canary_token),
                          isolation=grading_context.isolation_mode, relays=services.relay_map(),
                          # the canary, whole and without its "hf_": a print of either is a leak
                          watch_output=(grading_context.canary_token, grading_context.canary_token[3:]),
                          forkserver=forkserver)
    except SandboxUnavailable as exc:
        pytest.fail(f"the submission cannot be graded: {exc}", pytrace=False)
    grading_context.isolation = grading_context.isolation or sandbox.isolation
    for dropped in sandbox.dropped:
        note = f"left out of the copy graded: {dropped}"
        if note not in grading_context.notes:
            grading_context.notes.append(note)
    try:
        yield sandbox
    finally:
        try:
            sandbox.close()
        finally:  # its output is all read now: lines that printed the canary are judged by auth, at the end
            grading_context.note_printed(checkpoint_id, sandbox.watched_lines())


def _reset_around(services: Any, name: str, what: str) -> Iterator[Any]:
    """Yield the tier's service ``name`` reset to its catalogue behaviour, and reset it again after;
    skip (with the reason) where this tier has none."""
    service = services.services.get(name)
    if service is None:
        reason = services.unavailable.get(name, f"the {name} service did not start")
        pytest.skip(f"no {what} in this tier: {reason}")
    service.reset()
    try:
        yield service
    finally:
        service.reset()


@pytest.fixture
def hf_sim(services: Any, canary_token: str) -> Iterator[Any]:
    """The Hugging Face simulator (docs/hf-sim.md), reset to its catalogue behaviour around each test."""
    sim = services.services.get("hf")
    if sim is not None:
        sim.expected_token = canary_token  # any other token gets the Hub's 401
    yield from _reset_around(services, "hf", "Hugging Face simulator")


@pytest.fixture
def ollama_server(services: Any) -> Iterator[Any]:
    """The tier's Ollama server (simulator or llama.cpp), reset (catalogue models, none loaded) around each test."""
    yield from _reset_around(services, "ollama", "Ollama server")


@pytest.fixture
def vllm_server(services: Any) -> Iterator[Any]:
    """The tier's vLLM OpenAI-compatible server (simulator, or real vLLM-CPU behind a logging proxy), reset
    around each test."""
    yield from _reset_around(services, "vllm", "vLLM server")
