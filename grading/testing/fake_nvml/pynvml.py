"""A fake ``pynvml`` (the ``nvidia-ml-py`` API) for testing GPU code on machines without a GPU.

Test-only: this folder is put first on ``sys.path`` (in the grader, and in the worker through
``INFERGRADE_EXTRA_SYSPATH``) only when the grader's environment sets ``INFERGRADE_FAKE_NVML``; see
``grading/testing/__init__.py``. What the fake reports is read from that variable at ``nvmlInit()``:

* a preset: ``mixed`` (one 24 GB GeForce RTX 4090 and two 80 GB A100s), ``small`` (one 8 GB
  GeForce RTX 3060 Ti), ``none`` (a driver, no GPU), ``nodriver`` (``nvmlInit`` fails as without a
  driver: ``NVMLError_DriverNotLoaded``);
* or JSON: a list of GPUs, or ``{"gpus": [...], "driver": "550.54.15", "cuda": 12040,
  "bytes_names": false}``; each GPU ``{"name", "memory_total_mb", "memory_used_mb",
  "utilization_pct"}`` (MiB; ``utilization_pct`` null: ``NVMLError_NotSupported``, as on MIG).

It behaves like the real module where a program can tell: calls before ``nvmlInit`` raise
``NVMLError_Uninitialized``, a bad index ``NVMLError_InvalidArgument``, ``nvmlInit``/``nvmlShutdown``
nest, memory is in bytes, names are ``str`` (``bytes`` with ``"bytes_names": true``, as pynvml < 11.5),
and an NVML function it does not implement raises ``NVMLError_FunctionNotFound``.
"""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

FAKE = True  # so a test can tell this module from the real one
ENV_VAR = "INFERGRADE_FAKE_NVML"
MIB = 2**20

NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_UNKNOWN = 999
NVML_TEMPERATURE_GPU = 0

_MESSAGES = {
    NVML_ERROR_UNINITIALIZED: "Uninitialized",
    NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
    NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
    NVML_ERROR_UNKNOWN: "Unknown Error",
}


class NVMLError(Exception):
    """As in nvidia-ml-py: ``NVMLError(code)`` is an instance of the code's subclass; ``.value`` is the code."""

    _valClassMapping: dict[int, type] = {}

    def __new__(cls, value: int):
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _MESSAGES.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NVMLError) and self.value == other.value

    __hash__ = Exception.__hash__


def _error_class(name: str, code: int) -> type:
    def new(cls: type, value: int = code) -> NVMLError:
        obj = Exception.__new__(cls)
        obj.value = code
        return obj

    def init(self: NVMLError, value: int = code) -> None:
        Exception.__init__(self, code)
        self.value = code

    cls = type(f"NVMLError_{name}", (NVMLError,), {"__new__": new, "__init__": init})
    NVMLError._valClassMapping[code] = cls
    return cls


NVMLError_Uninitialized = _error_class("Uninitialized", NVML_ERROR_UNINITIALIZED)
NVMLError_InvalidArgument = _error_class("InvalidArgument", NVML_ERROR_INVALID_ARGUMENT)
NVMLError_NotSupported = _error_class("NotSupported", NVML_ERROR_NOT_SUPPORTED)
NVMLError_NoPermission = _error_class("NoPermission", NVML_ERROR_NO_PERMISSION)
NVMLError_AlreadyInitialized = _error_class("AlreadyInitialized", NVML_ERROR_ALREADY_INITIALIZED)
NVMLError_NotFound = _error_class("NotFound", NVML_ERROR_NOT_FOUND)
NVMLError_DriverNotLoaded = _error_class("DriverNotLoaded", NVML_ERROR_DRIVER_NOT_LOADED)
NVMLError_LibraryNotFound = _error_class("LibraryNotFound", NVML_ERROR_LIBRARY_NOT_FOUND)
NVMLError_FunctionNotFound = _error_class("FunctionNotFound", NVML_ERROR_FUNCTION_NOT_FOUND)
NVMLError_Unknown = _error_class("Unknown", NVML_ERROR_UNKNOWN)


def _gpu(name: str, total_mb: float, used_mb: float, utilization: float | None) -> dict[str, Any]:
    return {"name": name, "memory_total_mb": total_mb, "memory_used_mb": used_mb, "utilization_pct": utilization}


PRESETS: dict[str, dict[str, Any]] = {
    # one 24 GB card and two 80 GB ones (MiB as nvidia-smi shows them): hardware class gpu_large
    "mixed": {"gpus": [_gpu("NVIDIA GeForce RTX 4090", 24564, 1024, 3),
                       _gpu("NVIDIA A100-SXM4-80GB", 81920, 40960, 87),
                       _gpu("NVIDIA A100-SXM4-80GB", 81920, 512, 0)]},
    # one 8 GB card: hardware class gpu_small
    "small": {"gpus": [_gpu("NVIDIA GeForce RTX 3060 Ti", 8192, 300, 12)]},
    "none": {"gpus": []},
    "nodriver": {"gpus": [], "nodriver": True},
}


