"""GPU paths without a GPU: the fake NVML, the grader's detection with it, the student's worker seeing the
same fake, and the `hardware` checkpoint graded end to end on fake GPUs; the load the checkpoint's
``sample_usage`` test runs; the table of real models (grading/hardware_table.toml).

The fake (grading/testing/fake_nvml/pynvml.py) is switched on by ``INFERGRADE_FAKE_NVML`` in the
grader's environment only: a preset (``mixed``: one 24 GB and two 80 GB GPUs; ``small``: one 8 GB;
``none``; ``nodriver``) or a JSON list of GPUs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from grading import hardware
from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.hardware import (FAKE_NVML_DIR, CpuLoad, cpu_busy_percent, cpu_times, detect_hardware, hardware_table,
                              memory_estimate_gb, model_cases, model_fit, tensor_parallel_gb, worker_env)
from grading.rubric import load_rubric
from grading.sandbox.client import Sandbox

TESTS_DIR = Path(__file__).resolve().parent
MIXED = [("NVIDIA GeForce RTX 4090", 24564.0), ("NVIDIA A100-SXM4-80GB", 81920.0),
         ("NVIDIA A100-SXM4-80GB", 81920.0)]


def fake_module(setting: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh copy of the fake module, reading ``setting``."""
    monkeypatch.setenv("INFERGRADE_FAKE_NVML", setting)
    spec = importlib.util.spec_from_file_location("_fake_pynvml_under_test", FAKE_NVML_DIR / "pynvml.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the fake itself ---------------------------------------------------------------------------------
def test_fake_nvml_reports_the_mixed_machine(monkeypatch):
    nvml = fake_module("mixed", monkeypatch)
    with pytest.raises(nvml.NVMLError_Uninitialized):
        nvml.nvmlDeviceGetCount()
    nvml.nvmlInit()
    try:
        assert nvml.nvmlDeviceGetCount() == 3
        seen = []
        for index in range(3):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            assert memory.total == memory.used + memory.free and memory.total % 2**20 == 0
            seen.append((nvml.nvmlDeviceGetName(handle), memory.total / 2**20))
            assert 0 <= nvml.nvmlDeviceGetUtilizationRates(handle).gpu <= 100
        assert seen == MIXED
        assert nvml.nvmlSystemGetDriverVersion() == "550.54.15"
        assert nvml.nvmlSystemGetCudaDriverVersion() == 12040
        with pytest.raises(nvml.NVMLError) as error:
            nvml.nvmlDeviceGetHandleByIndex(3)
        assert isinstance(error.value, nvml.NVMLError_InvalidArgument) and error.value.value == 2
        with pytest.raises(nvml.NVMLError_FunctionNotFound):  # an NVML call the fake does not implement
            nvml.nvmlDeviceGetClockInfo(handle, 0)
        nvml.nvmlInit()          # nested, as the real library counts them
        nvml.nvmlShutdown()
        assert nvml.nvmlDeviceGetCount() == 3
    finally:
        nvml.nvmlShutdown()
    with pytest.raises(nvml.NVMLError_Uninitialized):
        nvml.nvmlDeviceGetCount()


def test_fake_nvml_settings(monkeypatch):
    nvml = fake_module("nodriver", monkeypatch)
    with pytest.raises(nvml.NVMLError_DriverNotLoaded):
        nvml.nvmlInit()
    custom = [{"name": "Tesla T4", "memory_total_mb": 15360, "memory_used_mb": 0, "utilization_pct": None}]
    nvml = fake_module(json.dumps({"gpus": custom, "bytes_names": True, "cuda": 11080}), monkeypatch)
    nvml.nvmlInit()
    handle = nvml.nvmlDeviceGetHandleByIndex(0)
    assert nvml.nvmlDeviceGetName(handle) == b"Tesla T4"          # as pynvml < 11.5 returned names
    with pytest.raises(nvml.NVMLError_NotSupported):              # as on MIG or vGPU
        nvml.nvmlDeviceGetUtilizationRates(handle)
    assert nvml.nvmlSystemGetCudaDriverVersion() == 11080
    nvml.nvmlShutdown()
    nvml = fake_module("none", monkeypatch)
    nvml.nvmlInit()
    assert nvml.nvmlDeviceGetCount() == 0
    nvml.nvmlShutdown()


def test_fake_nvml_names_exist_in_the_real_library():
    """Every NVML name the fake offers is a real nvidia-ml-py name, so code written against it is real code."""
    real = pytest.importorskip("pynvml")
    if getattr(real, "FAKE", False):
        pytest.skip("the fake is on sys.path here")
    spec = importlib.util.spec_from_file_location("_fake_pynvml_names", FAKE_NVML_DIR / "pynvml.py")
    fake = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fake)
    names = [n for n in vars(fake) if n.startswith(("nvml", "NVML"))]
    assert len(names) > 30
    assert [n for n in names if not hasattr(real, n)] == []
    for name in ("NVML_ERROR_UNINITIALIZED", "NVML_ERROR_INVALID_ARGUMENT", "NVML_ERROR_NOT_SUPPORTED",
                 "NVML_ERROR_DRIVER_NOT_LOADED", "NVML_ERROR_FUNCTION_NOT_FOUND"):
        assert getattr(fake, name) == getattr(real, name)


