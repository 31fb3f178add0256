"""The `hardware` checkpoint, the grader's hardware reading and ``python -m grading doctor``.

* reference/ and an independently written solution (tests/alt_solutions/) score 5/5;
* each known-bad variant (a `hardware` mutant of reference/, built at run time from tests/mutants.py)
  loses points, with a message naming its mistake;
* student_template/ scores 0 with "not implemented" messages;
* ``grading.hardware.memory_estimate_gb`` (the ground truth) against hand-computed values;
* ``doctor`` exits 0, never shows a token, and tells services from port conflicts.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading.commands import doctor
from grading.context import REPO_ROOT
from graded import assert_full_marks, assert_not_implemented, graded_checkpoint
from grading.hardware import (GPU_SMALL_LIMIT_MB, detect_hardware, hardware_class, memory_estimate_gb,
                              ram_used_mb_readings)

HARDWARE_POINTS = 5.0
TESTS_DIR = Path(__file__).resolve().parent


# -- grading submissions ---------------------------------------------------------------------------


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The `hardware` checkpoint of one graded submission (each submission is graded once)."""
    return graded_checkpoint(path, "hardware", tmp_path_factory, seed=1)


def test_reference_scores_full_marks(tmp_path_factory):
    checkpoint = grade(REPO_ROOT / "reference", tmp_path_factory)
    assert_full_marks(checkpoint, HARDWARE_POINTS)
    assert checkpoint["status"] == "passed"


def test_alt_solution_scores_full_marks(tmp_path_factory):
    checkpoint = grade(TESTS_DIR / "alt_solutions", tmp_path_factory)
    assert_full_marks(checkpoint, HARDWARE_POINTS)


def test_template_scores_zero(tmp_path_factory):
    assert_not_implemented(grade(REPO_ROOT / "student_template", tmp_path_factory), "inference_lab.hardware.",
                           may_skip=False)


# -- the ground truth --------------------------------------------------------------------------------
@pytest.mark.parametrize("args,kwargs,expected", [
    ((7, 16), {}, 16.8),
    ((7, 4), {}, 4.2),
    ((13, 4), {}, 7.8),
    ((0.135, 32), {}, 0.648),
    ((7, 8), {"overhead": 1.0}, 7.0),
    # 2 * 32 layers * 4096 tokens * 4096 hidden * 2 bytes = 2.147483648 GB of KV cache
    ((0, 16), {"context_len": 4096, "n_layers": 32, "hidden_size": 4096, "overhead": 1.0}, 2.147483648),
    ((7, 16), {"context_len": 4096, "n_layers": 32, "hidden_size": 4096}, (14 + 2.147483648) * 1.2),
    ((0, 16), {"context_len": 4096, "n_layers": 32, "hidden_size": 4096, "kv_bits": 8, "batch": 4,
               "overhead": 1.0}, 4.294967296),
])
def test_memory_estimate_gb_values(args, kwargs, expected):
    assert memory_estimate_gb(*args, **kwargs) == pytest.approx(expected, rel=1e-12)


def test_memory_estimate_gb_rejects_negative():
    with pytest.raises(ValueError):
        memory_estimate_gb(-1, 16)
    with pytest.raises(ValueError):
        memory_estimate_gb(7, 16, context_len=-5)


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


# Both solutions, loaded in this process only for the formula (their estimate is pure arithmetic).
SOLUTIONS = [_load(REPO_ROOT / "reference" / "inference_lab" / "hardware.py", "_ref_hardware"),
             _load(TESTS_DIR / "alt_solutions" / "inference_lab" / "hardware.py", "_alt_hardware")]


@settings(max_examples=200, deadline=None)
@given(params=st.floats(0, 500), bits=st.sampled_from([2, 3, 4, 4.5, 5, 6, 8, 16, 32]),
       ctx=st.integers(0, 131072), layers=st.integers(0, 128), hidden=st.integers(0, 16384),
       kv_bits=st.sampled_from([4, 8, 16, 32]), batch=st.integers(1, 64),
       overhead=st.floats(1.0, 2.0))
def test_memory_estimate_agrees_with_solutions(params, bits, ctx, layers, hidden, kv_bits, batch, overhead):
    kwargs = dict(context_len=ctx, n_layers=layers, hidden_size=hidden, kv_bits=kv_bits, batch=batch,
                  overhead=overhead)
    truth = memory_estimate_gb(params, bits, **kwargs)
    for module in SOLUTIONS:
        assert module.estimate_memory_gb(params, bits, **kwargs) == pytest.approx(truth, rel=1e-9, abs=1e-12)
    # the weights and the KV cache add up
    weights = memory_estimate_gb(params, bits, overhead=overhead)
    kv = memory_estimate_gb(0, bits, **kwargs)
    assert truth == pytest.approx(weights + kv, rel=1e-9, abs=1e-12)


def test_detect_hardware_reads_this_machine():
    hw = detect_hardware()
    assert hw["cpu_count"] == os.cpu_count()
    assert isinstance(hw["ram_total_mb"], float) and hw["ram_total_mb"] > 0
    assert isinstance(hw["gpus"], list)
    assert hw["hardware_class"] == hardware_class(hw["gpus"])
    assert hw["cuda"] in (None, True, False)
    assert hw["disk_free_gb"] is None or hw["disk_free_gb"] >= 0
    json.dumps(hw)  # goes into report.json
    used = ram_used_mb_readings()
    assert all(0 < value <= hw["ram_total_mb"] for value in used)


