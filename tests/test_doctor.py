"""``python -m grading doctor`` end to end, on fake GPUs (the fake NVML, ``INFERGRADE_FAKE_NVML``) and
with simulators on free loopback ports standing in for Ollama (11434) and vLLM (8000), reached through
``--ollama-url`` / ``--vllm-url``: what it prints (GPUs, hardware class, which of the chapter's models
fit, which services answer) and its exit code. Token and port-conflict basics are in
tests/test_checkpoint_hardware.py.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from typing import Any, Iterator

import pytest

from grading.commands import doctor
from grading.context import REPO_ROOT
from grading.hardware import hardware_table

NO_TOKEN = {"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_HOME": "", "HF_TOKEN_PATH": "", "XDG_CACHE_HOME": ""}


def run_doctor(*args: str, fake: str | None = None, home: str | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, **NO_TOKEN, **(env or {})}
    full.pop("INFERGRADE_FAKE_NVML", None)
    if fake is not None:
        full["INFERGRADE_FAKE_NVML"] = fake
    if home is not None:
        full["HOME"] = home
    return subprocess.run([sys.executable, "-m", "grading", "doctor", *args], cwd=REPO_ROOT, env=full,
                          capture_output=True, text=True, timeout=120)


def rows(proc: subprocess.CompletedProcess) -> dict[tuple[str, str], dict[str, Any]]:
    return {(c["area"], c["name"]): c for c in json.loads(proc.stdout)["checks"]}


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, str]]:
    """The grader's Ollama and vLLM simulators on free loopback ports."""
    from grading.sims.ollama import create as create_ollama
    from grading.sims.openai_server import create as create_vllm

    ollama = create_ollama(tier="sim", seed=5).start()
    vllm = create_vllm(tier="sim", seed=5).start()
    try:
        yield {"ollama": ollama.url, "vllm": vllm.url}
    finally:
        ollama.stop()
        vllm.stop()


@pytest.fixture
def other_server(http_server) -> str:
    """Something on the port that is neither Ollama nor vLLM (a developer's web server)."""
    return f"http://127.0.0.1:{http_server({'*': (200, b'<html>a dev server</html>')})}"


