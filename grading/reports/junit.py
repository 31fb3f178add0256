"""``junit.xml`` for CI systems, valid against the strict schema in ``schemas/junit.xsd``.

One ``<testsuite>`` per checkpoint inside ``<testsuites>``; one
``<testcase classname="checkpoints.<id>" name=... time=...>`` per test with a
``<failure>``, ``<error>`` or ``<skipped>`` child when it did not pass (pending manual
review -> ``<skipped message="pending manual review">``). Built with ElementTree (all
escaping is done by it) after removing characters XML 1.0 forbids. No ``<properties>``
anywhere (strict parsers reject them inside ``<testcase>``, pytest-dev/pytest#3130).
When grading itself failed, a ``grading`` suite holds one ``<error>`` saying why.

This file is meant for instructors' CI: unlike report.md/html it includes the messages
of hidden tests.

Usage::

    from grading.reports.junit import to_junit_xml
    Path("junit.xml").write_text(to_junit_xml(report), encoding="utf-8")
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .schema import clean_text, one_line, truncate

__all__ = ["to_junit_xml", "XSD_PATH"]

XSD_PATH = Path(__file__).with_name("schemas") / "junit.xsd"
MESSAGE_ATTR_LIMIT = 500  # characters in a message="" attribute
BODY_LIMIT = 65_536  # characters of full text inside <failure>/<error>/<skipped>


def _seconds(value: Any) -> str:
    try:
        return f"{max(0.0, float(value)):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _timestamp(created_at: Any) -> str | None:
    """ISO 8601 in UTC without zone, as Ant writes it; None when it cannot be parsed."""
    if not isinstance(created_at, str) or not created_at:
        return None
    text = created_at.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc).replace(tzinfo=None)
    return when.replace(microsecond=0).isoformat()


def _problem(case: ET.Element, tag: str, message: str, body: str, kind: str | None) -> None:
    child = ET.SubElement(case, tag, {"message": one_line(message, MESSAGE_ATTR_LIMIT)})
    if kind is not None:
        child.set("type", kind)
    body = truncate(body, BODY_LIMIT)
    if body:
        child.text = body


def _testcase(suite: ET.Element, classname: str, test: dict) -> str:
    """Append one <testcase>; return the outcome counted for the suite."""
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": classname,
            "name": one_line(test.get("name") or "unnamed", 500),
            "time": _seconds(test.get("duration_s", 0.0)),
        },
    )
    outcome = str(test.get("outcome", ""))
    message = clean_text(test.get("message", "")).strip()
    points = f"{test.get('score', 0)}/{test.get('max_score', 0)} points"
    if outcome == "failed":
        _problem(case, "failure", message or f"failed ({points})", message, "failed")
    elif outcome == "error":
        _problem(case, "error", message or f"error ({points})", message, "error")
    elif outcome == "skipped":
        _problem(case, "skipped", message or "skipped", message, None)
    elif outcome == "pending":
        _problem(case, "skipped", "pending manual review", message, None)
    elif outcome != "passed":
        _problem(case, "error", f"unknown outcome {outcome!r}", message, "error")
        outcome = "error"
    return outcome


def _suite(parent: ET.Element, index: int, name: str, stamp: str | None) -> ET.Element:
    attrs = {"name": name, "tests": "0", "failures": "0", "errors": "0", "skipped": "0", "id": str(index)}
    if stamp:
        attrs["timestamp"] = stamp
    attrs["package"] = "checkpoints"
    return ET.SubElement(parent, "testsuite", attrs)


def to_junit_xml(report: dict) -> str:
    """Render ``report`` as a JUnit XML document (``str`` with an XML declaration).

    >>> xml = to_junit_xml({"submission": "s", "tier": "sim", "score": 0, "max_score": 1,
    ...     "checkpoints": [{"id": "auth", "title": "Auth", "score": 0, "max_score": 1,
    ...     "status": "failed", "tests": [{"name": "t", "outcome": "failed", "score": 0,
    ...     "max_score": 1, "visibility": "visible", "message": "a < b"}]}]})
    >>> '<failure message="a &lt; b" type="failed">a &lt; b</failure>' in xml
    True
    """
    stamp = _timestamp(report.get("created_at"))
    root = ET.Element("testsuites", {"name": f"infergrade: {one_line(report.get('submission'), 300)}"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_time = 0.0
    kinds = {"failed": "failures", "error": "errors", "skipped": "skipped", "pending": "skipped"}
    meta = (
        f"submission={one_line(report.get('submission'), 300)} tier={one_line(report.get('tier'), 20)} "
        f"seed={report.get('seed')} isolation={one_line(report.get('isolation', ''), 300)} "
        f"score={report.get('score')}/{report.get('max_score')}"
    )
    suites: list[tuple[ET.Element, str, list[dict]]] = []
    if report.get("error"):
        grading = _suite(root, 0, "grading", stamp)
        error = {"name": "grading", "outcome": "error", "message": str(report["error"])}
        suites.append((grading, "infergrade", [error]))
    for i, cp in enumerate(report.get("checkpoints", []), 1):
        suite = _suite(root, i, one_line(cp.get("id"), 200), stamp)
        suites.append((suite, f"checkpoints.{one_line(cp.get('id'), 200)}", list(cp.get("tests", []))))
    for suite, classname, tests in suites:
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        seconds = 0.0
        for test in tests:
            outcome = _testcase(suite, classname, test)
            counts["tests"] += 1
            if outcome in kinds:
                counts[kinds[outcome]] += 1
            seconds += float(_seconds(test.get("duration_s", 0.0)))
        for key, value in counts.items():
            suite.set(key, str(value))
            totals[key] += value
        suite.set("time", f"{seconds:.3f}")
        total_time += seconds
        ET.SubElement(suite, "system-out").text = clean_text(meta)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", f"{total_time:.3f}")
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
