"""Resource limits of a worker, set per checkpoint from the rubric file (never hard-coded in tests)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping


@dataclass(frozen=True)
class Limits:
    """Limits for one worker process and everything it starts.

    >>> Limits.from_data({"memory_mb": 2048, "call_timeout_s": 60}).memory_mb
    2048
    """

    call_timeout_s: float = 30.0        # wall clock per call; the process group is killed after it
    submission_timeout_s: float = 600.0  # total wall clock of all calls of one checkpoint's worker
    memory_mb: int = 1024                # cgroup memory limit (RLIMIT_AS fallback)
    cpu_s: int = 300                     # RLIMIT_CPU of the worker
    max_procs: int = 64                  # cgroup pids.max: processes and threads
    file_size_mb: int = 64               # RLIMIT_FSIZE: largest file the code may write
    disk_mb: int = 512                   # growth of the worker's own folder (grading/sandbox/diskwatch.py)
    output_bytes: int = 1_000_000        # stdout+stderr per call before the worker is stopped
    reply_bytes: int = 8_000_000         # size of one JSON reply
    startup_timeout_s: float = 20.0      # time for the worker to report ready

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None, base: "Limits | None" = None) -> "Limits":
        """Build limits from a rubric table; unknown keys are an error (a typo must not pass silently)."""
        base = base or cls()
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown limit(s) {unknown}; known: {sorted(known)}")
        return replace(base, **data)
