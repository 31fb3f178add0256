"""Forking a child that must never return into its parent's code: the zygote's workers, the kernel
forker and its kernels (grading/sandbox/zygote.py, kernel_forker.py)."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, Iterator


def fork_child(body: Callable[[], None]) -> int:
    """Fork; the child runs ``body`` and exits (``SystemExit``'s code, 1 on any other exception, which is
    printed on its stderr, else 0) without ever returning here. Returns the child's pid to the parent."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid != 0:
        return pid
    code = 0
    try:
        body()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - said on stderr; the parent reports the exit status
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    return 0   # pragma: no cover - never reached


def exit_status(wait_status: int) -> int:
    """A wait status as subprocess reports it: -signal, or the exit code."""
    if os.WIFSIGNALED(wait_status):
        return -os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status) if os.WIFEXITED(wait_status) else -1


def ended_children() -> Iterator[tuple[int, int]]:
    """``(pid, status)`` of each child that has ended, reaped without waiting for the others."""
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, exit_status(wait_status)
