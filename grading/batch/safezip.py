"""Extract a submission zip without trusting it: no path traversal, no links, no zip bombs.

Every entry name is checked before anything is written (absolute paths, ``..``, drive letters, NUL,
over-long names, a name given twice or as both a file and a folder: the whole zip is refused with the
reason). Symbolic-link entries are never created
(they are skipped and reported: a student's zipped ``.venv`` is full of them). Sizes are counted
while decompressing — the sizes a zip declares in its headers are not trusted — and extraction
stops at ``max_total_bytes`` / ``max_file_bytes`` / ``max_entries``.

Usage::

    from grading.batch.safezip import ZipLimits, UnsafeZipError, safe_extract

    try:
        notes = safe_extract(Path("doe_jane_12345.zip"), Path("work/doe_jane"))
    except UnsafeZipError as exc:
        print(f"0 points: {exc}")           # e.g. "unsafe path in the zip: '../../etc/passwd'"
"""

from __future__ import annotations

import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

__all__ = ["ZipLimits", "UnsafeZipError", "safe_extract", "check_names"]

CHUNK = 1 << 16
MAX_NAME_BYTES = 255      # one path component (ext4, APFS, NTFS)
MAX_PATH_CHARS = 1024


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 10_000
    max_total_bytes: int = 512 * 2**20
    max_file_bytes: int = 128 * 2**20


class UnsafeZipError(ValueError):
    """The zip cannot be extracted safely (the message says why and what to do)."""


def _member_path(name: str) -> PurePosixPath:
    """The relative path an entry would be written to, or ``UnsafeZipError``."""
    if "\x00" in name:
        raise UnsafeZipError(f"a file name in the zip contains a NUL byte: {name!r}")
    clean = name.replace("\\", "/")
    if len(clean) > MAX_PATH_CHARS:
        raise UnsafeZipError(f"a path in the zip is longer than {MAX_PATH_CHARS} characters: {clean[:80]!r}…")
    parts = [p for p in clean.split("/") if p not in ("", ".")]
    if clean.startswith("/") or (parts and len(parts[0]) == 2 and parts[0][1] == ":") or ".." in parts:
        raise UnsafeZipError(f"unsafe path in the zip: {name!r} (it points outside the submission); "
                             "zip the submission folder itself, with relative paths")
    for part in parts:
        if len(part.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise UnsafeZipError(f"a file name in the zip is longer than {MAX_NAME_BYTES} bytes: {part[:60]!r}…")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return info.create_system == 3 and stat.S_ISLNK(info.external_attr >> 16)


def check_names(archive: zipfile.ZipFile, limits: ZipLimits) -> list[zipfile.ZipInfo]:
    """All entries, every name validated; ``UnsafeZipError`` on the first bad one."""
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise UnsafeZipError(f"the zip has {len(infos)} entries (at most {limits.max_entries} are accepted); "
                             "leave out virtual environments, caches and data sets")
    files: dict[PurePosixPath, str] = {}      # path -> entry name, for the entries written as files
    folders: dict[PurePosixPath, str] = {}    # path -> the entry that makes it a folder
    for info in infos:
        rel = _member_path(info.filename)
        if rel == PurePosixPath(".") or _is_symlink(info):   # links are skipped, never created
            continue
        for parent in rel.parents[:-1]:
            if parent in files:
                raise UnsafeZipError(f"{files[parent]!r} is both a file and a folder in the zip "
                                     f"({info.filename!r} is inside it); re-create the zip from the folder")
            folders.setdefault(parent, info.filename)
        if info.is_dir():
            if rel in files:
                raise UnsafeZipError(f"{files[rel]!r} is both a file and a folder in the zip; "
                                     "re-create the zip from the folder")
            folders.setdefault(rel, info.filename)
        elif rel in files:
            # Tools disagree on which copy counts (a zip viewer shows the first, extraction keeps the last).
            raise UnsafeZipError(f"{str(rel)!r} is in the zip twice ({files[rel]!r} and {info.filename!r}); "
                                 "re-create the zip from the folder")
        elif rel in folders:
            raise UnsafeZipError(f"{str(rel)!r} is both a file and a folder in the zip ({info.filename!r} and "
                                 f"{folders[rel]!r}); re-create the zip from the folder")
        else:
            files[rel] = info.filename
    return infos


def _copy_capped(source, target, name: str, budget: int, limits: ZipLimits) -> int:
    written = 0
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            return written
        written += len(chunk)
        if written > limits.max_file_bytes:
            raise UnsafeZipError(f"{name!r} unpacks to more than {limits.max_file_bytes // 2**20} MiB "
                                 "(a zip bomb, or a file that does not belong in a submission)")
        if written > budget:
            raise UnsafeZipError(f"the zip unpacks to more than {limits.max_total_bytes // 2**20} MiB "
                                 "(a zip bomb, or data that does not belong in a submission)")
        target.write(chunk)


def safe_extract(zip_path: Path, dest: Path, limits: ZipLimits = ZipLimits()) -> list[str]:
    """Extract ``zip_path`` into ``dest`` (created; must not exist). Returns notes (skipped links).

    On ``UnsafeZipError`` (or a corrupt zip, reported as ``UnsafeZipError`` too) ``dest`` is removed.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=False)
    root = dest.resolve()
    notes: list[str] = []
    try:
        try:
            archive = zipfile.ZipFile(zip_path)
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise UnsafeZipError(f"not a readable zip file ({exc}); re-create it with a zip tool") from None
        with archive:
            infos = check_names(archive, limits)
            budget = limits.max_total_bytes
            for info in infos:
                rel = _member_path(info.filename)
                if _is_symlink(info):
                    notes.append(f"skipped symbolic link {str(rel)!r} (links are not extracted)")
                    continue
                target = root / rel
                if not target.resolve().is_relative_to(root):  # a directory created earlier is a link?
                    raise UnsafeZipError(f"unsafe path in the zip: {info.filename!r}")
                try:
                    if info.is_dir() or str(rel) == ".":
                        target.mkdir(parents=True, exist_ok=True)
                        continue
                    target.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:   # check_names refuses file/folder clashes; this is the backstop
                    raise UnsafeZipError(f"could not create the folder for {info.filename!r} "
                                         f"({exc.strerror or exc}); re-create the zip from the folder") from None
                try:
                    with archive.open(info) as source, open(target, "wb") as out:
                        budget -= _copy_capped(source, out, info.filename, budget, limits)
                except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
                    raise UnsafeZipError(f"could not unpack {info.filename!r} ({exc}); "
                                         "re-create the zip without encryption") from None
                except OSError as exc:
                    raise UnsafeZipError(f"could not write {info.filename!r} ({exc.strerror or exc}); "
                                         "use shorter, plain file names") from None
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return notes
