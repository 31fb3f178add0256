"""Hardware facts, memory estimates and usage samples, written without psutil where Linux allows.

CPU counts come from the scheduler's affinity mask, memory and CPU time from /proc, GPUs from NVML
(pynvml) with ``nvidia-smi`` as a fallback. Units: ``*_mb`` MiB, ``*_gb`` 10**9 bytes.
"""

import os
import shutil
import subprocess
import time

KIB_PER_MIB = 1024
BYTES_PER_GB = 1e9


# ---------------------------------------------------------------------------------------- memory
def _meminfo():
    """/proc/meminfo as {field: kB}; {} where there is no /proc (macOS, Windows)."""
    fields = {}
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    fields[key] = int(parts[0])
    except OSError:
        return {}
    return fields


def _ram_total_mib():
    info = _meminfo()
    if "MemTotal" in info:
        return info["MemTotal"] / KIB_PER_MIB
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        import psutil

        return psutil.virtual_memory().total / 2**20


def _ram_used_mib():
    info = _meminfo()
    if "MemTotal" in info and "MemAvailable" in info:
        return (info["MemTotal"] - info["MemAvailable"]) / KIB_PER_MIB
    import psutil

    vm = psutil.virtual_memory()
    return (vm.total - vm.available) / 2**20


# ------------------------------------------------------------------------------------------- cpu
def _cpus():
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _cpu_times():
    """(busy, total) jiffies of all CPUs together, from the first line of /proc/stat."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # guest time is already inside user/nice
    return total - idle, total


def _cpu_percent(window_s=0.2):
    try:
        busy0, total0 = _cpu_times()
        time.sleep(window_s)
        busy1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        import psutil

        return float(psutil.cpu_percent(interval=window_s))
    elapsed = total1 - total0
    return 0.0 if elapsed <= 0 else round(100.0 * (busy1 - busy0) / elapsed, 1)


# ------------------------------------------------------------------------------------------- gpu
def _gpus_from_nvml():
    import pynvml  # ImportError: caller falls back

    pynvml.nvmlInit()
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            dev = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(dev)
            mem = pynvml.nvmlDeviceGetMemoryInfo(dev)
            try:
                util = pynvml.nvmlDeviceGetUtilizationRates(dev).gpu
            except pynvml.NVMLError:
                util = None
            found.append((name.decode() if isinstance(name, bytes) else name,
                          mem.total / 2**20, mem.used / 2**20, util))
        return found
    finally:
        pynvml.nvmlShutdown()


def _gpus_from_smi():
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    out = subprocess.run([exe, "--query-gpu=name,memory.total,memory.used,utilization.gpu",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
    if out.returncode != 0:
        return []
    found = []
    for row in out.stdout.strip().splitlines():
        name, total, used, util = [c.strip() for c in row.split(",")]
        found.append((name, float(total), float(used), float(util) if util.replace(".", "").isdigit() else None))
    return found


def _gpus():
    try:
        return _gpus_from_nvml()
    except Exception:  # no pynvml, no driver, no device nodes
        pass
    try:
        return _gpus_from_smi()
    except Exception:
        return []


# ------------------------------------------------------------------------------------- contract
def detect():
    return {
        "cpu_count": _cpus(),
        "ram_total_mb": round(_ram_total_mib(), 2),
        "gpus": [{"name": n, "memory_total_mb": round(t, 2), "memory_used_mb": round(u, 2)}
                 for n, t, u, _ in _gpus()],
    }


def estimate_memory_gb(params_billion, bits_per_weight, *, context_len=0, n_layers=0, hidden_size=0,
                       kv_bits=16, batch=1, overhead=1.2):
    bytes_per_weight = bits_per_weight / 8
    weight_bytes = params_billion * 1e9 * bytes_per_weight
    # one K and one V vector of hidden_size values per layer per token, per sequence in the batch
    kv_bytes_per_token = 2 * n_layers * hidden_size * (kv_bits / 8)
    kv_bytes = kv_bytes_per_token * context_len * batch
    return overhead * (weight_bytes + kv_bytes) / BYTES_PER_GB


def fits(params_billion, bits_per_weight, memory_gb, **kw):
    needed = estimate_memory_gb(params_billion, bits_per_weight, **kw)
    return not needed > memory_gb


def sample_usage():
    return {
        "cpu_percent": _cpu_percent(),
        "ram_used_mb": round(_ram_used_mib(), 1),
        "gpus": [{"utilization_pct": util, "memory_used_mb": round(u, 1)} for _, _, u, util in _gpus()],
    }
