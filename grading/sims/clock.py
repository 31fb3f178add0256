"""Pacing and latency models shared by every simulator.

The simulators are the ground truth that student measurements are checked
against (TTFT, ITL, per-provider latency), so their pacing must be exact:
``PacingClock`` schedules against absolute deadlines, so ``N`` tokens at
ITL ``x`` take ``N·x`` in total instead of ``N·(x + overhead)``.

Usage (inside an aiohttp handler)::

    clock = PacingClock()
    t0 = clock.now()
    for i, token in enumerate(tokens):
        await clock.pace_until(t0 + ttft + i * itl)
        await response.write(chunk(token))

    model = LatencyModel.from_data({"kind": "normal", "mean_s": 0.2, "stdev_s": 0.05})
    delay = model.sample(rng_for(seed, "together", "latency"))
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = ["PacingClock", "LatencyModel"]


class PacingClock:
    """Monotonic clock with drift-free asynchronous pacing.

    ``time_fn`` must be the clock the event loop sleeps on (the default
    ``time.monotonic`` is asyncio's), or the deadlines and the sleeps
    would disagree.
    """

    def __init__(self, time_fn: Callable[[], float] = time.monotonic) -> None:
        self._time = time_fn

    def now(self) -> float:
        """Current monotonic time in seconds."""
        return self._time()

    async def pace_until(self, deadline: float) -> float:
        """Sleep until the monotonic time ``deadline``; return how late we woke.

        A deadline in the past returns at once (after yielding to the loop so
        a tight streaming loop never starves other connections).
        """
        remaining = deadline - self._time()
        if remaining <= 0:
            await asyncio.sleep(0)
        while remaining > 0:
            # asyncio may wake a timer a hair early; loop until really due.
            await asyncio.sleep(remaining)
            remaining = deadline - self._time()
        return self._time() - deadline

    async def sleep(self, seconds: float) -> float:
        """Sleep ``seconds`` measured from now; return how late we woke."""
        return await self.pace_until(self._time() + max(0.0, float(seconds)))

    def deadlines(self, start: float, first_s: float, interval_s: float, count: int) -> list[float]:
        """Absolute deadlines ``start + first_s + i·interval_s`` for ``i < count``.

        Computed from ``start`` every time (never by adding to the previous
        deadline) so rounding cannot accumulate either.
        """
        return [start + first_s + i * interval_s for i in range(count)]


_KINDS = ("constant", "normal", "lognormal")


@dataclass(frozen=True)
class LatencyModel:
    """A latency distribution described as data.

    ``{"kind": "constant", "mean_s": 0.1}``,
    ``{"kind": "normal", "mean_s": 0.2, "stdev_s": 0.05}`` (clamped to
    [0.3, 1.7]×mean like llm-d-inference-sim's ``RandomNormDuration``, so a
    sample is never negative nor absurdly long), or
    ``{"kind": "lognormal", "mean_s": 0.2, "stdev_s": 0.1}`` where mean and
    stdev are those of the latency itself, not of its logarithm.
    """

    kind: str = "constant"
    mean_s: float = 0.0
    stdev_s: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"latency kind must be one of {_KINDS}, not {self.kind!r}")
        if not (self.mean_s >= 0 and math.isfinite(self.mean_s)):
            raise ValueError(f"mean_s must be a finite number >= 0, not {self.mean_s!r}")
        if not (self.stdev_s >= 0 and math.isfinite(self.stdev_s)):
            raise ValueError(f"stdev_s must be a finite number >= 0, not {self.stdev_s!r}")

    @classmethod
    def from_data(cls, data: "LatencyModel | Mapping[str, Any] | float | int | None") -> "LatencyModel":
        """Build from a dict, a bare number (constant seconds) or None (zero)."""
        if isinstance(data, LatencyModel):
            return data
        if data is None:
            return cls()
        if isinstance(data, (int, float)) and not isinstance(data, bool):
            return cls("constant", float(data))
        if isinstance(data, Mapping):
            unknown = set(data) - {"kind", "mean_s", "stdev_s"}
            if unknown:
                raise ValueError(f"unknown latency keys: {sorted(unknown)}")
            return cls(
                kind=str(data.get("kind", "constant")),
                mean_s=float(data.get("mean_s", 0.0)),
                stdev_s=float(data.get("stdev_s", 0.0)),
            )
        raise TypeError(f"cannot build a LatencyModel from {type(data).__name__}")

    def to_data(self) -> dict[str, Any]:
        """The dict form, as recorded in reports."""
        return {"kind": self.kind, "mean_s": self.mean_s, "stdev_s": self.stdev_s}

    def sample(self, rng: random.Random) -> float:
        """Draw one latency in seconds from ``rng`` (always >= 0)."""
        if self.kind == "constant" or self.stdev_s == 0 or self.mean_s == 0:
            return self.mean_s
        if self.kind == "normal":
            value = rng.gauss(self.mean_s, self.stdev_s)
            return min(max(value, 0.3 * self.mean_s), 1.7 * self.mean_s)
        # lognormal: solve for the underlying normal's parameters so the
        # samples have the requested mean and stdev.
        sigma2 = math.log1p((self.stdev_s / self.mean_s) ** 2)
        mu = math.log(self.mean_s) - sigma2 / 2
        return rng.lognormvariate(mu, math.sqrt(sigma2))
