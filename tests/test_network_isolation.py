"""A worker's own network (bubblewrap ``--unshare-net``): only the tier's services answer, on their
usual ports and on the real default ports, through the relays (grading/sandbox/netrelay.py)."""

from __future__ import annotations

import socket
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from grading.sandbox.client import Sandbox
from grading.sandbox.isolation import bwrap_can_unshare_net
from grading.sandbox.limits import Limits
from grading.services import ServiceSet, default_port_socket, start_services

pytestmark = pytest.mark.skipif(not bwrap_can_unshare_net(), reason="bubblewrap cannot make a network namespace here")

PROBE = textwrap.dedent('''
    import socket
    import urllib.request


    def fetch(url):
        with urllib.request.urlopen(url, timeout=5) as answer:
            return {"status": answer.status, "body": answer.read().decode()[:200]}


    def connect(host, port):
        try:
            with socket.create_connection((host, port), timeout=2) as sock:
                sock.sendall(b"hf_canary_secret")
                return "connected"
        except OSError as exc:
            return type(exc).__name__ + ": " + str(exc)


    def resolve(name):
        try:
            return str(socket.getaddrinfo(name, 80))
        except OSError as exc:
            return type(exc).__name__ + ": " + str(exc)
''')


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceSet]:
    sockets = tmp_path_factory.mktemp("sockets")
    with start_services("sim", seed=3, names=["ollama", "vllm"], unix_dir=str(sockets)) as started:
        yield started


@pytest.fixture(scope="module")
def submission(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("netprobe")
    (root / "inference_lab").mkdir()
    (root / "inference_lab" / "__init__.py").write_text("")
    (root / "inference_lab" / "probe.py").write_text(PROBE)
    return root


@pytest.fixture(scope="module")
def box(submission: Path, services: ServiceSet) -> Iterator[Sandbox]:
    with Sandbox(submission, limits=Limits(call_timeout_s=10), env={"HF_TOKEN": "hf_canary_secret"},
                 isolation="bwrap", relays=services.relay_map()) as sandbox:
        yield sandbox


def test_report_names_the_network_namespace(box: Sandbox) -> None:
    assert box.own_network
    assert "net" in box.isolation and "loopback-only network" in box.isolation


def test_services_answer_on_their_ports_and_the_defaults(box: Sandbox, services: ServiceSet) -> None:
    ollama = services.services["ollama"]
    for url in (services.url("ollama"), "http://127.0.0.1:11434", "http://localhost:11434"):
        answer = box.call("probe.fetch", url + "/api/version")
        assert answer["status"] == 200 and "version" in answer["body"], (url, answer)
    vllm = box.call("probe.fetch", "http://127.0.0.1:8000/health")
    assert vllm["status"] == 200
    listeners = [r.extra.get("listener") for r in ollama.log.records(service="ollama") if r.path == "/api/version"]
    assert listeners.count(default_port_socket(ollama)) == 2    # the log tells which port was used
    assert listeners.count(ollama.unix_path) == 1


def test_nothing_else_answers(box: Sandbox) -> None:
    """A listener of the grader's own namespace (any port the worker is not given) is out of reach, and
    there is no route out nor a resolver: the canary cannot be sent anywhere."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        result = box.call("probe.connect", "127.0.0.1", port)
        assert result.startswith("ConnectionRefusedError"), result
        with pytest.raises(socket.timeout):
            listener.accept()
    outside = box.call("probe.connect", "192.0.2.1", 80)     # TEST-NET-1: would time out if it were routed
    assert "unreachable" in outside.lower(), outside
    assert box.call("probe.resolve", "hf-canary-secret.example.com").startswith("gaierror")


def test_process_isolation_has_no_network_of_its_own(submission: Path, services: ServiceSet) -> None:
    with Sandbox(submission, limits=Limits(call_timeout_s=10), isolation="process",
                 relays=services.relay_map()) as sandbox:
        assert not sandbox.own_network and "net" not in sandbox.isolation
        assert sandbox.call("probe.fetch", services.url("ollama") + "/api/version")["status"] == 200
