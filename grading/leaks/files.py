"""Reading a submission's files as data: size-capped, binary detected, symbolic links never followed.

Also the runtime scan, :func:`scan_tree_for_secrets`: the exact secrets (the canary) in every file
student code wrote while it ran, text or binary.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Iterable, Iterator

from grading.leaks.matcher import MIN_EXTRA_SECRET_LEN, _Matcher, mask_secret
from grading.leaks.model import Leak, ScanResult
from grading.leaks.text import scan_text

MAX_FILE_BYTES = 5 * 2**20          # only the first 5 MiB of a file (or git blob) is scanned
MAX_FILES = 20_000                  # files read from the work tree (and from .git, not objects)
MAX_TOTAL_BYTES = 200 * 2**20       # bytes read from the work tree

DOTENV_NAMES = {".env", ".envrc"}
SOURCE_SUFFIXES = {".py", ".pyw", ".pyi", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd",
                   ".js", ".mjs", ".cjs", ".ts", ".r", ".jl", ".rb", ".go", ".rs", ".java", ".c",
                   ".cc", ".cpp", ".h", ".hpp", ".sql"}
SOURCE_NAMES = {"Dockerfile", "Makefile", "Procfile", "Containerfile"}
# Third-party code and caches, not the student's own: a virtual environment (any folder holding a
# pyvenv.cfg) is skipped too. Notebook checkpoints (.ipynb_checkpoints) are scanned: they keep outputs.
SKIPPED_DIRS = {"node_modules", "site-packages", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                ".tox", ".nox"}


# -- reading files as data -------------------------------------------------------------------------
def _decode(data: bytes) -> str | None:
    """Text from bytes, or None for binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _read_capped(path: Path, cap: int) -> tuple[bytes, bool] | None:
    """Read at most ``cap`` bytes of a regular file without following a symlink; (data, truncated)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(cap + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[:cap], len(data) > cap


def _kind_of(rel: Path) -> str:
    name = rel.name
    if name in DOTENV_NAMES or name.startswith(".env.") or name.endswith(".env"):
        return "dotenv"
    if rel.suffix.lower() in SOURCE_SUFFIXES or name in SOURCE_NAMES:
        return "source"
    return "file"


def _iter_files(root: Path, result: ScanResult) -> Iterator[tuple[Path, Path]]:
    """(absolute path, relative path) of every regular file under root, never following a link.

    ``.git`` folders are yielded separately by the caller (their objects are not text files).
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            full = here / name
            if full.is_symlink():
                result.notes.append(f"{full.relative_to(root)}: a symbolic link to a folder, not followed")
            elif name == ".git":
                continue
            elif name in SKIPPED_DIRS or (full / "pyvenv.cfg").is_file():
                result.notes.append(f"{full.relative_to(root)}: third-party packages or a cache, not scanned")
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = here / name
            if full.is_symlink():
                result.notes.append(f"{full.relative_to(root)}: a symbolic link, not followed")
                continue
            yield full, full.relative_to(root)


# -- runtime: what student code wrote ---------------------------------------------------------------
def scan_tree_for_secrets(root: Path, secrets: Iterable[str], *, skip: Iterable[Path] = (),
                          max_files: int = MAX_FILES, max_bytes: int = MAX_FILE_BYTES) -> ScanResult:
    """Every file under ``root`` holding one of ``secrets`` (exact strings, e.g. the canary).

    For the files student code wrote while it ran: every regular file, text or binary (a secret
    in a PNG text chunk or a pickle counts), read as bytes and searched for each secret in UTF-8 and
    UTF-16; text files report the line. Symbolic links are not followed; ``skip`` lists paths (files
    or folders) that are not looked at. Leaks are ``kind="file"`` with masked excerpts.
    """
    root = Path(root)
    result = ScanResult()
    wanted = [s for s in {str(x) for x in secrets} if len(s) >= MIN_EXTRA_SECRET_LEN]
    if not wanted or not root.is_dir():
        return result
    skipped = {Path(p).resolve() for p in skip}
    needles = [(s, s.encode("utf-8"), s.encode("utf-16-le")) for s in wanted]
    matcher = _Matcher(wanted)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not (here / d).is_symlink() and (here / d).resolve() not in skipped)
        for name in sorted(filenames):
            full = here / name
            if full.is_symlink() or full.resolve() in skipped:
                continue
            if result.files_scanned >= max_files:
                result.incomplete.append(f"more than {max_files} files; the rest were not scanned")
                return result
            got = _read_capped(full, max_bytes)
            if got is None:
                continue
            data, truncated = got
            result.files_scanned += 1
            if truncated:
                result.notes.append(f"{full.relative_to(root).as_posix()}: only its first "
                                    f"{max_bytes // 2**20} MiB were scanned")
            if not any(utf8 in data or utf16 in data for _, utf8, utf16 in needles):
                continue
            rel = full.relative_to(root).as_posix()
            text = _decode(data)
            found = scan_text(text, where=rel, kind="file", matcher=matcher) if text is not None else []
            if not found:  # binary, or only its UTF-16 form in a UTF-8 file: name the file
                hit = next(s for s, utf8, utf16 in needles if utf8 in data or utf16 in data)
                found = [Leak(where=rel, line=None, kind="file",
                              excerpt=f"(binary data holding {mask_secret(hit)})")]
            result.extend(found)
    return result
