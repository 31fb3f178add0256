"""Sealed reports: the grader signs report.json with a key student code never sees, and checks the
signature before anything is scored or written.

``run_checkpoints`` (grading/commands/grade.py) makes a fresh key per run and hands it to its pytest
child through an inherited pipe (never the environment, which ``/proc/PID/environ`` shows to
processes of the same user, nor a file); the child's plugin reads it at start-up, before any worker
exists, and writes ``report.json.seal`` (HMAC-SHA256 of the report's bytes) next to the report. A
report that a submission wrote, replaced or edited fails :func:`verify` and is not scored.

Usage::

    key, read_fd = make_key_pipe()          # parent: pass_fds=(read_fd,), --seal-fd=read_fd
    key = read_key(fd)                      # child, once
    write_sealed(path, text, key)
    verify(path, key)                       # parent: raises SealError when it does not match
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["SealError", "make_key_pipe", "read_key", "seal_path", "verify", "write_sealed"]

KEY_BYTES = 32


class SealError(RuntimeError):
    """The report is missing its seal or does not match it: someone other than the grader wrote it."""


def seal_path(report: Path) -> Path:
    return report.with_name(report.name + ".seal")


def _mac(data: bytes, key: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def make_key_pipe() -> tuple[bytes, int]:
    """A fresh key, and the read end of a pipe that holds it (inheritable: give it to the child)."""
    key = secrets.token_bytes(KEY_BYTES)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, key)
    os.close(write_fd)
    os.set_inheritable(read_fd, True)
    return key, read_fd


def read_key(fd: int) -> bytes:
    """Read the key from the pipe ``fd`` and close it."""
    chunks = []
    try:
        while chunk := os.read(fd, KEY_BYTES):
            chunks.append(chunk)
    finally:
        os.close(fd)
    key = b"".join(chunks)
    if len(key) != KEY_BYTES:
        raise SealError(f"the seal key pipe gave {len(key)} bytes, not {KEY_BYTES}")
    return key


def write_sealed(path: Path, text: str, key: bytes) -> None:
    data = text.encode()
    path.write_bytes(data)
    seal_path(path).write_text(_mac(data, key))


def verify(path: Path, key: bytes) -> bytes:
    """The report's bytes, if its seal matches; else SealError saying what is wrong."""
    seal = seal_path(path)
    if not seal.exists():
        raise SealError(f"{path.name} has no seal: it was not written by this grading run")
    data = path.read_bytes()
    if not hmac.compare_digest(seal.read_text().strip(), _mac(data, key)):
        raise SealError(f"{path.name} does not match its seal: it was changed after the grader wrote it")
    return data
