"""Manual grade adjustments, applied on top of what the checkpoints scored.

The CSV has a header with ``student_id``, ``target`` (also accepted: ``checkpoint`` or ``test``),
``points`` and ``reason``:

* target ``CHECKPOINT.TEST`` (e.g. ``analysis.use_cases_and_reasoning``): that test's score;
  a parametrized test's cases share the points in proportion to their maximum
* target ``CHECKPOINT`` (e.g. ``failover``): that checkpoint's score
* target ``total`` (or empty): the submission's total
* ``points``: ``7`` sets the score, ``+2`` / ``-1.5`` adjusts it. Test and checkpoint scores stay
  within 0 and their maximum; the total stays at or above 0 (extra credit may exceed the maximum).

Order: tests, then checkpoints, then the total. The graded report is kept as it was
(``graded.json``); the final report carries the adjusted scores and ``overrides`` (what was applied).

Usage::

    overrides = read_overrides(Path("overrides.csv"), load_rubric())
    final = apply_overrides(graded_report, overrides.get("12345", []))
"""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

from grading.rubric import Rubric
from grading.scoring import _checkpoint_status

__all__ = ["OverrideError", "read_overrides", "apply_overrides"]

_TARGET_COLUMNS = ("target", "checkpoint", "test")


class OverrideError(ValueError):
    """The overrides CSV is malformed or names something the rubric does not have."""


def _parse_points(text: str, where: str) -> tuple[str, float]:
    text = (text or "").strip()
    try:
        value = float(text)
    except ValueError:
        raise OverrideError(f"{where}: points {text!r} is not a number (write 7 to set, +2 or -1.5 to adjust)") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise OverrideError(f"{where}: points must be a finite number")
    return ("add" if text[:1] in "+-" else "set"), value


def _check_target(target: str, rubric: Rubric, where: str) -> None:
    if target == "total":
        return
    checkpoint_id, _, test = target.partition(".")
    try:
        checkpoint = rubric.checkpoint(checkpoint_id)
    except KeyError as exc:
        raise OverrideError(f"{where}: {exc.args[0]}") from None
    if test and checkpoint.test(test.split("[")[0]) is None:
        known = ", ".join(t.name for t in checkpoint.tests) or "none"
        raise OverrideError(f"{where}: checkpoint {checkpoint_id!r} has no test {test!r} (its tests: {known})")


def read_overrides(path: Path, rubric: Rubric) -> dict[str, list[dict[str, Any]]]:
    """``{student_id: [{target, mode, points, reason, line}]}``; ``OverrideError`` says what to fix."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise OverrideError(f"cannot read the overrides file {path}: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    reader.fieldnames = fields
    column = next((c for c in _TARGET_COLUMNS if c in fields), None)
    if "student_id" not in fields or "points" not in fields or column is None:
        raise OverrideError(f"{path}: the header must have student_id, target (or checkpoint/test), points "
                            f"and reason; found {', '.join(fields) or 'no header'}")
    result: dict[str, list[dict[str, Any]]] = {}
    for line_no, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        where = f"{path.name} line {line_no}"
        student = (row.get("student_id") or "").strip()
        if not student:
            raise OverrideError(f"{where}: student_id is empty")
        target = (row.get(column) or "").strip() or "total"
        _check_target(target, rubric, where)
        mode, points = _parse_points(row.get("points") or "", where)
        result.setdefault(student, []).append({"target": target, "mode": mode, "points": points,
                                               "reason": (row.get("reason") or "").strip(), "line": line_no})
    return result


def _adjust(current: float, mode: str, points: float, maximum: float | None) -> float:
    value = points if mode == "set" else current + points
    value = max(0.0, value)
    return min(value, maximum) if maximum is not None else value


def _apply_test(report: dict, override: dict) -> str | None:
    checkpoint_id, _, test = override["target"].partition(".")
    checkpoint = next((c for c in report.get("checkpoints", []) if c.get("id") == checkpoint_id), None)
    if checkpoint is None:
        return f"checkpoint {checkpoint_id!r} was not graded for this submission"
    cases = [t for t in checkpoint["tests"] if t["name"] == test] or \
            [t for t in checkpoint["tests"] if t["name"].split("[")[0] == test]
    if not cases:
        return f"test {test!r} was not graded for this submission"
    total_max = sum(t["max_score"] for t in cases) or 1.0
    current = sum(t["score"] for t in cases)
    wanted = _adjust(current, override["mode"], override["points"], total_max)
    for case in cases:
        before = case["score"]
        case["score"] = round(wanted * case["max_score"] / total_max, 6)
        if case["outcome"] == "pending" or case["score"] != before:
            case["outcome"] = "passed" if case["score"] >= case["max_score"] - 1e-9 else "failed"
        note = f"Adjusted by the instructor from {before:g} to {case['score']:g}"
        case["message"] = note + (f": {override['reason']}" if override["reason"] else "")
    checkpoint["score"] = round(sum(t["score"] for t in checkpoint["tests"]), 6)
    checkpoint["status"] = _checkpoint_status(checkpoint["score"], checkpoint["max_score"], checkpoint["tests"])
    return None


def _apply_checkpoint(report: dict, override: dict) -> str | None:
    checkpoint = next((c for c in report.get("checkpoints", []) if c.get("id") == override["target"]), None)
    if checkpoint is None:
        return f"checkpoint {override['target']!r} was not graded for this submission"
    checkpoint["score"] = round(_adjust(checkpoint["score"], override["mode"], override["points"],
                                        checkpoint["max_score"]), 6)
    checkpoint["status"] = _checkpoint_status(checkpoint["score"], checkpoint["max_score"], checkpoint["tests"])
    return None


def apply_overrides(report: dict[str, Any], overrides: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``report`` with ``overrides`` applied and listed under ``overrides``."""
    final = copy.deepcopy(report)
    if not overrides:
        return final
    applied = []
    order = {"test": 0, "checkpoint": 1, "total": 2}

    def kind(o: dict) -> str:
        return "total" if o["target"] == "total" else ("test" if "." in o["target"] else "checkpoint")

    for override in sorted(overrides, key=lambda o: (order[kind(o)], o["line"])):
        problem = None
        if kind(override) == "test":
            problem = _apply_test(final, override)
        elif kind(override) == "checkpoint":
            problem = _apply_checkpoint(final, override)
        if kind(override) != "total":
            final["score"] = round(sum(c["score"] for c in final.get("checkpoints", [])), 6) \
                if final.get("checkpoints") else final["score"]
        else:
            final["score"] = round(_adjust(final["score"], override["mode"], override["points"], None), 6)
        applied.append({"target": override["target"], "mode": override["mode"], "points": override["points"],
                        "reason": override["reason"], "applied": problem is None, "problem": problem})
    final["overrides"] = applied
    return final
