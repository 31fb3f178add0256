"""Reading a submission's files as data: regular files only (grading/safe_read.py), symbolic links never
followed, the start of each read as text (size-capped, binary detected) and every byte of it searched
for tokens (:mod:`.stream`).

Also the runtime scan, :func:`scan_tree_for_secrets`: the exact secrets (the canary) in every file
student code wrote while it ran, text or binary, every byte of it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

from grading.leaks.matcher import MIN_EXTRA_SECRET_LEN, _Matcher, _secrets_in, mask_secret
from grading.leaks.model import Leak, ScanResult
from grading.leaks.stream import CHUNK_BYTES, ByteScanner, covered
from grading.leaks.text import scan_text
from grading.safe_read import RefusedFile, open_regular, read_capped

MAX_FILE_BYTES = 5 * 2**20          # the first 5 MiB of a file (or git blob) is read as text
MAX_FILES = 20_000                  # files read from the work tree (and from .git, not objects)
MAX_TOTAL_BYTES = 200 * 2**20       # bytes read from the work tree as text
MAX_STREAM_BYTES = 2 * 2**30        # bytes searched for tokens past each file's first MAX_FILE_BYTES

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
    """At most ``cap`` bytes of a regular file, never through a symlink; (data, truncated), or None."""
    try:
        return read_capped(path, cap)
    except (RefusedFile, OSError):
        return None


def _read_scanning(path: Path, root: Path, cap: int, scanner: ByteScanner,
                   budget: int) -> tuple[bytes, bool, int, bool]:
    """The first ``cap`` bytes of the regular file ``path`` (under ``root``, no link on the way), every
    byte of it fed to ``scanner`` (at most ``budget`` past the first ``cap``).

    Returns (data, truncated, bytes searched past ``cap``, complete: False when the budget ran out).
    Raises :class:`~grading.safe_read.RefusedFile` or ``FileNotFoundError``.
    """
    streamed, complete = 0, True
    with open_regular(path, root=root) as handle:
        try:
            data = handle.read(cap + 1)
            scanner.feed(data)
            while len(data) > cap:
                chunk = handle.read(CHUNK_BYTES)
                if not chunk:
                    break
                if streamed + len(chunk) > budget:
                    scanner.feed(chunk[:max(0, budget - streamed)])
                    streamed, complete = budget, False
                    break
                scanner.feed(chunk)
                streamed += len(chunk)
        except OSError as exc:
            raise RefusedFile("unreadable", f"could not be read ({exc.strerror or exc})") from None
    scanner.finish()
    return data[:cap], len(data) > cap, streamed, complete


def _read_or_note(path: Path, root: Path, where: str, cap: int, scanner: ByteScanner,
                  result: ScanResult) -> bytes | None:
    """:func:`_read_scanning` with a budget of ``MAX_STREAM_BYTES``, what it could not do noted in ``result``.

    Returns the file's first ``cap`` bytes, or None when the file is gone or refused (an unreadable one
    makes ``result`` incomplete; a link or a special file is passed over). A file whose end was not
    searched makes ``result`` incomplete too. ``where`` names the file in those notes.
    """
    try:
        data, _, _, complete = _read_scanning(path, root, cap, scanner, MAX_STREAM_BYTES)
    except FileNotFoundError:
        return None
    except RefusedFile as exc:
        if exc.kind == "unreadable":
            result.incomplete.append(f"{where} {exc.reason}")
        return None
    if not complete:
        result.incomplete.append(f"{where}: larger than {MAX_STREAM_BYTES // 2**30} GiB; its end was not "
                                 "searched")
    return data


def _uncovered(hits: list, text: str | None, matcher: _Matcher) -> list:
    """The byte scan's hits that the text scan of ``text`` (the file's start, read as text) did not see."""
    if not hits:
        return []
    known = _secrets_in(text, matcher) if text is not None else set()
    return [hit for hit in hits if not covered(hit.secret, known)]


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
            rel = full.relative_to(root).as_posix()
            scanner = ByteScanner(matcher, token_shape=False)
            data = _read_or_note(full, root, rel, max_bytes, scanner, result)
            if data is None:
                continue
            result.files_scanned += 1
            if not scanner.hits:
                continue
            text = _decode(data)
            found = scan_text(text, where=rel, kind="file", matcher=matcher) if text is not None else []
            for hit in _uncovered(scanner.hits, text, matcher):
                # binary data, only its UTF-16 form in a UTF-8 file, or past the start read as text
                if text is None or hit.line is None:
                    found.append(Leak(where=rel, line=None, kind="file",
                                      excerpt=f"(binary data holding {mask_secret(hit.secret)})"))
                else:
                    found.append(Leak(where=rel, line=hit.line, kind="file", excerpt=hit.excerpt))
            result.extend(found)
    return result
