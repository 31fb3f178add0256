"""The worker's private copy of a submission: what is copied, and what is left out and why.

A submission is untrusted data. Copying it must neither hang (a named pipe), nor carry a way out of
the submission into the worker (a symbolic link to a classmate's file, to the grader's files or to
``/etc/passwd``: bubblewrap shows the whole file system read-only, so such a link would be followed),
nor stop the grader (a path too long or too deep for the file system): the copy keeps regular files,
folders and links that stay inside the submission, drops everything else, and a copy that cannot be
made at all is one clear reason.

Usage::

    dropped = copy_submission(source, dest)   # ["inference_lab/x.py: a link to /etc/passwd", ...]
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from grading.sandbox import errors

__all__ = ["COPY_IGNORE", "copy_submission"]

COPY_IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".venv", "venv", ".ipynb_checkpoints")


def _special(path: str) -> str | None:
    """Why ``path`` is not copied (None: a regular file, a folder or a link)."""
    try:
        mode = os.lstat(path).st_mode
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device or other special file"


def copy_submission(source: Path, dest: Path) -> list[str]:
    """Copy ``source`` to ``dest`` (which must not exist); return what was left out, with the reason.

    Raises :class:`~grading.sandbox.errors.SandboxUnavailable` when it cannot be copied at all."""
    dropped: list[str] = []

    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = set(COPY_IGNORE(folder, names))
        for name in names:
            why = None if name in skip else _special(os.path.join(folder, name))
            if why is not None:
                skip.add(name)
                dropped.append(f"{os.path.relpath(os.path.join(folder, name), source)}: {why}")
        return skip

    try:
        shutil.copytree(source, dest, symlinks=True, ignore=ignore)
    except (OSError, shutil.Error) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)[:300]
        raise errors.SandboxUnavailable(
            f"the submission cannot be copied for grading ({reason}): remove very long or deeply nested "
            "paths, special files and unreadable files") from None
    root = Path(os.path.realpath(dest))
    for folder, dirnames, filenames in os.walk(dest):
        for name in dirnames + filenames:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                continue
            if not Path(os.path.realpath(path)).is_relative_to(root):
                link = os.readlink(path)
                os.unlink(path)
                dropped.append(f"{os.path.relpath(path, dest)}: a link out of the submission (to {link})")
    return dropped
