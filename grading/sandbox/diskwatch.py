"""A disk budget for a worker's own folder, the one place it may write that lies on the grader's disk.

RLIMIT_FSIZE caps each file, not how many: student code can fill the disk with many files under the
cap. A quota would need a file system per worker; instead a thread measures the folder's growth a few
times a second and, past the budget, kills the worker (and everything it started) - bounded overshoot
(what can be written in one interval), no privileges needed, the same on every Linux.

Usage::

    watch = DiskWatch(folder, budget_mb=256, on_exceeded=kill_worker).start()
    ...
    watch.exceeded      # True once the budget was passed
    watch.stop()
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Callable

__all__ = ["DiskWatch", "folder_bytes"]

MAX_ENTRIES = 100_000     # more files than this is itself "too much" (and keeps one scan bounded)


def folder_bytes(folder: Path, max_entries: int = MAX_ENTRIES) -> tuple[int, int]:
    """(bytes allocated on disk, entries seen) under ``folder``, without following links; stops counting
    entries at ``max_entries``."""
    total, entries, stack = 0, 0, [str(folder)]
    while stack and entries < max_entries:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += info.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total, entries


class DiskWatch(threading.Thread):
    def __init__(self, folder: Path, budget_mb: int, on_exceeded: Callable[[], None],
                 interval_s: float = 0.2) -> None:
        super().__init__(daemon=True, name="infergrade-diskwatch")
        self.folder = Path(folder)
        self.budget = int(budget_mb) * 2**20
        self.on_exceeded = on_exceeded
        self.interval_s = interval_s
        self.baseline, _ = folder_bytes(self.folder)     # the submission copy itself does not count
        self.exceeded = False
        self._stopping = threading.Event()

    def start(self) -> "DiskWatch":   # type: ignore[override]
        super().start()
        return self

    def run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            used, entries = folder_bytes(self.folder)
            if used - self.baseline > self.budget or entries >= MAX_ENTRIES:
                self.exceeded = True
                self.on_exceeded()
                return

    def stop(self) -> None:
        self._stopping.set()
