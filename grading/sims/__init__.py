"""Service simulators: the shared base (server, clock, seeds, faults, request log).

The HF router/providers, Ollama and vLLM-style simulators build on these::

    from grading.sims import SimServer, PacingClock, LatencyModel, FaultSchedule, RequestLog

Names are imported lazily (PEP 562), so ``grading.sims.seeds`` — used by
the canary and the CLI — does not pull in aiohttp.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SIM_KEY": "base",
    "SimServer": "base",
    "sim_of": "base",
    "LatencyModel": "clock",
    "PacingClock": "clock",
    "Fault": "faults",
    "FaultSchedule": "faults",
    "abort_connection": "faults",
    "apply": "faults",
    "RECORD_KEY": "log",
    "RequestLog": "log",
    "RequestRecord": "log",
    "log_middleware": "log",
    "record_of": "log",
    "derive_seed": "seeds",
    "resolve_seed": "seeds",
    "rng_for": "seeds",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