def free_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_mixed_gpus_and_both_services(sims, tmp_path):
    proc = run_doctor("--json", "--ollama-url", sims["ollama"], "--vllm-url", sims["vllm"] + "/v1",
                      fake="mixed", home=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    hw, found = data["hardware"], rows(proc)
    assert [g["name"] for g in hw["gpus"]] == ["NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB",
                                                "NVIDIA A100-SXM4-80GB"]
    assert hw["hardware_class"] == "gpu_large" and hw["fake_nvml"] == "mixed"
    gpu = found[("hardware", "GPU")]
    assert gpu["status"] == "ok" and "3 GPU(s)" in gpu["detail"] and "largest 85.9 GB" in gpu["detail"]
    assert found[("hardware", "GPU source")]["status"] == "warn"      # fake GPUs are never silent
    assert found[("hardware", "NVIDIA driver")]["detail"] == "driver 550.54.15, CUDA 12.4 (NVML)"
    assert found[("hardware", "class")]["detail"].startswith("gpu_large")
    # every model of the chapter's table, and where it fits: one 80 GB GPU, or two with tensor parallelism
    assert {name for area, name in found if area == "models"} == {
        f"{m['name']} ({m['size']})" for m in hardware_table()["models"]}
    llama70 = found[("models", "Llama-2-70B (70B)")]
    assert llama70["status"] == "ok"
    assert "16-bit 167.2 GB on 2 GPUs (tensor parallel)" in llama70["detail"]
    assert "8-bit 84.4 GB on 1 GPU" in llama70["detail"] and "4-bit 43.0 GB on 1 GPU" in llama70["detail"]
    fit = {row["model"]: {o["bits"]: o["fits"] for o in row["options"]} for row in hw["models"]}
    assert fit["Llama-2-13B"] == {16: "gpu", 8: "gpu", 4: "gpu"}
    # both simulators answer where they were asked to
    ollama, vllm = found[("services", "Ollama")], found[("services", "vLLM")]
    assert ollama["status"] == "ok" and "Ollama 0.9.0" in ollama["detail"]
    assert sims["ollama"].removeprefix("http://") in ollama["detail"]
    assert vllm["status"] == "ok" and sims["vllm"].removeprefix("http://") in vllm["detail"]
    assert found[("tiers", "live")]["status"] == "warn" and "token" in found[("tiers", "live")]["detail"]


def test_small_gpu_table_output(sims, tmp_path):
    """The table a student reads: an 8 GB GPU, 7B only when quantized, 13B not on the GPU; vLLM down."""
    proc = run_doctor("--ollama-url", sims["ollama"], "--vllm-url", free_url(), fake="small", home=str(tmp_path),
                      env={"COLUMNS": "400"})    # wide enough that no cell wraps
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "NVIDIA GeForce RTX 3060 Ti 8.6 GB" in out
    assert "hardware class: gpu_small" in out
    assert "4-bit 6.6 GB on 1 GPU" in out        # Llama-2-7B
    assert "16-bit 18.8 GB on 1 GPU" not in out
    assert "Ollama 0.9.0 answers on" in out
    assert "nothing answers on" in out            # the vLLM URL nobody listens on


def test_no_driver_is_a_cpu_machine(tmp_path):
    proc = run_doctor("--json", "--ollama-url", free_url(), "--vllm-url", free_url(), fake="nodriver",
                      home=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data, found = json.loads(proc.stdout), rows(proc)
    assert data["hardware"]["gpus"] == [] and data["hardware"]["hardware_class"] == "cpu"
    assert found[("hardware", "GPU")]["status"] == "warn" and "no NVIDIA GPU" in found[("hardware", "GPU")]["detail"]
    assert ("hardware", "NVIDIA driver") not in found
    for (area, _), row in found.items():
        if area == "models":   # nothing on a GPU: warn (never fail), with where it would run and a fix
            assert row["status"] == "warn" and row["fix"] and "on 1 GPU" not in row["detail"]
    assert found[("tiers", "live")]["detail"] == "no local service answers"


def test_port_conflict_and_strict_exit_code(other_server, sims, tmp_path):
    proc = run_doctor("--json", "--ollama-url", other_server, "--vllm-url", sims["vllm"], fake="mixed",
                      home=str(tmp_path))
    assert proc.returncode == 0, proc.stderr          # advice, not an error ...
    ollama = rows(proc)[("services", "Ollama")]
    assert ollama["status"] == "fail" and "port conflict" in ollama["detail"] and ollama["fix"]
    strict = run_doctor("--json", "--strict", "--ollama-url", other_server, "--vllm-url", sims["vllm"],
                        fake="mixed", home=str(tmp_path))
    assert strict.returncode == 1, strict.stderr      # ... unless --strict asks for it


def test_strict_is_zero_without_a_failure(monkeypatch, capsys):
    ok = [doctor.Check("hardware", "CPU cores", doctor.OK, "8 logical cores"),
          doctor.Check("services", "Ollama", doctor.WARN, "nothing answers", "start it")]
    monkeypatch.setattr(doctor, "run_checks", lambda *a, **k: ({"hardware_class": "cpu"}, list(ok)))
    args = argparse.Namespace(path=None, timeout=0.5, json=True, strict=True, ollama_url=None, vllm_url=None)
    assert doctor.main(args) == 0
    ok.append(doctor.Check("services", "vLLM", doctor.FAIL, "port conflict", "stop it"))
    assert doctor.main(args) == 1
    capsys.readouterr()


@pytest.mark.parametrize("bad", ["localhost:11434", "ftp://127.0.0.1:21", "http://127.0.0.1:notaport"])
def test_bad_url_is_a_usage_error(bad):
    proc = run_doctor("--ollama-url", bad)
    assert proc.returncode == 2 and "--ollama-url" in proc.stderr


def test_service_url_normalised():
    assert doctor._service_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000"
    assert doctor._service_url("http://localhost:11434") == "http://localhost:11434"
    assert doctor._host_port("http://localhost") == ("localhost", 80)


def test_requirements_come_from_the_table():
    req = hardware_table()["requirements"]
    assert doctor.CPU_CORES == tuple(req["cpu_cores"]) and doctor.RAM_GB == tuple(req["ram_gb"])
    assert doctor.VRAM_GB == tuple(req["vram_gb"]) and doctor.DISK_FREE_GB == tuple(req["disk_free_gb"])
    assert f"CPU {req['cpu_cores'][0]} / {req['cpu_cores'][1]} cores" in doctor.HELP
