"""Hardware detection, resource monitoring and "does this model fit" estimates.

Units: ``*_mb`` are MiB (2**20 bytes); ``*_gb`` are GB (10**9 bytes).
"""

from __future__ import annotations

__all__ = ["detect", "estimate_memory_gb", "fits", "sample_usage"]


def detect() -> dict:
    """``{"gpus": [{"name", "memory_total_mb", "memory_used_mb"}], "cpu_count", "ram_total_mb"}``.

    TODO: GPUs with NVML (``import pynvml`` from the ``nvidia-ml-py`` package: ``nvmlInit``,
    ``nvmlDeviceGetCount``, ``nvmlDeviceGetHandleByIndex``, ``nvmlDeviceGetName``,
    ``nvmlDeviceGetMemoryInfo``); guard the import and ``nvmlInit`` - without an NVIDIA GPU
    ``gpus`` is ``[]``. CPUs: ``psutil.cpu_count(logical=True)``. RAM:
    ``psutil.virtual_memory().total`` in MiB.
    """
    raise NotImplementedError("TODO: implement hardware.detect")


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
    """GB (10**9 bytes) needed to serve a model.

    TODO::

        weights  = params_billion * 1e9 * bits_per_weight / 8           (bits -> bytes)
        kv_cache = 2 * n_layers * context_len * hidden_size * kv_bits / 8 * batch   (K and V)
        return (weights + kv_cache) * overhead / 1e9

    Check: 7B at 16 bits with the default overhead 1.2 -> 16.8 GB.
    """
    raise NotImplementedError("TODO: implement hardware.estimate_memory_gb")


def fits(params_billion, bits_per_weight, memory_gb, **kw) -> bool:
    """TODO: ``estimate_memory_gb(params_billion, bits_per_weight, **kw) <= memory_gb``."""
    raise NotImplementedError("TODO: implement hardware.fits")


def sample_usage() -> dict:
    """One sample of resource use: ``{"cpu_percent", "ram_used_mb", "gpus": [{"utilization_pct",
    "memory_used_mb"}]}`` - call it repeatedly (e.g. from a thread) while a benchmark runs.

    TODO: ``psutil.cpu_percent(interval=0.1)``; RAM in use = total - available, in MiB; per GPU
    ``pynvml.nvmlDeviceGetUtilizationRates(h).gpu`` and the used memory in MiB (``[]`` without GPU).
    """
    raise NotImplementedError("TODO: implement hardware.sample_usage")
