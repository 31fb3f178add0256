"""Grading one submission of a batch: the unit of work every executor runs.

``grade_one(task)`` takes and returns plain JSON-able dicts, so a thread of the local pool and a Ray
task on another machine run exactly the same code. It never raises: anything that stops grading
(a bad zip, no package, a run past the deadline, a grader crash) becomes an error report scoring 0
with the reason. The pytest child that ``run_checkpoints`` starts is the submission's own sandbox
and services; nothing is shared between submissions.

Task keys: ``key, student_id, source, kind, seed, tier, only, isolation, official, timeout_s, work``,
``hide`` (folders the workers must not see: the batch's sources and outputs).
Result keys: ``key, report`` (the report dict, pre-override), ``log`` (pytest's output), ``notes``,
``grader_version``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from grading import __version__

__all__ = ["grade_one", "error_report"]


def error_report(task: dict[str, Any], reason: str, duration_s: float = 0.0) -> dict[str, Any]:
    """A schema-valid report for a submission that could not be graded: 0 points and why."""
    from grading.rubric import load_rubric

    try:
        max_score = sum(c.points for c in load_rubric().select(_only_list(task.get("only"))))
    except (KeyError, ValueError, OSError):
        max_score = 0.0
    return {"submission": Path(task["source"]).name, "tier": task.get("tier", "sim"), "score": 0.0,
            "max_score": max_score, "duration_s": round(max(duration_s, 0.0), 3), "hardware": None,
            "isolation": "none (grading did not run)", "seed": task.get("seed"), "grader_version": __version__,
            "error": reason, "student_id": task["student_id"], "checkpoints": []}


def _only_list(only: str | None) -> list[str] | None:
    return [p.strip() for p in only.split(",") if p.strip()] if only else None


def grade_one(task: dict[str, Any]) -> dict[str, Any]:
    from grading.batch.discovery import BatchSourceError, find_submission_root
    from grading.batch.safezip import UnsafeZipError, safe_extract
    from grading.commands.grade import run_checkpoints

    started = time.monotonic()
    work = Path(task["work"])
    work.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f"{task['key'][:40]}-", dir=work))
    notes: list[str] = []
    log = ""
    try:
        source = Path(task["source"])
        if task["kind"] == "zip":
            notes += safe_extract(source, scratch / "unzipped")
            folder = scratch / "unzipped"
        else:
            if not source.is_dir():
                raise BatchSourceError(f"{source} is gone (moved or deleted since the batch started)")
            folder = source
        root = find_submission_root(folder)
        log_path = scratch / "pytest.log"
        report = run_checkpoints(root, out_json=scratch / "report.json", tier=task["tier"], seed=task["seed"],
                                 only=task.get("only"), isolation=task.get("isolation", "auto"),
                                 official=bool(task.get("official")), quiet=True, log_path=log_path,
                                 timeout_s=task.get("timeout_s"), hidden_paths=task.get("hide"))
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        report["submission"] = source.name
        report["student_id"] = task["student_id"]
        report["duration_s"] = round(time.monotonic() - started, 3)
    except (UnsafeZipError, BatchSourceError) as exc:
        report = error_report(task, str(exc), time.monotonic() - started)
    except RuntimeError as exc:
        first, _, rest = str(exc).partition("\n")
        log = rest
        report = error_report(task, first, time.monotonic() - started)
    except Exception as exc:  # the grader's own bug: this submission's row says so, the batch goes on
        log = traceback.format_exc()
        report = error_report(task, f"grader error ({type(exc).__name__}: {exc})", time.monotonic() - started)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"key": task["key"], "report": report, "log": log, "notes": notes, "grader_version": __version__}
