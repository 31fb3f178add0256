"""The grader's own reading of this machine: the ground truth of the ``hardware`` checkpoint.

:func:`detect_hardware` reads CPUs, RAM, GPUs (NVML), CUDA (torch, only where it is installed) and free
disk, and classifies the machine (``cpu``, ``gpu_small``, ``gpu_large``; grading/thresholds.toml keys
its per-class tolerances on that). :func:`memory_estimate_gb` is the formula students' estimates are
compared against. Units follow the lab contract: ``*_mb`` are MiB (2**20 bytes), ``*_gb`` are GB
(10**9 bytes).

Nothing here installs anything or raises on a machine without a GPU, a driver or torch: a missing
piece reads as "none" (``gpus == []``, ``cuda is None``).

Also here, for the checkpoint and ``doctor``: the chapter's hardware table and the real models it judges
estimates on (:func:`hardware_table`, ``grading/hardware_table.toml``), which of them fit this machine
(:func:`model_fit`), a bounded CPU load (:class:`CpuLoad`) and the machine's CPU use over a window
(:func:`cpu_busy_percent`).

Tests without a GPU: with ``INFERGRADE_FAKE_NVML`` set in the grader's environment (a preset such as
``mixed`` or a JSON list of GPUs; ``grading/testing/fake_nvml/pynvml.py``), NVML is read from that fake,
here and, through :func:`worker_env`, in the student's worker; the report's hardware says
``fake_nvml``. Never set it for real grading.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

MIB = 2**20
GB = 10**9
# A GPU with less memory than this (the largest one counts) makes the machine "gpu_small".
GPU_SMALL_LIMIT_MB = 12 * 1024
HARDWARE_CLASSES = ("cpu", "gpu_small", "gpu_large")
HARDWARE_TABLE = Path(__file__).resolve().parent / "hardware_table.toml"

# Test-only: a fake NVML (see the module's docstring).
FAKE_NVML_ENV = "INFERGRADE_FAKE_NVML"
FAKE_NVML_DIR = Path(__file__).resolve().parent / "testing" / "fake_nvml"
EXTRA_SYSPATH_ENV = "INFERGRADE_EXTRA_SYSPATH"   # read by grading/sandbox/worker.py (and notebooks.py)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


# -- the fake NVML, for tests --------------------------------------------------------------------------
def fake_nvml() -> str | None:
    """The fake NVML's setting when the grader's environment asks for one (tests only), else None."""
    return os.environ.get(FAKE_NVML_ENV, "").strip() or None


@lru_cache(maxsize=1)
def _load_fake_pynvml() -> Any:
    """``grading/testing/fake_nvml/pynvml.py`` as a private module (never ``sys.modules["pynvml"]``);
    it reads its GPUs from the environment at each ``nvmlInit``."""
    spec = importlib.util.spec_from_file_location("_infergrade_fake_pynvml", FAKE_NVML_DIR / "pynvml.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pynvml() -> Any:
    """The fake NVML under ``INFERGRADE_FAKE_NVML``, else the real ``pynvml`` (ImportError without it)."""
    if fake_nvml():
        return _load_fake_pynvml()
    import pynvml

    return pynvml


def worker_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a student's worker, plus, only while ``INFERGRADE_FAKE_NVML`` is set (tests), what
    makes the worker see the same fake GPUs as :func:`detect_hardware`: the setting itself and the fake's
    folder first on the worker's ``sys.path`` (``INFERGRADE_EXTRA_SYSPATH``, which the worker puts right
    after the submission, ahead of site-packages' real ``pynvml``). The folder is inside ``grading/``,
    which the sandbox keeps visible. Without the variable, ``env`` comes back unchanged."""
    setting = fake_nvml()
    if not setting:
        return dict(env)
    extra = [p for p in env.get(EXTRA_SYSPATH_ENV, "").split(os.pathsep) if p]
    # the worker inserts each entry at sys.path[1] in turn, so the last one listed ends up first
    paths = [p for p in extra if p != str(FAKE_NVML_DIR)] + [str(FAKE_NVML_DIR)]
    return {**env, FAKE_NVML_ENV: setting, EXTRA_SYSPATH_ENV: os.pathsep.join(paths)}


