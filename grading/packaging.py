"""Which files of this repository make up the grader, for the Gradescope zip and the student bundle.

Usage::

    files = grader_files(REPO_ROOT)                  # ["README.md", "checkpoints/test_auth.py", ...]
    digest = tree_hash(REPO_ROOT, files)             # "sha256:…" over names and contents
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["grader_files", "tree_hash", "SKIP_PARTS"]

SKIP_PARTS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ipynb_checkpoints"}
TOP_FILES = ("pyproject.toml", "README.md", "conftest.py")


def _walk(root: Path, folder: str) -> list[str]:
    base = root / folder
    found = []
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(root)
        if path.is_symlink() or not path.is_file() or SKIP_PARTS & set(rel.parts):
            continue
        if path.suffix in (".pyc", ".pyo") or path.name.startswith((".", "~")):
            continue
        found.append(rel.as_posix())
    return found


def grader_files(root: Path, *, checkpoints: bool = True) -> list[str]:
    """Relative POSIX paths of the grader: top-level files, ``grading/``, and ``checkpoints/``."""
    root = Path(root)
    files = [name for name in TOP_FILES if (root / name).is_file()]
    files += _walk(root, "grading")
    if checkpoints:
        files += _walk(root, "checkpoints")
    return files


def tree_hash(root: Path, files: list[str]) -> str:
    """sha256 over each file's name and bytes, in the given order (same as run_autograder's check)."""
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode("utf-8") + b"\x00" + (Path(root) / rel).read_bytes() + b"\x01")
    return "sha256:" + digest.hexdigest()
