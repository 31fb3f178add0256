"""Gradescope ``results.json`` (gradescope/autograder_samples ``docs/specs.md``).

Top level: ``score`` (the report's score; it overrides Gradescope's sum of tests),
``execution_time`` (seconds, a number), a short Markdown ``output`` per checkpoint,
``visibility`` "visible", ``stdout_visibility`` "hidden", ``extra_data`` and one entry in
``tests`` per report test. Test output uses ``output_format`` "text" so student text is
never interpreted as markup. Visibility maps 1:1 (visible/hidden/after_due_date).

The top-level ``output`` is always visible to students, so it only counts points of
*visible* tests; hidden and after-due-date tests are mentioned by their points alone.

Usage::

    from grading.reports.gradescope import to_gradescope, failure_results
    from grading.reports.json_report import atomic_write_text, to_json

    try:
        results = to_gradescope(report)
    except Exception as exc:             # grading itself failed
        results = failure_results(f"{type(exc).__name__}: {exc}", execution_time=elapsed)
    atomic_write_text(Path("/autograder/results/results.json"), to_json(results))
"""

from __future__ import annotations

from typing import Any

from .markdown import fmt_points, md_escape
from .schema import clean_text, truncate

__all__ = ["to_gradescope", "failure_results"]

OUTPUT_LIMIT = 20_000  # characters of one test's output
_VISIBILITY = {"visible": "visible", "hidden": "hidden", "after_due_date": "after_due_date"}
FAILED_NAME = "Autograder failed"
FAILED_HINT = "The autograder could not grade this submission. Please tell your instructor."


def _num(value: Any, default: float = 0.0) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def _failure_test(reason: str) -> dict:
    return {
        "name": FAILED_NAME,
        "name_format": "text",
        "score": 0.0,
        "max_score": 0.0,
        "status": "failed",
        "output": truncate(f"{FAILED_HINT}\n\nReason: {clean_text(reason).strip()}", OUTPUT_LIMIT),
        "output_format": "text",
        "visibility": "visible",
    }


def _test_output(test: dict) -> str:
    outcome = test.get("outcome")
    message = clean_text(test.get("message", "")).strip()
    if outcome == "passed":
        return ""
    if outcome == "pending":
        extra = "" if message.lower().rstrip(".") in ("", "pending manual review") else f"\n\n{message}"
        message = "Pending manual review" + extra
    elif not message:
        message = {"skipped": "Skipped", "error": "Error while running this test"}.get(str(outcome), "Failed")
    return truncate(message, OUTPUT_LIMIT)


def _test(cp: dict, index: str, test: dict) -> dict:
    what = clean_text(test.get("description") or test.get("name") or "").strip()
    return {
        "name": " ".join(f"{clean_text(cp.get('title', ''))}: {what}".split()),
        "name_format": "text",
        "number": index,
        "score": _num(test.get("score")),
        "max_score": _num(test.get("max_score")),
        "status": "passed" if test.get("outcome") == "passed" else "failed",
        "output": _test_output(test),
        "output_format": "text",
        "tags": [str(cp.get("id", ""))],
        "visibility": _VISIBILITY.get(str(test.get("visibility")), "hidden"),
        "extra_data": {"test": str(test.get("name", "")), "outcome": str(test.get("outcome", ""))},
    }


def _summary(report: dict) -> str:
    lines = [
        f"**{md_escape(report.get('submission', ''))}** · tier `{md_escape(report.get('tier', ''))}`"
        + (f" · seed {md_escape(report['seed'])}" if report.get("seed") is not None else ""),
        "",
    ]
    if report.get("error"):
        lines += [f"**Grading could not run:** {md_escape(report['error'], 1000)}", ""]
    checkpoints = report.get("checkpoints", [])
    if not checkpoints:
        return "\n".join(lines).strip()
    lines += ["| Checkpoint | Visible tests | Notes |", "|---|---:|---|"]
    all_visible = True
    for cp in checkpoints:
        tests = cp.get("tests", [])
        shown = [t for t in tests if t.get("visibility") == "visible"]
        later = [t for t in tests if t.get("visibility") != "visible"]
        all_visible = all_visible and not later
        notes = []
        pending = sum(1 for t in shown if t.get("outcome") == "pending")
        if pending:
            notes.append(f"{pending} pending manual review")
        failing = sum(1 for t in shown if t.get("outcome") in ("failed", "error"))
        if failing:
            notes.append(f"{failing} failing")
        if later:
            notes.append(f"{fmt_points(sum(_num(t.get('max_score')) for t in later))} points in tests shown later")
        score = fmt_points(sum(_num(t.get("score")) for t in shown))
        max_score = fmt_points(sum(_num(t.get("max_score")) for t in shown))
        lines.append(f"| {md_escape(cp.get('title'))} | {score} / {max_score} | {'; '.join(notes)} |")
    if all_visible:
        lines += ["", f"**Total: {fmt_points(report.get('score'))} / {fmt_points(report.get('max_score'))}**"]
    return "\n".join(lines)


def to_gradescope(report: dict) -> dict:
    """Convert a report dict to Gradescope's ``results.json`` structure (a JSON-able dict).

    A report whose ``error`` is set gets a visible "Autograder failed" test saying why.

    >>> r = to_gradescope({"submission": "s", "tier": "sim", "score": 3, "max_score": 5,
    ...                    "duration_s": 1.5, "checkpoints": []})
    >>> r["score"], r["execution_time"], r["tests"]
    (3.0, 1.5, [])
    """
    tests = [_failure_test(report["error"])] if report.get("error") else []
    for i, cp in enumerate(report.get("checkpoints", []), 1):
        for j, test in enumerate(cp.get("tests", []), 1):
            tests.append(_test(cp, f"{i}.{j}", test))
    return {
        "score": _num(report.get("score")),
        "execution_time": round(_num(report.get("duration_s")), 3),
        "output": _summary(report),
        "output_format": "md",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "extra_data": {
            "tier": report.get("tier"),
            "seed": report.get("seed"),
            "isolation": report.get("isolation"),
            "grader_version": report.get("grader_version"),
            "libraries": report.get("libraries"),
        },
        "tests": tests,
    }


def failure_results(reason: str, *, execution_time: float = 0.0) -> dict:
    """``results.json`` for when grading itself failed: score 0, one visible test saying why.

    >>> r = failure_results("worker crashed: MemoryError", execution_time=2)
    >>> r["score"], r["tests"][0]["name"], r["tests"][0]["status"]
    (0.0, 'Autograder failed', 'failed')
    """
    return {
        "score": 0.0,
        "execution_time": round(_num(execution_time), 3),
        "output": f"**{FAILED_NAME}.** {md_escape(FAILED_HINT)}\n\nReason: {md_escape(reason, 1000)}",
        "output_format": "md",
        "test_output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [_failure_test(reason)],
    }