# -- GPUs ----------------------------------------------------------------------------------------------
def nvml_info() -> dict[str, Any]:
    """``{gpus, driver, cuda_driver}`` from NVML: driver and CUDA versions as strings, or None."""
    info: dict[str, Any] = {"gpus": [], "driver": None, "cuda_driver": None}
    try:
        pynvml = _pynvml()
    except Exception:  # noqa: BLE001 - nvidia-ml-py not installed
        return info
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no libnvidia-ml, no device nodes
        return info
    try:
        try:
            info["driver"] = _text(pynvml.nvmlSystemGetDriverVersion()).strip()
        except Exception:  # noqa: BLE001
            pass
        try:
            cuda = int(pynvml.nvmlSystemGetCudaDriverVersion())
            info["cuda_driver"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        except Exception:  # noqa: BLE001
            pass
        info["gpus"] = _read_gpus(pynvml)
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass
    return info


def nvml_gpus() -> list[dict[str, Any]]:
    """``[{name, memory_total_mb, memory_used_mb, utilization_pct}]`` from NVML; ``[]`` without a driver."""
    return nvml_info()["gpus"]


def _read_gpus(pynvml: Any) -> list[dict[str, Any]]:
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
    return gpus


def torch_cuda_available(gpu_present: bool, *, import_torch: bool = False) -> bool | None:
    """Whether torch can use a GPU here; None when torch is not installed (never installs it).

    By default this is read without importing torch, which costs a second of CPU and hundreds of MB
    in every grading run: a CUDA build of torch (its ``torch/version.py`` sets ``cuda``) and an NVIDIA
    GPU that NVML lists (``gpu_present``). ``import_torch=True`` (the ``doctor`` command) asks
    ``torch.cuda.is_available()`` itself, which also catches a driver too old for that build.
    """
    if "torch" not in sys.modules and importlib.util.find_spec("torch") is None:
        return None
    if not import_torch:
        build = torch_cuda_build()
        return None if build is None else bool(build) and gpu_present
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001 - a broken torch install is "no CUDA known"
        return None


def torch_cuda_build() -> str | None:
    """The CUDA version torch was built for ("" for a CPU build), read from ``torch/version.py``
    without importing torch; None when torch is missing or that file does not say."""
    import ast

    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.origin:
        return None
    try:
        tree = ast.parse((Path(spec.origin).parent / "version.py").read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in tree.body:  # "cuda = '12.1'" or "cuda: Optional[str] = None"
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign):
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name) and target.id == "cuda" and isinstance(node.value, ast.Constant):
            return node.value.value or ""
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


def detect_hardware(path: str | os.PathLike[str] | None = None, *, import_torch: bool = False) -> dict[str, Any]:
    """This machine: ``cpu_count`` (logical), ``cpu_count_usable`` (affinity), ``ram_total_mb``,
    ``ram_available_mb``, ``gpus``, ``nvidia_driver`` and ``cuda_driver`` (NVML's versions, or None),
    ``cuda`` (whether torch can use a GPU: :func:`torch_cuda_available`), ``hardware_class``, ``disk_free_gb`` (of ``path``, default the working folder) and
    ``platform``; plus ``fake_nvml`` (the setting) when the GPUs come from the test-only fake NVML.
    """
    memory = psutil.virtual_memory()
    nvml = nvml_info()
    gpus = nvml["gpus"]
    found = {
        "cpu_count": os.cpu_count() or psutil.cpu_count(logical=True),
        "cpu_count_usable": usable_cpu_count(),
        "ram_total_mb": round(memory.total / MIB, 1),
        "ram_available_mb": round(memory.available / MIB, 1),
        "gpus": [{k: gpu[k] for k in ("name", "memory_total_mb", "memory_used_mb")} for gpu in gpus],
        "nvidia_driver": nvml["driver"],
        "cuda_driver": nvml["cuda_driver"],
        "cuda": torch_cuda_available(bool(gpus) and not fake_nvml(), import_torch=import_torch),
        "hardware_class": hardware_class(gpus),
        "disk_free_gb": disk_free_gb(path),
        "platform": sys.platform,
    }
    if fake_nvml():
        found["fake_nvml"] = fake_nvml()  # a test run: the GPUs above are made up
    return found


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


