"""What a scan finds: :class:`Leak` (one finding) and :class:`ScanResult` (the findings plus what
could not be checked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from grading.leaks.matcher import HF_RULE


@dataclass(frozen=True)
class Leak:
    """One token found somewhere it must not be.

    ``where``: a path relative to the submission (``inference_lab/auth.py``), or ``git:<commit>:<path>``
    / ``git:<object>`` for something found in the repository's objects. ``line``: 1-based line within
    the file, the cell's source or output, or the git object (None when not meaningful). ``cell``:
    the notebook cell's index (0-based), for notebook kinds. ``excerpt``: the line with every token
    masked.
    """

    where: str
    line: int | None
    kind: str  # source | notebook-source | notebook-output | dotenv | git-history | file
    excerpt: str
    cell: int | None = None
    rule: str = HF_RULE  # "hf-token", or the detect-secrets type ("AWS Access Key", ...)

    def describe(self) -> str:
        """One line for a student: where, what kind, and the masked excerpt."""
        place = self.where
        if self.cell is not None:
            place += f", cell {self.cell + 1}"
        if self.line is not None:
            place += f", line {self.line}"
        what = {
            "source": "in source code",
            "notebook-source": "in a notebook cell's source",
            "notebook-output": "in a notebook cell's saved output",
            "dotenv": "in a .env file handed in",
            "git-history": "in git history",
            "file": "in a file",
        }.get(self.kind, self.kind)
        if self.rule != HF_RULE:
            what = f"{self.rule}, {what}"
        return f"{place} ({what}): {self.excerpt}"


class ScanResult(list):
    """``list[Leak]`` plus what could not be checked.

    ``incomplete``: reasons something was not (fully) scanned — git missing or failing, a size cap
    reached. A scan with ``incomplete`` reasons and no leaks has *not* shown the absence of leaks.
    ``notes``: facts worth knowing that do not weaken the result (files skipped as binary, …).
    """

    def __init__(self, leaks: Iterable[Leak] = ()) -> None:
        super().__init__(leaks)
        self.incomplete: list[str] = []
        self.notes: list[str] = []
        self.git_checked: bool = False   # a repository was found and every object of it was read
        self.files_scanned: int = 0
        self.git_objects_scanned: int = 0

