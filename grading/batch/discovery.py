"""Find the submissions in a batch source and name each one by its student.

A source is a folder of submission folders, a folder of zips, or an LMS export zip holding either.
Student ids come from the names LMS exports use:

* Canvas ``doejane_12345_67890_lab.zip`` / ``doe_jane_LATE_12345_…`` -> id ``12345``, name ``doe_jane``
* Moodle ``Jane Doe_12345_assignsubmission_file_`` -> id ``12345``, name ``Jane Doe``
* Gradescope ``submission_987654/`` with ``submission_metadata.yml`` -> the submitters' ``:sid:``
* anything else: the file or folder name itself

Usage::

    subs, notes = discover(Path("export.zip"), work=Path("out/.work"))
    subs[0].key, subs[0].student_id, subs[0].kind, subs[0].content_hash
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grading.batch.safezip import UnsafeZipError, ZipLimits, safe_extract

__all__ = ["Submission", "BatchSourceError", "discover", "content_hash", "find_submission_root",
           "parse_student", "read_gradescope_metadata"]

PACKAGE = "inference_lab"
IGNORED = {"__MACOSX", "submission_metadata.yml", ".DS_Store", "Thumbs.db"}
_GRADESCOPE = re.compile(r"^submission_\d+$")
_LMS = re.compile(r"^(?P<name>.+?)_(?:LATE_)?(?P<id>\d{3,})(?:_|$)", re.IGNORECASE)


class BatchSourceError(ValueError):
    """The batch source cannot be read as a set of submissions (the message says what to fix)."""


@dataclass(frozen=True)
class Submission:
    key: str            # unique, file-system safe: the folder name under out/submissions/
    student_id: str
    name: str           # display name when the export gives one ("" otherwise)
    source: str         # path of the folder or zip
    kind: str           # "dir" | "zip"
    content_hash: str


def parse_student(stem: str) -> tuple[str, str]:
    """``(student_id, display_name)`` from an export's file or folder name.

    >>> parse_student("doe_jane_12345_67890_lab")
    ('12345', 'doe_jane')
    >>> parse_student("Jane Doe_12345_assignsubmission_file_")
    ('12345', 'Jane Doe')
    >>> parse_student("alice")
    ('alice', '')
    """
    match = _LMS.match(stem)
    if match and not _GRADESCOPE.match(stem):
        return match["id"], match["name"].strip()
    return stem, ""


def _safe_key(text: str) -> str:
    key = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:80]
    return key or "submission"


def read_gradescope_metadata(path: Path) -> dict[str, tuple[str, str]]:
    """``{"submission_123": (sid, name)}`` from Gradescope's ``submission_metadata.yml``.

    Read with a small line parser (the file uses Ruby-symbol keys such as ``:sid:``), so PyYAML is not
    needed. A group submission's sids are joined with ``+``.
    """
    found: dict[str, tuple[list[str], list[str]]] = {}
    current = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        head = re.match(r"^(submission_\d+):\s*$", line)
        if head:
            current = found.setdefault(head[1], ([], []))
            continue
        field = re.match(r"^\s*-?\s*:(sid|name):\s*['\"]?(.*?)['\"]?\s*$", line)
        if current is not None and field and field[2]:
            current[0 if field[1] == "sid" else 1].append(field[2])
    return {key: ("+".join(sids), ", ".join(names)) for key, (sids, names) in found.items() if sids}


def content_hash(path: Path) -> str:
    """sha256 of a zip's bytes, or of a folder's names, link targets and file contents (links not followed)."""
    digest = hashlib.sha256()
    path = Path(path)
    if path.is_file():
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return "sha256:" + digest.hexdigest()
    for folder, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]):
            full = os.path.join(folder, name)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            digest.update(rel.encode("utf-8", "surrogateescape") + b"\x00")
            if os.path.islink(full):
                digest.update(b"link:" + os.readlink(full).encode("utf-8", "surrogateescape"))
            elif os.path.isfile(full):
                with open(full, "rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
            digest.update(b"\x01")
    return "sha256:" + digest.hexdigest()


def find_submission_root(folder: Path, depth: int = 3) -> Path:
    """The folder holding ``inference_lab/``: the folder itself, or (zipped with a wrapper folder) below it."""
    folder = Path(folder)
    if (folder / PACKAGE).is_dir() and not (folder / PACKAGE).is_symlink():
        return folder
    if depth > 0:
        children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()
                          and p.name not in IGNORED and not p.name.startswith("."))
        for child in children:
            try:
                return find_submission_root(child, depth - 1)
            except BatchSourceError:
                continue
    raise BatchSourceError(f"no {PACKAGE}/ package found in the submission; it must have the shape of "
                           f"student_template/ ({PACKAGE}/, the notebooks, REPORT.md, results/)")


def _entries(folder: Path) -> list[Path]:
    entries = []
    for entry in sorted(folder.iterdir()):
        if entry.name in IGNORED or entry.name.startswith("."):
            continue
        if entry.is_dir() or (entry.is_file() and entry.suffix.lower() == ".zip"):
            entries.append(entry)
    return entries


def _export_folder(export: Path, work: Path) -> Path:
    """Extract an export zip once into ``work`` (keyed by its hash) and return the folder."""
    digest = content_hash(export).split(":")[1][:16]
    target = work / f"export-{digest}"
    if target.is_dir():
        return target
    staging = work / f".export-{digest}-{secrets.token_hex(4)}"
    work.mkdir(parents=True, exist_ok=True)
    try:
        # an export of a whole class is bigger than one submission
        safe_extract(export, staging, ZipLimits(max_entries=200_000, max_total_bytes=16 * 2**30,
                                                max_file_bytes=1 * 2**30))
    except UnsafeZipError as exc:
        raise BatchSourceError(f"cannot open the export {export.name}: {exc}") from None
    os.replace(staging, target)
    return target


def discover(src: Path, *, work: Path) -> tuple[list[Submission], list[str]]:
    """The submissions in ``src`` (sorted by key) and notes about what was skipped or renamed."""
    src = Path(src)
    notes: list[str] = []
    if not src.exists():
        raise BatchSourceError(f"{src} does not exist; give a folder of submissions or an export zip")
    if src.is_file() and not zip_like(src):
        raise BatchSourceError(f"{src} is a file but not a zip; give a folder of submissions or an export zip")
    folder = _export_folder(src, work) if src.is_file() else src
    entries = _entries(folder)
    if len(entries) == 1 and entries[0].is_dir() and not (entries[0] / PACKAGE).exists() \
            and not (folder / "submission_metadata.yml").exists():
        folder, entries = entries[0], _entries(entries[0])          # export zip with one wrapper folder
    if (folder / PACKAGE).is_dir():
        raise BatchSourceError(f"{folder} looks like one submission (it has {PACKAGE}/): grade it with "
                               "'python -m grading grade', or put submissions in a folder, one per student")
    metadata = {}
    if (folder / "submission_metadata.yml").is_file():
        metadata = read_gradescope_metadata(folder / "submission_metadata.yml")
    skipped = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() != ".zip"
                     and p.name not in IGNORED and not p.name.startswith("."))
    if skipped:
        notes.append(f"ignored {len(skipped)} file(s) that are neither folders nor zips: {', '.join(skipped[:5])}")
    submissions, seen = [], set()
    for entry in entries:
        stem = entry.name[:-4] if entry.is_file() else entry.name
        student_id, name = metadata.get(stem) or parse_student(stem)
        key = _safe_key(student_id)
        if key in seen:
            n = 2
            while f"{key}-{n}" in seen:
                n += 1
            notes.append(f"two submissions for student {student_id!r}: {entry.name} is graded as {key}-{n}")
            key = f"{key}-{n}"
        seen.add(key)
        submissions.append(Submission(key=key, student_id=student_id, name=name, source=str(entry.resolve()),
                                      kind="dir" if entry.is_dir() else "zip", content_hash=content_hash(entry)))
    if not submissions:
        raise BatchSourceError(f"no submissions in {src}: expected one folder or .zip per student")
    return sorted(submissions, key=lambda s: s.key), notes


def zip_like(path: Path) -> bool:
    return zipfile.is_zipfile(path)