# -- the chapter's hardware table and real models (grading/hardware_table.toml) ------------------------
@lru_cache(maxsize=4)
def hardware_table(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The table as data: ``requirements`` (minimum, recommended), ``estimate`` settings, ``models``
    (each with ``kv_width`` = n_kv_heads * head_dim added) and ``fits`` memory sizes."""
    data = tomllib.loads(Path(path or HARDWARE_TABLE).read_text(encoding="utf-8"))
    for model in data.get("models", []):
        model["kv_width"] = int(model["n_kv_heads"]) * int(model["head_dim"])
    return data


def model_estimate_kwargs(model: dict[str, Any], context_len: int, *, table: dict[str, Any] | None = None,
                          **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``estimate_memory_gb`` for one of the table's models at ``context_len``."""
    settings = (table or hardware_table())["estimate"]
    kwargs = {"context_len": int(context_len), "n_layers": int(model["n_layers"]),
              "hidden_size": int(model["kv_width"]), "kv_bits": settings["kv_bits"],
              "batch": settings["batch"], "overhead": settings["overhead"]}
    kwargs.update(overrides)
    return kwargs


def model_cases(table: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every (model, bits, context) of the table: ``{model, bits, context_len, args, kwargs, gb}``,
    ``gb`` by :func:`memory_estimate_gb` (the truth the checkpoint compares with)."""
    table = table or hardware_table()
    cases = []
    for model in table["models"]:
        for context in model["contexts"]:
            for bits in table["estimate"]["bits"]:
                args = (model["params_billion"], bits)
                kwargs = model_estimate_kwargs(model, context, table=table)
                cases.append({"model": model["name"], "size": model["size"], "bits": bits, "context_len": context,
                              "args": args, "kwargs": kwargs, "gb": memory_estimate_gb(*args, **kwargs)})
    return cases


def tensor_parallel_gb(gpus: list[dict[str, Any]]) -> tuple[int, float]:
    """The most GPU memory one model can use across GPUs with tensor parallelism: ``(n_gpus, GB)``.
    Tensor parallelism splits a model evenly, so k GPUs hold k times the smallest of them; the best k
    of the largest GPUs is taken. ``(0, 0.0)`` without a GPU."""
    sizes = sorted((float(g.get("memory_total_mb") or 0.0) * MIB / GB for g in gpus), reverse=True)
    best = (0, 0.0)
    for k in range(1, len(sizes) + 1):
        if k * sizes[k - 1] > best[1]:
            best = (k, k * sizes[k - 1])
    return best


def model_fit(hw: dict[str, Any], table: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """For each model of the table and each precision, at the table's doctor context: the estimate and
    where it fits on the machine ``hw`` (from :func:`detect_hardware`): ``"gpu"`` (the largest single GPU),
    ``"gpus"`` (several, with tensor parallelism), ``"ram"`` (CPU inference in RAM), or None.

    ``[{model, size, context_len, options: [{bits, gb, fits}]}]``."""
    table = table or hardware_table()
    gpus = hw.get("gpus") or []
    largest = max((float(g.get("memory_total_mb") or 0.0) * MIB / GB for g in gpus), default=0.0)
    n_parallel, parallel = tensor_parallel_gb(gpus)
    ram = float(hw.get("ram_total_mb") or 0.0) * MIB / GB
    rows = []
    for model in table["models"]:
        context = min(int(table["estimate"]["doctor_context"]), int(model["max_context"]))
        options = []
        for bits in table["estimate"]["bits"]:
            gb = memory_estimate_gb(model["params_billion"], bits, **model_estimate_kwargs(model, context, table=table))
            where = ("gpu" if gb <= largest else "gpus" if n_parallel > 1 and gb <= parallel
                     else "ram" if gb <= ram else None)
            options.append({"bits": bits, "gb": round(gb, 2), "fits": where})
        rows.append({"model": model["name"], "size": model["size"], "context_len": context, "options": options,
                     "gpus_parallel": n_parallel})
    return rows


# -- CPU use -------------------------------------------------------------------------------------------
def cpu_times() -> Any:
    """The machine's CPU times now (all CPUs together), for :func:`cpu_busy_percent`."""
    return psutil.cpu_times()


def _busy_total(times: Any) -> tuple[float, float]:
    # as psutil.cpu_percent: guest time is already inside user time; idle and iowait are not busy
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def cpu_busy_percent(before: Any, after: Any) -> float | None:
    """The machine's CPU use between two :func:`cpu_times` readings, 0..100 (all CPUs together, as
    ``psutil.cpu_percent()``); None when too little time passed to tell."""
    busy0, total0 = _busy_total(before)
    busy1, total1 = _busy_total(after)
    if total1 - total0 <= 0:
        return None
    return max(0.0, min(100.0, 100.0 * (busy1 - busy0) / (total1 - total0)))


_BURN = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass\n"


class CpuLoad:
    """A CPU-heavy run: busy loops on ``workers`` CPUs (default: every CPU this process may use), each
    of which stops by itself after ``seconds`` even if nobody stops it; leaving the ``with`` block stops
    them at once.

    >>> with CpuLoad(seconds=3):
    ...     ...  # the machine is busy here
    """

    def __init__(self, seconds: float = 5.0, workers: int | None = None) -> None:
        if seconds <= 0:
            raise ValueError("seconds must be positive")
        self.seconds = float(seconds)
        self.workers = max(1, workers or usable_cpu_count() or os.cpu_count() or 1)
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> "CpuLoad":
        try:
            for _ in range(self.workers):
                self.procs.append(subprocess.Popen([sys.executable, "-c", _BURN, str(self.seconds)],
                                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                   stderr=subprocess.DEVNULL))
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:  # pragma: no cover - a kill that did not take
                pass
        self.procs = []

    def wait_busy(self, timeout_s: float = 2.0) -> None:
        """Return once every loop has started (its interpreter is up and spinning), or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if all(psutil.Process(p.pid).cpu_times().user >= 0.05 for p in self.procs):
                    return
            except psutil.Error:
                return
            time.sleep(0.05)
