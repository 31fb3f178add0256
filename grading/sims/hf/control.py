"""Per-provider behaviour of the HF simulator: latencies, failure rates, scripted faults.

The grader's thread changes it (``set_behavior``, ``script``, ``reset``) while
the server's loop reads it, so every access takes the lock. Every random draw
comes from a stream named by (seed, provider, purpose): a provider's latencies
do not shift when requests to another provider interleave differently.

Usage::

    ctl = Controller(catalogue, seed=7)
    ctl.set_behavior("together", latency={"kind": "constant", "mean_s": 0.2}, failure_rate=0.1)
    ctl.script("together", [{"kind": "status", "status": 429, "headers": {"Retry-After": "1"}}, "ok"])
    fault = ctl.next_fault("together")       # scripted step, else a seeded random failure, else OK
    seconds = ctl.sample("together", "latency")   # before time_scale
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Iterable

from ..clock import LatencyModel
from ..faults import OK, Fault
from ..seeds import rng_for

__all__ = ["Behavior", "Controller", "DEFAULT_FAILURE"]

DEFAULT_FAILURE = Fault("status", status=503)
_KINDS = ("latency", "image_latency", "ttft", "itl")


@dataclass(frozen=True)
class Behavior:
    """One provider's behaviour (latencies before ``time_scale``)."""

    latency: LatencyModel
    image_latency: LatencyModel
    ttft: LatencyModel
    itl: LatencyModel
    failure_rate: float = 0.0
    failure: Fault = DEFAULT_FAILURE
    role_chunk_at: float = 0.5

    @classmethod
    def from_catalogue(cls, entry: dict[str, Any]) -> "Behavior":
        return cls(
            latency=LatencyModel.from_data(entry.get("latency")),
            image_latency=LatencyModel.from_data(entry.get("image_latency", entry.get("latency"))),
            ttft=LatencyModel.from_data(entry.get("ttft")),
            itl=LatencyModel.from_data(entry.get("itl")),
            failure_rate=float(entry.get("failure_rate", 0.0)),
            failure=Fault.from_data(entry["failure"]) if entry.get("failure") is not None else DEFAULT_FAILURE,
            role_chunk_at=min(1.0, max(0.0, float(entry.get("role_chunk_at", 0.5)))),
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_data(),
            "image_latency": self.image_latency.to_data(),
            "ttft": self.ttft.to_data(),
            "itl": self.itl.to_data(),
            "failure_rate": self.failure_rate,
            "failure": self.failure.to_data(),
            "role_chunk_at": self.role_chunk_at,
        }


class Controller:
    """Behaviours, overrides, scripts and random streams of every provider."""

    def __init__(self, catalogue: dict[str, Any], seed: int) -> None:
        self._catalogue = catalogue
        self._seed = int(seed)
        self._lock = threading.RLock()
        self._base = {name: Behavior.from_catalogue(p) for name, p in catalogue["providers"].items()}
        self._current = dict(self._base)
        self._scripts: dict[str, deque[Fault]] = {}
        self._rngs: dict[tuple[str, str], Any] = {}

    # -- control (grader thread) ---------------------------------------------------
    def behavior(self, provider: str) -> Behavior:
        """The provider's behaviour now (KeyError for a provider the catalogue lacks)."""
        with self._lock:
            if provider not in self._current:
                raise KeyError(f"unknown provider {provider!r}; known: {', '.join(sorted(self._current))}")
            return self._current[provider]

    def set_behavior(self, provider: str, *, latency: Any = None, failure_rate: float | None = None,
                     failure: Any = None, ttft: Any = None, itl: Any = None,
                     image_latency: Any = None, role_chunk_at: float | None = None) -> Behavior:
        """Override parts of one provider's behaviour; return the new behaviour.

        ``latency`` applies to every non-streamed request (chat and images)
        unless ``image_latency`` is given too.
        """
        with self._lock:
            b = self.behavior(provider)
            changes: dict[str, Any] = {}
            if latency is not None:
                changes["latency"] = LatencyModel.from_data(latency)
                changes["image_latency"] = changes["latency"]
            if image_latency is not None:
                changes["image_latency"] = LatencyModel.from_data(image_latency)
            if ttft is not None:
                changes["ttft"] = LatencyModel.from_data(ttft)
            if itl is not None:
                changes["itl"] = LatencyModel.from_data(itl)
            if failure_rate is not None:
                rate = float(failure_rate)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError("failure_rate must be within [0, 1]")
                changes["failure_rate"] = rate
            if failure is not None:
                changes["failure"] = Fault.from_data(failure)
            if role_chunk_at is not None:
                changes["role_chunk_at"] = min(1.0, max(0.0, float(role_chunk_at)))
            self._current[provider] = replace(b, **changes)
            return self._current[provider]

    def script(self, provider: str, faults: Iterable[Any]) -> None:
        """Replace the provider's script: one fault per request, in order, then normal behaviour."""
        if isinstance(faults, (str, int, dict, Fault)):
            faults = [faults]
        items = deque(Fault.from_data(f) for f in faults)
        with self._lock:
            if provider != "hub":
                self.behavior(provider)  # validates the name
            self._scripts[provider] = items

    def remaining(self, provider: str) -> int:
        """Scripted steps not yet consumed."""
        with self._lock:
            return len(self._scripts.get(provider, ()))

    def reset(self) -> None:
        """Catalogue behaviour back, scripts cleared (random streams go on)."""
        with self._lock:
            self._current = dict(self._base)
            self._scripts.clear()

    # -- per request (server loop) -------------------------------------------------
    def _rng(self, provider: str, purpose: str) -> Any:
        key = (provider, purpose)
        rng = self._rngs.get(key)
        if rng is None:
            rng = self._rngs[key] = rng_for(self._seed, "hf", provider, purpose)
        return rng

    def next_fault(self, provider: str) -> Fault:
        """The next scripted fault, else a seeded random failure, else OK."""
        with self._lock:
            script = self._scripts.get(provider)
            if script:
                return script.popleft()
            if provider == "hub":
                return OK
            b = self.behavior(provider)
            if b.failure_rate > 0 and self._rng(provider, "failures").random() < b.failure_rate:
                return b.failure
            return OK

    def sample(self, provider: str, kind: str) -> float:
        """One draw of ``kind`` ("latency", "image_latency", "ttft", "itl"), before time_scale."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}")
        with self._lock:
            model: LatencyModel = getattr(self.behavior(provider), kind)
            return model.sample(self._rng(provider, kind))

    def samples(self, provider: str, kind: str, count: int) -> list[float]:
        """``count`` draws at once (a stream's inter-token latencies)."""
        with self._lock:
            model: LatencyModel = getattr(self.behavior(provider), kind)
            rng = self._rng(provider, kind)
            return [model.sample(rng) for _ in range(count)]

    def rng(self, provider: str, purpose: str) -> Any:
        """A named random stream (ids, image seeds); use under the caller's own discipline."""
        with self._lock:
            return self._rng(provider, purpose)
