"""The worker's wire: newline-delimited JSON over a dedicated pipe pair (never pickle, never stdout).

Student prints go to stdout/stderr, which are different pipes, so they can never corrupt a reply.
"""

from __future__ import annotations

import json
import os
import select
import time
from typing import Any


class RpcError(Exception):
    """The pipe closed, timed out or carried something that is not one JSON message."""


class RpcTimeout(RpcError):
    pass


class RpcClosed(RpcError):
    pass


class RpcTooLarge(RpcError):
    pass


def encode(message: Any) -> bytes:
    """One message as one line. ``allow_nan=False``: NaN is not JSON and not a measurement."""
    return json.dumps(message, allow_nan=False, separators=(",", ":")).encode() + b"\n"


def write_message(fd: int, message: Any) -> None:
    data = encode(message)
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class LineReader:
    """Reads one JSON line at a time from a file descriptor, with a deadline and a size cap."""

    def __init__(self, fd: int, max_bytes: int) -> None:
        self.fd = fd
        self.max_bytes = max_bytes
        self._buffer = bytearray()

    def read(self, timeout_s: float | None) -> Any:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                try:
                    return json.loads(line)
                except ValueError as exc:
                    raise RpcError(f"reply is not JSON: {exc}") from None
            if len(self._buffer) > self.max_bytes:
                raise RpcTooLarge(f"reply larger than {self.max_bytes} bytes")
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                raise RpcTimeout("no reply before the deadline")
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                raise RpcClosed("the worker closed its pipe")
            self._buffer += chunk