def _config() -> dict[str, Any]:
    raw = os.environ.get(ENV_VAR, "").strip()
    if raw in PRESETS:
        config = dict(PRESETS[raw])
    else:
        try:
            config = json.loads(raw)
        except ValueError:
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND) from None
        if isinstance(config, list):
            config = {"gpus": config}
        if not isinstance(config, dict):
            raise NVMLError(NVML_ERROR_LIBRARY_NOT_FOUND)
    config.setdefault("gpus", [])
    config.setdefault("driver", "550.54.15")
    config.setdefault("cuda", 12040)
    return config


_state: dict[str, Any] = {"refs": 0, "config": None}


def _ready() -> dict[str, Any]:
    if _state["refs"] <= 0 or _state["config"] is None:
        raise NVMLError(NVML_ERROR_UNINITIALIZED)
    return _state["config"]


def _text(value: str) -> str | bytes:
    return value.encode() if _ready().get("bytes_names") else value


class _Handle:
    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<fake nvmlDevice {self.index}>"


def _device(handle: Any) -> dict[str, Any]:
    gpus = _ready()["gpus"]
    if not isinstance(handle, _Handle) or not 0 <= handle.index < len(gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return gpus[handle.index]


# -- initialisation ---------------------------------------------------------------------------------
def nvmlInit() -> None:
    config = _config()
    if config.get("nodriver"):
        raise NVMLError(NVML_ERROR_DRIVER_NOT_LOADED)
    _state["config"] = config
    _state["refs"] += 1


def nvmlInitWithFlags(flags: int) -> None:
    nvmlInit()


def nvmlShutdown() -> None:
    _ready()
    _state["refs"] -= 1
    if _state["refs"] == 0:
        _state["config"] = None


def nvmlErrorString(result: int) -> str:
    return _MESSAGES.get(result, f"NVML Error with code {result}")


# -- system ---------------------------------------------------------------------------------------
def nvmlSystemGetDriverVersion() -> str | bytes:
    return _text(str(_ready()["driver"]))


def nvmlSystemGetNVMLVersion() -> str | bytes:
    return _text("12." + str(_ready()["driver"]))


def nvmlSystemGetCudaDriverVersion() -> int:
    return int(_ready()["cuda"])


def nvmlSystemGetCudaDriverVersion_v2() -> int:
    return int(_ready()["cuda"])


# -- devices --------------------------------------------------------------------------------------
def nvmlDeviceGetCount() -> int:
    return len(_ready()["gpus"])


def nvmlDeviceGetHandleByIndex(index: int) -> _Handle:
    gpus = _ready()["gpus"]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(gpus):
        raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
    return _Handle(index)


def nvmlDeviceGetIndex(handle: Any) -> int:
    _device(handle)
    return handle.index


def nvmlDeviceGetName(handle: Any) -> str | bytes:
    return _text(str(_device(handle)["name"]))


def nvmlDeviceGetUUID(handle: Any) -> str | bytes:
    _device(handle)
    return _text(f"GPU-00000000-fake-4000-8000-{handle.index:012d}")


def nvmlDeviceGetMemoryInfo(handle: Any, version: int | None = None) -> SimpleNamespace:
    gpu = _device(handle)
    total = int(float(gpu["memory_total_mb"]) * MIB)
    used = int(float(gpu.get("memory_used_mb") or 0) * MIB)
    return SimpleNamespace(total=total, used=used, free=total - used, reserved=0, version=version)


def nvmlDeviceGetUtilizationRates(handle: Any) -> SimpleNamespace:
    gpu = _device(handle)
    if gpu.get("utilization_pct") is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    utilization = int(gpu["utilization_pct"])
    return SimpleNamespace(gpu=utilization, memory=min(100, utilization // 2))


def nvmlDeviceGetTemperature(handle: Any, sensor: int) -> int:
    _device(handle)
    return 45


def nvmlDeviceGetPowerUsage(handle: Any) -> int:
    gpu = _device(handle)
    return 60000 + 3000 * int(gpu.get("utilization_pct") or 0)  # milliwatts


def nvmlDeviceGetCudaComputeCapability(handle: Any) -> tuple[int, int]:
    name = str(_device(handle)["name"])
    return (8, 0) if "A100" in name else (9, 0) if "H100" in name else (8, 9) if "40" in name else (8, 6)


def nvmlDeviceGetComputeRunningProcesses(handle: Any) -> list:
    _device(handle)
    return []


def __getattr__(name: str) -> Any:
    """Any other NVML call exists but fails as an unsupported function would."""
    if name.startswith("nvml"):
        def unsupported(*args: Any, **kwargs: Any) -> Any:
            raise NVMLError(NVML_ERROR_FUNCTION_NOT_FOUND)

        unsupported.__name__ = name
        return unsupported
    raise AttributeError(f"module 'pynvml' (fake) has no attribute {name!r}")
