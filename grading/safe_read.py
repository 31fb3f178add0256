"""Reading a submission's files in the grader's own process: regular files only, size-capped.

Everything the grader reads itself from a submission (``results/*.json`` and ``REPORT.md`` for
``analysis``, every file the token scan reads, the image a student's code saved, a record written in
the worker's folder) is data a student controls, so it goes through here:

* never through a symbolic link — not the file itself, and (with ``root``) not a folder between
  ``root`` and it: each component is opened with ``O_NOFOLLOW`` relative to the one before, so a link
  to the grader's own ``reference/`` or to ``/dev/zero`` is refused, not read as the student's;
* only a regular file: a named pipe (FIFO) would block the read for ever, a device never end; the
  file is ``lstat``-ed before it is opened (a special file is never even opened), opened with
  ``O_NONBLOCK``, and ``fstat`` must show the same regular file;
* at most ``limit`` bytes: a larger file is refused (:func:`read_regular`) or read in part
  (:func:`read_capped`), never loaded whole.

A refusal raises :class:`RefusedFile`, whose ``reason`` completes a sentence that starts with the
file's name: ``f"results/ollama-c1.json {exc.reason}"`` reads "results/ollama-c1.json is a named
pipe (FIFO), not a regular file". A missing file raises :class:`FileNotFoundError`.
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

FILE_FLAGS = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
              | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))
DIR_FLAGS = (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
             | getattr(os, "O_CLOEXEC", 0))


class RefusedFile(Exception):
    """A file the grader will not (or could not) read. ``kind``: ``link``, ``special``, ``too-large``
    or ``unreadable``; ``reason``: words that follow the file's name."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def describe_mode(mode: int) -> tuple[str, str]:
    """(kind, reason) for a file that is not a regular file."""
    if stat.S_ISLNK(mode):
        return "link", ("is a symbolic link, not a regular file (links are not followed: hand in the file "
                        "itself)")
    if stat.S_ISFIFO(mode):
        return "special", "is a named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "special", "is a socket (a special file), not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "special", "is a device (a special file), not a regular file"
    if stat.S_ISDIR(mode):
        return "special", "is a folder, not a regular file"
    return "special", "is a special file, not a regular file"


def _size(n: int) -> str:
    if n >= 2**20:
        return f"{n / 2**20:.0f} MiB" if n % 2**20 == 0 else f"{n / 2**20:.1f} MiB"
    if n >= 2**10:
        return f"{n / 2**10:.0f} KiB"
    return f"{n} bytes"


def _unreadable(exc: OSError) -> RefusedFile:
    if isinstance(exc, PermissionError):
        return RefusedFile("unreadable", "could not be read (permission denied)")
    return RefusedFile("unreadable", f"could not be read ({exc.strerror or exc})")


def _parent_fd(path: Path, root: Path | None) -> tuple[int | None, str]:
    """(fd of the folder holding ``path``, or None to use ``path`` as given; the last component)."""
    if root is None:
        return None, str(path)
    root = Path(root)
    rel = Path(path)
    if rel.is_absolute():
        try:
            rel = rel.relative_to(root)
        except ValueError:
            raise RefusedFile("special", f"is outside the folder it must be in ({root})") from None
    parts = rel.parts
    if not parts or any(part in ("", ".", "..") for part in parts):
        raise RefusedFile("special", "is not a plain path inside its folder")
    try:
        fd = os.open(root, DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))   # the root is the grader's choice
    except OSError as exc:
        raise _unreadable(exc) from None
    try:
        for part in parts[:-1]:
            try:
                info = os.stat(part, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                raise
            except OSError as exc:
                raise _unreadable(exc) from None
            if stat.S_ISLNK(info.st_mode):
                raise RefusedFile("link", f"is in a folder that is a symbolic link ({part}/): links are not "
                                          "followed")
            if not stat.S_ISDIR(info.st_mode):
                raise FileNotFoundError(f"{part} is not a folder")
            try:
                inner = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _unreadable(exc) from None
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd, parts[-1]


def open_regular_fd(path: Path | str, *, root: Path | None = None) -> int:
    """An fd open for reading on ``path``, a regular file that is not a link (nor, with ``root``, inside
    a linked folder between ``root`` and it). Raises :class:`RefusedFile` or ``FileNotFoundError``."""
    dir_fd, name = _parent_fd(Path(path), root)
    try:
        try:
            before = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise _unreadable(exc) from None
        if not stat.S_ISREG(before.st_mode):
            raise RefusedFile(*describe_mode(before.st_mode))
        try:
            fd = os.open(name, FILE_FLAGS, dir_fd=dir_fd)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EMLINK):   # it became a link after the lstat (EMLINK: BSDs)
                raise RefusedFile(*describe_mode(stat.S_IFLNK)) from None
            raise _unreadable(exc) from None
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode) or (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            os.close(fd)
            raise RefusedFile("special", "changed while the grader opened it; not read")
        return fd
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


@contextmanager
def open_regular(path: Path | str, *, root: Path | None = None) -> Iterator[BinaryIO]:
    """:func:`open_regular_fd` as a binary file object (closed on exit)."""
    fd = open_regular_fd(path, root=root)
    handle = os.fdopen(fd, "rb")
    try:
        yield handle
    finally:
        handle.close()


def read_capped(path: Path | str, cap: int, *, root: Path | None = None) -> tuple[bytes, bool]:
    """(the first ``cap`` bytes of a regular file, whether there was more)."""
    with open_regular(path, root=root) as handle:
        try:
            data = handle.read(cap + 1)
        except OSError as exc:
            raise _unreadable(exc) from None
    return data[:cap], len(data) > cap


def read_regular(path: Path | str, limit: int, *, root: Path | None = None) -> bytes:
    """A whole regular file of at most ``limit`` bytes; a larger one is refused (``kind="too-large"``)."""
    data, more = read_capped(path, limit, root=root)
    if more:
        raise RefusedFile("too-large", f"is larger than {_size(limit)}, more than the grader reads for it")
    return data


def read_regular_text(path: Path | str, limit: int, *, root: Path | None = None) -> str:
    """:func:`read_regular` decoded as UTF-8 (undecodable bytes replaced)."""
    return read_regular(path, limit, root=root).decode("utf-8", errors="replace")
