"""``grades.csv`` for a whole batch: one row per submission, one column per checkpoint.

Columns: ``student_id, submission, score, max_score, <checkpoint ids...>, status, duration_s``.
``status`` is ``ok`` or ``error: <why>``. A checkpoint that was not graded is left empty.
Text cells that a spreadsheet would run as a formula (starting with ``= + - @``, tab or
carriage return) get a leading apostrophe (OWASP "CSV injection"). The file is written
atomically, so an interrupted batch never leaves a half-written CSV.

Usage::

    from grading.reports.csv_report import write_grades_csv

    rows = [dict(report, student_id="s123") for report in reports]
    write_grades_csv(rows, out / "grades.csv", ["auth", "hf_chat", "failover"])
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from .json_report import atomic_write_text
from .schema import one_line

__all__ = ["write_grades_csv", "safe_cell"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    """A text cell that spreadsheets show as text, never evaluate.

    >>> safe_cell('=HYPERLINK("http://evil")'), safe_cell("alice")
    ('\\'=HYPERLINK("http://evil")', 'alice')
    """
    text = "" if value is None else one_line(value, 1000)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _number(value: Any) -> float | str:
    """A real number for numeric columns, '' when missing or not a number."""
    if isinstance(value, bool) or value is None:
        return ""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    return round(number, 4) if number == number and abs(number) != float("inf") else ""


def _row(report: dict, checkpoint_ids: list[str]) -> list[Any]:
    by_id = {cp.get("id"): cp for cp in report.get("checkpoints", []) if isinstance(cp, dict)}
    error = report.get("error")
    status = f"error: {one_line(error, 500)}" if error else "ok"
    return [
        safe_cell(report.get("student_id", "")),
        safe_cell(report.get("submission", "")),
        _number(report.get("score")),
        _number(report.get("max_score")),
        *(_number(by_id[cid].get("score")) if cid in by_id else "" for cid in checkpoint_ids),
        safe_cell(status),
        _number(report.get("duration_s")),
    ]


def write_grades_csv(rows: list[dict], path: Path, checkpoint_ids: list[str]) -> None:
    """Write one CSV row per report dict (optionally carrying ``student_id``) to ``path``.

    >>> write_grades_csv([report], Path("grades.csv"), ["auth"])  # doctest: +SKIP
    """
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    header = ["student_id", "submission", "score", "max_score"]
    header += [safe_cell(cid) for cid in checkpoint_ids] + ["status", "duration_s"]
    writer.writerow(header)
    for report in rows:
        writer.writerow(_row(report, checkpoint_ids))
    atomic_write_text(Path(path), buffer.getvalue())