# -- the grader's detection ------------------------------------------------------------------------------
@pytest.mark.parametrize("setting, names, hw_class", [
    ("mixed", [n for n, _ in MIXED], "gpu_large"),
    ("small", ["NVIDIA GeForce RTX 3060 Ti"], "gpu_small"),
    ('[{"name": "NVIDIA L4", "memory_total_mb": 12287, "memory_used_mb": 10}]', ["NVIDIA L4"], "gpu_small"),
    ('[{"name": "NVIDIA A2", "memory_total_mb": 12288, "memory_used_mb": 10}]', ["NVIDIA A2"], "gpu_large"),
    ("none", [], "cpu"),
    ("nodriver", [], "cpu"),
])
def test_detect_hardware_reads_the_fake(monkeypatch, setting, names, hw_class):
    monkeypatch.setenv("INFERGRADE_FAKE_NVML", setting)
    hw = detect_hardware()
    assert [g["name"] for g in hw["gpus"]] == names
    assert hw["hardware_class"] == hw_class
    assert hw["fake_nvml"] == setting                      # a report graded on fake GPUs says so
    assert hw["nvidia_driver"] == (None if setting == "nodriver" else "550.54.15")
    if setting == "mixed":
        assert [g["memory_total_mb"] for g in hw["gpus"]] == [m for _, m in MIXED]
        assert [g["memory_used_mb"] for g in hw["gpus"]] == [1024.0, 40960.0, 512.0]
        assert hw["cuda_driver"] == "12.4"
        assert [g["utilization_pct"] for g in hardware.nvml_gpus()] == [3.0, 87.0, 0.0]
    json.dumps(hw)
    assert "pynvml" not in sys.modules or not getattr(sys.modules["pynvml"], "FAKE", False)


def test_without_the_variable_nothing_is_faked(monkeypatch):
    monkeypatch.delenv("INFERGRADE_FAKE_NVML", raising=False)
    hw = detect_hardware()
    assert "fake_nvml" not in hw
    env = {"INFERGRADE_EXTRA_SYSPATH": "/somewhere/standin", "HF_TOKEN": "hf_x"}
    assert worker_env(env) == env


def test_worker_env_puts_the_fake_first(monkeypatch):
    monkeypatch.setenv("INFERGRADE_FAKE_NVML", "mixed")
    env = worker_env({"INFERGRADE_EXTRA_SYSPATH": "/somewhere/standin", "HF_TOKEN": "hf_x"})
    assert env["INFERGRADE_FAKE_NVML"] == "mixed" and env["HF_TOKEN"] == "hf_x"
    # the worker inserts each entry at sys.path[1] in turn: the last one listed ends up first
    assert env["INFERGRADE_EXTRA_SYSPATH"].split(os.pathsep) == ["/somewhere/standin", str(FAKE_NVML_DIR)]
    assert worker_env(env) == env                          # applying it twice changes nothing
    # the sandbox hides reference/, checkpoints/, tests/ and .git: the fake lives under grading/
    assert FAKE_NVML_DIR.is_relative_to(REPO_ROOT / "grading")


@pytest.mark.parametrize("setting, expected", [("mixed", MIXED), (None, [])])
def test_the_worker_sees_what_the_grader_sees(monkeypatch, setting, expected):
    """The sandboxed worker (python -I, bubblewrap where usable) imports the fake, not site-packages' pynvml."""
    if setting:
        monkeypatch.setenv("INFERGRADE_FAKE_NVML", setting)
    else:
        monkeypatch.delenv("INFERGRADE_FAKE_NVML", raising=False)
    with Sandbox(REPO_ROOT / "reference", env=worker_env({})) as sandbox:
        found = sandbox.call("hardware.detect")
        usage = sandbox.call("hardware.sample_usage")
    assert [(g["name"], g["memory_total_mb"]) for g in found["gpus"]] == expected
    assert [g["name"] for g in found["gpus"]] == [g["name"] for g in detect_hardware()["gpus"]]
    if setting:
        assert [g["utilization_pct"] for g in usage["gpus"]] == [3.0, 87.0, 0.0]
        assert [g["memory_used_mb"] for g in usage["gpus"]] == [1024, 40960, 512]


