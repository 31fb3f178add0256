"""Which models are on disk and which are loaded: ``/api/tags``, ``/api/ps``, ``keep_alive``.

Ollama keeps a model in memory for ``keep_alive`` after each request (default 5 minutes; ``0``
unloads it at once, a negative value keeps it forever); the next request after that pays the load
again, visible as ``load_duration``. ``ModelStore`` is shared by the server's loop thread and the
grader's thread (control API), hence the lock.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .catalogue import DEFAULT_PRESENT, LIBRARY, ModelSpec, normalize_name

__all__ = ["ModelStore", "parse_keep_alive", "KeepAliveError", "iso_time", "DEFAULT_KEEP_ALIVE_S"]

DEFAULT_KEEP_ALIVE_S = 300.0
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


class KeepAliveError(ValueError):
    """A keep_alive that is neither a number nor a Go duration (Ollama answers 400)."""


def parse_keep_alive(value: Any) -> float | None:
    """Seconds to keep a model loaded; None = the default; ``inf`` for a negative value (forever).

    Numbers are seconds; strings are Go durations (``"5m"``, ``"1h30m"``, ``"-1"``) or plain numbers.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise KeepAliveError(f"time: invalid duration \"{value}\"")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            sign = -1.0 if text.startswith("-") else 1.0
            body = text.lstrip("+-")
            pos, total = 0, 0.0
            for m in _PART.finditer(body):
                if m.start() != pos:
                    break
                total += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if pos != len(body) or not body:
                raise KeepAliveError(f"time: invalid duration \"{text}\"") from None
            seconds = sign * total
    return float("inf") if seconds < 0 else seconds


def iso_time(wall: float) -> str:
    """RFC 3339 with nanoseconds and the local offset, as Ollama writes times."""
    dt = datetime.fromtimestamp(wall, tz=timezone.utc).astimezone()
    frac = f"{int((wall % 1) * 1e9):09d}"
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + frac + dt.strftime("%z")[:3] + ":" + dt.strftime("%z")[3:]


@dataclass
class Loaded:
    spec: ModelSpec
    expires_mono: float          # inf = forever
    expires_wall: float


class ModelStore:
    """Models on disk (``present``) and in memory (``loaded``)."""

    def __init__(self, library: dict[str, ModelSpec] | None = None,
                 present: tuple[str, ...] | list[str] = DEFAULT_PRESENT) -> None:
        self._lock = threading.Lock()
        self.library: dict[str, ModelSpec] = dict(library or LIBRARY)
        self.present: dict[str, tuple[ModelSpec, float]] = {}
        self.loaded: dict[str, Loaded] = {}
        now = time.time()
        for i, name in enumerate(present):
            spec = self.library[normalize_name(name)]
            self.present[spec.name] = (spec, now - 86400 * (14 + 3 * i))

    # -- disk ---------------------------------------------------------------------------------
    def get(self, name: str) -> ModelSpec | None:
        with self._lock:
            item = self.present.get(normalize_name(name))
        return None if item is None else item[0]

    def tags(self) -> list[tuple[ModelSpec, float]]:
        with self._lock:
            return sorted(self.present.values(), key=lambda item: -item[1])

    def add(self, spec: ModelSpec) -> None:
        with self._lock:
            self.library[spec.name] = spec
            self.present[spec.name] = (spec, time.time())

    def remove(self, name: str) -> bool:
        key = normalize_name(name)
        with self._lock:
            self.loaded.pop(key, None)
            return self.present.pop(key, None) is not None

    def copy(self, source: str, destination: str) -> bool:
        src, dst = normalize_name(source), normalize_name(destination)
        with self._lock:
            item = self.present.get(src)
            if item is None:
                return False
            spec = item[0].with_(name=dst)
            self.library.setdefault(dst, spec)
            self.present[dst] = (spec, time.time())
            return True

    def update(self, name: str, **changes: Any) -> ModelSpec:
        """Change a model's pacing or data (present or in the library)."""
        key = normalize_name(name)
        with self._lock:
            base = self.present[key][0] if key in self.present else self.library[key]
            spec = base.with_(**changes)
            self.library[key] = spec
            if key in self.present:
                self.present[key] = (spec, self.present[key][1])
            if key in self.loaded:
                self.loaded[key].spec = spec
            return spec

    # -- memory -------------------------------------------------------------------------------
    def is_loaded(self, name: str) -> bool:
        key = normalize_name(name)
        with self._lock:
            self._expire_locked()
            return key in self.loaded

    def mark_loaded(self, spec: ModelSpec, keep_alive_s: float | None) -> None:
        """Loaded now, until ``keep_alive_s`` from now (None: the default; 0: unload at once)."""
        keep = DEFAULT_KEEP_ALIVE_S if keep_alive_s is None else keep_alive_s
        with self._lock:
            if keep == 0:
                self.loaded.pop(spec.name, None)
                return
            mono = time.monotonic() + keep
            wall = time.time() + (keep if keep != float("inf") else 10 * 365 * 86400.0)
            self.loaded[spec.name] = Loaded(spec, mono, wall)

    def unload(self, name: str) -> None:
        with self._lock:
            self.loaded.pop(normalize_name(name), None)

    def running(self) -> list[Loaded]:
        with self._lock:
            self._expire_locked()
            return list(self.loaded.values())

    def _expire_locked(self) -> None:
        now = time.monotonic()
        for name in [n for n, item in self.loaded.items() if item.expires_mono <= now]:
            del self.loaded[name]
