"""The grader's own reading of this machine: the ground truth of the ``hardware`` checkpoint.

:func:`detect_hardware` reads CPUs, RAM, GPUs (NVML), CUDA (torch, only where it is installed) and free
disk, and classifies the machine (``cpu``, ``gpu_small``, ``gpu_large``; grading/thresholds.toml keys
its per-class tolerances on that). :func:`memory_estimate_gb` is the formula students' estimates are
compared against. Units follow the lab contract: ``*_mb`` are MiB (2**20 bytes), ``*_gb`` are GB
(10**9 bytes).

Nothing here installs anything or raises on a machine without a GPU, a driver or torch: a missing
piece reads as "none" (``gpus == []``, ``cuda is None``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import psutil

MIB = 2**20
GB = 10**9
# A GPU with less memory than this (the largest one counts) makes the machine "gpu_small".
GPU_SMALL_LIMIT_MB = 12 * 1024
HARDWARE_CLASSES = ("cpu", "gpu_small", "gpu_large")


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def nvml_gpus() -> list[dict[str, Any]]:
    """``[{name, memory_total_mb, memory_used_mb, utilization_pct}]`` from NVML; ``[]`` without a driver."""
    try:
        import pynvml
    except Exception:  # noqa: BLE001 - nvidia-ml-py not installed
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no libnvidia-ml, no device nodes
        return []
    gpus: list[dict[str, Any]] = []
    try:
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                utilization: float | None = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception:  # noqa: BLE001 - not supported on some devices (MIG, vGPU)
                utilization = None
            gpus.append({
                "name": _text(pynvml.nvmlDeviceGetName(handle)).strip(),
                "memory_total_mb": round(memory.total / MIB, 1),
                "memory_used_mb": round(memory.used / MIB, 1),
                "utilization_pct": utilization,
            })
    except Exception:  # noqa: BLE001 - a half-working driver: report what was read
        pass
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return gpus


def torch_cuda_available() -> bool | None:
    """``torch.cuda.is_available()`` when torch is installed; None when it is not (never installs it)."""
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return None
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install is "no CUDA known"
        return None


def usable_cpu_count() -> int | None:
    """CPUs this process may run on (its affinity mask); None where the platform does not say."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def hardware_class(gpus: list[dict[str, Any]]) -> str:
    """``cpu`` without a GPU, ``gpu_small`` when the largest GPU has < 12 GiB, else ``gpu_large``."""
    if not gpus:
        return "cpu"
    largest = max(float(gpu.get("memory_total_mb") or 0.0) for gpu in gpus)
    return "gpu_small" if largest < GPU_SMALL_LIMIT_MB else "gpu_large"


def disk_free_gb(path: str | os.PathLike[str] | None = None) -> float | None:
    try:
        return round(shutil.disk_usage(Path(path) if path is not None else Path.cwd()).free / GB, 2)
    except OSError:
        return None


def detect_hardware(path: str | os.PathLike[str] | None = None, *, with_torch: bool = True) -> dict[str, Any]:
    """This machine: ``cpu_count`` (logical), ``cpu_count_usable`` (affinity), ``ram_total_mb``,
    ``ram_available_mb``, ``gpus``, ``cuda``, ``hardware_class``, ``disk_free_gb`` (of ``path``, default
    the working folder) and ``platform``.
    """
    memory = psutil.virtual_memory()
    gpus = nvml_gpus()
    return {
        "cpu_count": os.cpu_count() or psutil.cpu_count(logical=True),
        "cpu_count_usable": usable_cpu_count(),
        "ram_total_mb": round(memory.total / MIB, 1),
        "ram_available_mb": round(memory.available / MIB, 1),
        "gpus": [{k: gpu[k] for k in ("name", "memory_total_mb", "memory_used_mb")} for gpu in gpus],
        "cuda": torch_cuda_available() if with_torch else None,
        "hardware_class": hardware_class(gpus),
        "disk_free_gb": disk_free_gb(path),
        "platform": sys.platform,
    }


def ram_used_mb_readings() -> list[float]:
    """RAM in use now, in MiB, as the two usual definitions read it: psutil's ``used`` and
    ``total - available`` (``free``'s newer "used"). A correct sample lies near one of them."""
    memory = psutil.virtual_memory()
    return [memory.used / MIB, (memory.total - memory.available) / MIB]


def memory_estimate_gb(params_billion: float, bits_per_weight: float, *, context_len: int = 0,
                       n_layers: int = 0, hidden_size: int = 0, kv_bits: float = 16, batch: int = 1,
                       overhead: float = 1.2) -> float:
    """GB (10**9 bytes) to serve a model: weights plus KV cache, times an overhead factor.

    weights  = params_billion * 1e9 * bits_per_weight / 8
    kv_cache = 2 (K and V) * n_layers * context_len * hidden_size * kv_bits / 8 * batch

    >>> round(memory_estimate_gb(7, 16), 2)
    16.8
    """
    values = {"params_billion": params_billion, "bits_per_weight": bits_per_weight, "context_len": context_len,
              "n_layers": n_layers, "hidden_size": hidden_size, "kv_bits": kv_bits, "batch": batch,
              "overhead": overhead}
    negative = [name for name, value in values.items() if value < 0]
    if negative:
        raise ValueError(f"negative {', '.join(negative)}")
    weights = params_billion * 1e9 * bits_per_weight / 8
    kv_cache = 2 * n_layers * context_len * hidden_size * kv_bits / 8 * batch
    return (weights + kv_cache) * overhead / GB