# -- the checkpoint on fake GPUs --------------------------------------------------------------------------
def _hardware_checkpoint(submission: Path, out: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    report = run_checkpoints(submission, out_json=out, seed=3, only="hardware")
    [checkpoint] = [c for c in report["checkpoints"] if c["id"] == "hardware"]
    return report, checkpoint


@pytest.mark.parametrize("setting, submission", [
    ("mixed", REPO_ROOT / "reference"),
    ("mixed", TESTS_DIR / "alt_solutions"),      # NVML read its own way, nvidia-smi as a fallback
    ("small", REPO_ROOT / "reference"),
])
def test_checkpoint_on_fake_gpus_full_marks(monkeypatch, tmp_path, setting, submission):
    monkeypatch.setenv("INFERGRADE_FAKE_NVML", setting)
    report, checkpoint = _hardware_checkpoint(submission, tmp_path / "report.json")
    failures = [f"{t['name']}: {t['message']}" for t in checkpoint["tests"] if t["outcome"] != "passed"]
    assert checkpoint["score"] == checkpoint["max_score"] == 5, failures
    assert report["hardware"]["fake_nvml"] == setting
    assert report["hardware"]["hardware_class"] == ("gpu_large" if setting == "mixed" else "gpu_small")
    assert len(report["hardware"]["gpus"]) == (3 if setting == "mixed" else 1)


def test_checkpoint_on_fake_gpus_template_scores_zero(monkeypatch, tmp_path):
    monkeypatch.setenv("INFERGRADE_FAKE_NVML", "mixed")
    _, checkpoint = _hardware_checkpoint(REPO_ROOT / "student_template", tmp_path / "report.json")
    assert checkpoint["score"] == 0
    assert all(t["message"].startswith("not implemented: inference_lab.hardware.") for t in checkpoint["tests"])


# -- the load behind test_sample_usage_under_load ----------------------------------------------------------
def test_cpu_load_shows_and_stops_by_itself():
    before = cpu_times()
    time.sleep(0.2)
    assert 0 <= cpu_busy_percent(before, cpu_times()) <= 100
    with CpuLoad(seconds=1.0) as load:
        load.wait_busy()
        before = cpu_times()
        time.sleep(0.3)
        busy = cpu_busy_percent(before, cpu_times())
        usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        # every CPU this process may use is spinning (whatever else runs here)
        assert busy >= 0.8 * 100 * usable / os.cpu_count(), busy
        procs = list(load.procs)
        deadline = time.monotonic() + 10
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(p.returncode == 0 for p in procs), "a busy loop did not stop by itself"
    with CpuLoad(seconds=60) as load:
        procs = list(load.procs)
    assert all(p.poll() is not None for p in procs), "leaving the block must stop the loops at once"


# -- the table of real models ------------------------------------------------------------------------------
def test_hardware_table_is_data_for_doctor_and_the_checkpoint():
    table = hardware_table()
    assert table["requirements"] == {"cpu_cores": [4, 8], "ram_gb": [16, 32], "disk_free_gb": [50, 100],
                                     "vram_gb": [8, 16]}       # DESIGN.md, `doctor`
    assert table["estimate"]["bits"] == [16, 8, 4]
    assert {m["size"] for m in table["models"]} == {"7B", "13B", "70B"}
    by_name = {m["name"]: m for m in table["models"]}
    assert by_name["Llama-2-7B"]["kv_width"] == 4096 and by_name["Llama-2-70B"]["kv_width"] == 1024
    for model in table["models"]:
        assert model["hidden_size"] == model["n_heads"] * model["head_dim"]
        assert all(0 < c <= model["max_context"] for c in model["contexts"])
    cases = model_cases()
    assert len(cases) == 3 * sum(len(m["contexts"]) for m in table["models"])
    # by hand: Llama-2-7B, 16 bits, 4096 tokens: 6.74e9*2 B of weights + 2*32*4096*4096*2 B of KV, x 1.2
    [case] = [c for c in cases if c["model"] == "Llama-2-7B" and c["bits"] == 16 and c["context_len"] == 4096]
    assert case["gb"] == pytest.approx((13.48e9 + 2_147_483_648) * 1.2 / 1e9, rel=1e-12)
    # the KV cache matters in the table: without it, most cases would be off by more than 10 %
    off = [c for c in cases if memory_estimate_gb(*c["args"], overhead=c["kwargs"]["overhead"]) < 0.9 * c["gb"]]
    assert len(off) >= len(cases) // 2


def test_rubric_names_the_new_items():
    names = {t.name for t in load_rubric().checkpoint("hardware").tests}
    assert {"test_estimate_real_models", "test_sample_usage_under_load"} <= names


def test_model_fit_on_the_mixed_machine(monkeypatch):
    monkeypatch.setenv("INFERGRADE_FAKE_NVML", "mixed")
    hw = detect_hardware()
    assert tensor_parallel_gb(hw["gpus"]) == (2, pytest.approx(2 * 81920 * 2**20 / 1e9))
    fit = {row["model"]: {o["bits"]: o["fits"] for o in row["options"]} for row in model_fit(hw)}
    assert fit["Llama-2-7B"] == {16: "gpu", 8: "gpu", 4: "gpu"}
    assert fit["Llama-2-70B"] == {16: "gpus", 8: "gpu", 4: "gpu"}      # 167 GB: two 80 GB GPUs together
    monkeypatch.setenv("INFERGRADE_FAKE_NVML", "small")
    fit = {row["model"]: {o["bits"]: o["fits"] for o in row["options"]} for row in model_fit(detect_hardware())}
    assert fit["Llama-2-7B"][4] == "gpu" and fit["Llama-2-7B"][16] != "gpu"
    assert "gpu" not in fit["Llama-2-13B"].values()