def test_hardware_class_boundary():
    assert hardware_class([]) == "cpu"
    assert hardware_class([{"memory_total_mb": 8192}]) == "gpu_small"
    assert hardware_class([{"memory_total_mb": GPU_SMALL_LIMIT_MB - 1}]) == "gpu_small"
    assert hardware_class([{"memory_total_mb": GPU_SMALL_LIMIT_MB}]) == "gpu_large"
    assert hardware_class([{"memory_total_mb": 8192}, {"memory_total_mb": 81559}]) == "gpu_large"


# -- doctor -----------------------------------------------------------------------------------------
def run_doctor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grading", "doctor", *args], cwd=REPO_ROOT,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("token", ["hf_canaryvalue", "hf_Zq8canaryXw3J"])
@pytest.mark.parametrize("fmt", [(), ("--json",)], ids=["table", "json"])
def test_doctor_never_shows_the_token(token, fmt):
    proc = run_doctor(*fmt, env={"HF_TOKEN": token})
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    secret = token.removeprefix("hf_")
    # the whole token, its secret part, and (for a distinctive one) a masked form's head or tail
    pieces = [token, secret] + ([secret[:4], secret[-4:]] if token != "hf_canaryvalue" else [])
    for piece in pieces:
        assert piece not in output, f"doctor printed {piece!r}"
    assert "HF_TOKEN is set" in output


def test_doctor_json_and_stored_login(tmp_path):
    home = tmp_path / "home"
    (home / ".cache" / "huggingface").mkdir(parents=True)
    (home / ".cache" / "huggingface" / "token").write_text("hf_storedSECRETk2P9")
    env = {"HOME": str(home), "HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_HOME": "", "HF_TOKEN_PATH": "",
           "XDG_CACHE_HOME": ""}
    proc = run_doctor("--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "storedSECRET" not in proc.stdout + proc.stderr and "k2P9" not in proc.stdout
    data = json.loads(proc.stdout)
    rows = {(c["area"], c["name"]): c for c in data["checks"]}
    assert rows[("token", "Hugging Face token")]["status"] == "ok"
    assert "stored login" in rows[("token", "Hugging Face token")]["detail"]
    assert rows[("tiers", "sim")]["status"] == "ok"
    for check in data["checks"]:
        assert check["status"] in ("ok", "warn", "fail")
        assert check["status"] == "ok" or check["fix"], f"{check['name']} has no fix"
    assert data["hardware"]["cpu_count"] == os.cpu_count()


def test_doctor_without_token_warns(tmp_path):
    env = {"HOME": str(tmp_path), "HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "HF_HOME": "",
           "HF_TOKEN_PATH": "", "XDG_CACHE_HOME": ""}
    proc = run_doctor("--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {(c["area"], c["name"]): c for c in json.loads(proc.stdout)["checks"]}
    token = rows[("token", "Hugging Face token")]
    assert token["status"] == "warn" and "hf auth login" in token["fix"]


def test_doctor_help():
    proc = run_doctor("--help")
    assert proc.returncode == 0
    assert "11434" in proc.stdout and "8000" in proc.stdout and "never shown" in proc.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_doctor_services_answer(http_server, monkeypatch):
    monkeypatch.setattr(doctor, "OLLAMA_PORT", http_server({"/api/version": (200, b'{"version": "0.9.1"}')}))
    monkeypatch.setattr(doctor, "VLLM_PORT", http_server({"/health": (200, b"")}))
    checks, answering = doctor.service_checks(0.5)
    assert answering == {"ollama": True, "vllm": True}
    assert [c.status for c in checks] == ["ok", "ok"]
    assert "0.9.1" in checks[0].detail
    tiers = {c.name: c for c in doctor.tier_checks(answering, has_token=True)}
    assert tiers["live"].status == "ok"


def test_doctor_port_conflict_and_nothing_listening(http_server, monkeypatch):
    monkeypatch.setattr(doctor, "OLLAMA_PORT", http_server({"/": (200, b"<html>a dev server</html>")}))
    monkeypatch.setattr(doctor, "VLLM_PORT", _free_port())
    checks, answering = doctor.service_checks(0.5)
    assert answering == {"ollama": False, "vllm": False}
    ollama, vllm = checks
    assert ollama.status == "fail" and "port conflict" in ollama.detail and ollama.fix
    assert vllm.status == "warn" and "nothing answers" in vllm.detail and vllm.fix
    tiers = {c.name: c for c in doctor.tier_checks(answering, has_token=False)}
    assert tiers["sim"].status == "ok" and tiers["live"].status == "warn"


def test_doctor_hardware_grades():
    weak = {"cpu_count": 2, "ram_total_mb": 8 * 1024, "gpus": [], "cuda": None, "disk_free_gb": 20.0}
    strong = {"cpu_count": 16, "ram_total_mb": 64 * 1024, "cuda": True, "disk_free_gb": 500.0,
              "gpus": [{"name": "NVIDIA H100 80GB HBM3", "memory_total_mb": 81559, "memory_used_mb": 0}]}
    middle = {"cpu_count": 6, "ram_total_mb": 16 * 1024, "cuda": False, "disk_free_gb": 60.0,
              "gpus": [{"name": "GeForce RTX 3060 Ti", "memory_total_mb": 8192, "memory_used_mb": 0}]}
    status = lambda hw: {c.name: c.status for c in doctor.hardware_checks(hw)}  # noqa: E731
    assert status(weak) == {"CPU cores": "fail", "RAM": "fail", "GPU": "warn", "disk": "fail"}
    assert status(strong) == {"CPU cores": "ok", "RAM": "ok", "GPU": "ok", "CUDA (torch)": "ok", "disk": "ok"}
    assert status(middle) == {"CPU cores": "warn", "RAM": "warn", "GPU": "warn", "CUDA (torch)": "warn",
                              "disk": "warn"}
    assert all(c.fix for c in doctor.hardware_checks(weak) if c.status != "ok")
