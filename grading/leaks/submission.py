"""``scan_submission(root)``: every place a token must never be in a submission (the ``auth``
checkpoint) — files, notebooks, ``.env`` files, git history — read as data, running nothing from it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from grading.leaks.files import (MAX_FILE_BYTES, MAX_FILES, MAX_STREAM_BYTES, MAX_TOTAL_BYTES, _decode, _iter_files,
                                 _kind_of, _read_scanning, _uncovered)
from grading.leaks.git import _scan_git, _scan_git_dir_files
from grading.leaks.matcher import _Matcher
from grading.leaks.model import Leak, ScanResult
from grading.leaks.notebooks import _scan_notebook
from grading.leaks.stream import ByteScanner
from grading.leaks.text import scan_text
from grading.safe_read import RefusedFile

MAX_LEAKS = 200                     # more than this is noise; the result says it stopped


# -- the scan --------------------------------------------------------------------------------------
def scan_submission(root: Path, *, extra_secrets: Iterable[str] = (), other_secrets: bool = True) -> ScanResult:
    """Every token in the submission at ``root``: files, notebooks, .env files and git history.

    Returns a :class:`ScanResult` (a ``list[Leak]``); check ``result.incomplete`` too — it lists what
    could not be checked (e.g. git is missing), which is not the same as "no leak". Leaks with
    ``rule == HF_RULE`` are Hugging Face tokens (or ``extra_secrets``); with ``other_secrets`` the
    other secrets detect-secrets finds are in the result too, with their type as ``rule``.
    """
    root = Path(root)
    result = ScanResult()
    if root.is_symlink() or not root.is_dir():
        result.incomplete.append(f"{root} is not a folder (or is a symbolic link); nothing was scanned")
        return result
    root = root.resolve()
    matcher = _Matcher(extra_secrets, other_secrets)
    total = 0        # bytes read as text
    streamed = 0     # bytes searched for tokens past each file's start
    binary = 0
    for full, rel in _iter_files(root, result):
        if result.files_scanned >= MAX_FILES:
            result.incomplete.append(f"more than {MAX_FILES} files; the rest were not scanned")
            break
        if total >= MAX_TOTAL_BYTES:
            result.incomplete.append(f"more than {MAX_TOTAL_BYTES // 2**20} MiB of files; the rest were "
                                     "not scanned")
            break
        where = rel.as_posix()
        # Every byte is searched for tokens (binary data, and past the start read as text, included);
        # the start of a text file is also read as text (lines, notebook cells, detect-secrets).
        scanner = ByteScanner(matcher)
        try:
            data, truncated, extra, complete = _read_scanning(full, root, MAX_FILE_BYTES, scanner,
                                                              MAX_STREAM_BYTES - streamed)
        except FileNotFoundError:
            continue
        except RefusedFile as exc:
            if exc.kind == "unreadable":        # it could hold a token: not "no leak"
                result.incomplete.append(f"{where} {exc.reason}")
            else:                               # a link or a special file holds no content of the submission
                result.notes.append(f"{where} {exc.reason}; not read")
            continue
        total += len(data)
        streamed += extra
        result.files_scanned += 1
        text = _decode(data)
        if text is None:
            binary += 1
        else:
            if truncated:
                result.notes.append(f"{where}: larger than {MAX_FILE_BYTES // 2**20} MiB; its start was read as "
                                    "text, all of it was searched for Hugging Face tokens")
            if rel.suffix.lower() == ".ipynb":
                result.extend(_scan_notebook(text, where, matcher))
            else:
                result.extend(scan_text(text, where=where, kind=_kind_of(rel), matcher=matcher))
        for hit in _uncovered(scanner.hits, text, matcher):
            result.append(Leak(where=where, line=hit.line, kind=_kind_of(rel), excerpt=hit.excerpt))
        if not complete:
            result.incomplete.append(f"{where}: more than {MAX_STREAM_BYTES // 2**30} GiB of files to search; "
                                     "the end of this one and the files after it were not searched")
            break
        if len(result) > MAX_LEAKS:
            break
    if binary:
        result.notes.append(f"{binary} binary file(s) not read as text (every byte of them was searched for "
                            "Hugging Face tokens)")

    git_dirs = []
    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if ".git" in dirnames:
            candidate = here / ".git"
            if candidate.is_symlink():
                result.notes.append(f"{candidate.relative_to(root)}: a symbolic link, not followed")
            else:
                git_dirs.append(candidate)
        dirnames[:] = [d for d in dirnames if d != ".git" and not (here / d).is_symlink()]
        if len(git_dirs) >= 5:
            break
    dotgit_file = root / ".git"
    if dotgit_file.is_file() and not dotgit_file.is_symlink():
        result.notes.append(".git is a file (a worktree or submodule pointer); its repository lies "
                            "outside the submission and was not read")
    checked = []
    for git_dir in git_dirs:
        _scan_git_dir_files(root, git_dir, matcher, result)
        checked.append(_scan_git(root, git_dir, matcher, result))
    result.git_checked = bool(checked) and all(checked)
    if len(result) > MAX_LEAKS:
        del result[MAX_LEAKS:]
        result.notes.append(f"stopped after {MAX_LEAKS} findings")
    return result
