"""A worker's stdout and stderr, read as it prints (grading/sandbox/client.py reads one per worker)."""

from __future__ import annotations

import os
import threading


class OutputDrain(threading.Thread):
    """Reads the worker's stdout+stderr so it never blocks; counts bytes, keeps a short tail, and
    remembers every line that holds a watched secret (the canary), however much is printed."""

    MAX_LINE = 1 << 16   # a longer "line" is checked in pieces that overlap by the longest secret
    MAX_HITS = 200

    def __init__(self, fd: int, *, base_offset: int = 0, watch: tuple[str, ...] = (),
                 hits: list[tuple[int, str]] | None = None) -> None:
        super().__init__(daemon=True)
        self.fd = fd
        self.base_offset = base_offset
        self.total = 0
        self.tail = bytearray()
        self.lock = threading.Lock()
        self.watch = [w.encode() for w in watch if w]
        self.overlap = max((len(w) for w in self.watch), default=1) - 1
        self.hits = hits if hits is not None else []
        self._line = bytearray()

    def _check(self, piece: bytes, offset: int) -> None:
        if any(w in piece for w in self.watch) and len(self.hits) < self.MAX_HITS:
            self.hits.append((offset, piece.decode("utf-8", "replace")))

    def _scan(self, chunk: bytes, start: int) -> None:
        if not self.watch:
            return
        self._line += chunk
        while True:
            newline = self._line.find(b"\n")
            if newline < 0:
                break
            self._check(bytes(self._line[:newline]), start)
            del self._line[: newline + 1]
        if len(self._line) > self.MAX_LINE:
            self._check(bytes(self._line), start)
            del self._line[: len(self._line) - self.overlap]

    def run(self) -> None:
        while True:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            with self.lock:
                self._scan(chunk, self.base_offset + self.total)
                self.total += len(chunk)
                self.tail += chunk
                del self.tail[:-4096]
        if self._line:
            self._check(bytes(self._line), self.base_offset + self.total)
        os.close(self.fd)

    def snapshot(self) -> tuple[int, str]:
        with self.lock:
            return self.total, self.tail.decode("utf-8", "replace")
