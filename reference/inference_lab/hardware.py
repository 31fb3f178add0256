"""Hardware detection, resource monitoring and "does this model fit" estimates.

Units: ``*_mb`` are MiB (2**20 bytes), ``*_gb`` are GB (10**9 bytes).
GPUs are read with NVML (``pynvml`` from the ``nvidia-ml-py`` package); torch is used only when
NVML is unavailable and torch happens to be installed. No GPU -> ``gpus == []``.
"""

from __future__ import annotations

import os
import sys

__all__ = ["detect", "estimate_memory_gb", "fits", "sample_usage"]

MIB = 2**20
GB = 10**9


def _decode(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _nvml_gpus(with_utilization: bool = False) -> list | None:
    """GPU list via NVML, or None when NVML is not usable here (no driver, no library)."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:
        return None
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpu = {
                "name": _decode(pynvml.nvmlDeviceGetName(handle)),
                "memory_total_mb": int(memory.total // MIB),
                "memory_used_mb": int(memory.used // MIB),
            }
            if with_utilization:
                try:
                    gpu["utilization_pct"] = float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
                except Exception:
                    gpu["utilization_pct"] = None
            gpus.append(gpu)
        return gpus
    except Exception:
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:
            pass


def _torch_gpus() -> list:
    """CUDA devices via torch, only if torch is already installed (never required)."""
    try:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return []
        if sys.platform.startswith("linux") and not any(
                os.path.exists(p) for p in ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/kfd")):
            return []  # no GPU driver loaded: importing torch (a second) could not find a device
        import torch

        if not torch.cuda.is_available():
            return []
        gpus = []
        for index in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(index)
            gpus.append(
                {
                    "name": torch.cuda.get_device_name(index),
                    "memory_total_mb": int(total // MIB),
                    "memory_used_mb": int((total - free) // MIB),
                }
            )
        return gpus
    except Exception:
        return []


def detect() -> dict:
    """``{gpus: [{name, memory_total_mb, memory_used_mb}], cpu_count, ram_total_mb}``."""
    import psutil

    gpus = _nvml_gpus()
    if gpus is None:
        gpus = _torch_gpus()
    return {
        "gpus": gpus,
        "cpu_count": psutil.cpu_count(logical=True) or os.cpu_count() or 1,
        "ram_total_mb": int(psutil.virtual_memory().total // MIB),
    }


def estimate_memory_gb(
    params_billion,
    bits_per_weight,
    *,
    context_len=0,
    n_layers=0,
    hidden_size=0,
    kv_bits=16,
    batch=1,
    overhead=1.2,
) -> float:
    """Memory to serve a model, in GB (10**9 bytes)::

        weights  = params_billion * 1e9 * bits_per_weight / 8
        kv_cache = 2 (K and V) * n_layers * context_len * hidden_size * kv_bits / 8 * batch
        total    = (weights + kv_cache) * overhead / 1e9

    e.g. 7B at 16 bits with overhead 1.2 -> 16.8 GB; at 4 bits -> 4.2 GB. (For grouped-query
    attention use the KV width, n_kv_heads * head_dim, as ``hidden_size``.)
    """
    values = {
        "params_billion": params_billion,
        "bits_per_weight": bits_per_weight,
        "context_len": context_len,
        "n_layers": n_layers,
        "hidden_size": hidden_size,
        "kv_bits": kv_bits,
        "batch": batch,
        "overhead": overhead,
    }
    for name, value in values.items():
        if value is None or float(value) < 0:
            raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    weights = float(params_billion) * 1e9 * float(bits_per_weight) / 8
    kv_cache = (
        2 * float(n_layers) * float(context_len) * float(hidden_size)
        * float(kv_bits) / 8 * float(batch)
    )
    return (weights + kv_cache) * float(overhead) / GB


def fits(params_billion, bits_per_weight, memory_gb, **kw) -> bool:
    """True when ``estimate_memory_gb(params_billion, bits_per_weight, **kw) <= memory_gb``."""
    return estimate_memory_gb(params_billion, bits_per_weight, **kw) <= float(memory_gb)


def sample_usage() -> dict:
    """One sample while something runs: ``{cpu_percent, ram_used_mb, gpus: [{utilization_pct,
    memory_used_mb}]}``. Call it in a loop (e.g. a thread) during a benchmark."""
    import psutil

    cpu = psutil.cpu_percent(interval=0.1)
    memory = psutil.virtual_memory()
    ram_used = memory.total - memory.available  # in use now ("free"'s "used"); psutil's .used is close
    gpus = []
    for gpu in _nvml_gpus(with_utilization=True) or []:
        gpus.append(
            {
                "name": gpu["name"],
                "utilization_pct": gpu.get("utilization_pct"),
                "memory_used_mb": gpu["memory_used_mb"],
            }
        )
    return {"cpu_percent": float(cpu), "ram_used_mb": int(ram_used // MIB), "gpus": gpus}
