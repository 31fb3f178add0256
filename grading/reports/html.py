"""``report.html``: a self-contained feedback page (inline CSS, no external resources).

Rendered with jinja2 from ``templates/report.html.j2`` with autoescaping ON, so every string
from the report (student text included) is HTML-escaped. Each checkpoint gets a small bar
(a ``div`` whose width is its score percentage). Hidden tests show as "hidden test" with
their points only; their names and messages are never rendered.

Usage::

    from grading.reports.html import to_html
    Path("report.html").write_text(to_html(report), encoding="utf-8")
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from .markdown import (OUTCOME_ICONS, STATUS_ICONS, fmt_points, is_hidden, libraries_line, shown_message,
                       test_label)
from .schema import clean_text, one_line

__all__ = ["to_html"]

TEMPLATES = Path(__file__).with_name("templates")


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _percent(score: Any, max_score: Any) -> float:
    try:
        s, m = float(score), float(max_score)
    except (TypeError, ValueError):
        return 0.0
    return round(min(100.0, max(0.0, 100.0 * s / m)), 1) if m > 0 else 0.0


def _test_view(test: dict) -> dict:
    hidden = is_hidden(test)
    outcome = str(test.get("outcome", ""))
    return {
        "hidden": hidden,
        "outcome": outcome,
        "icon": OUTCOME_ICONS.get(outcome, ""),
        "label": "" if hidden else one_line(test_label(test), 300),
        "name": "" if hidden or not test.get("description") else one_line(test.get("name"), 300),
        "points": f"{fmt_points(test.get('score'))} / {fmt_points(test.get('max_score'))}",
        "message": shown_message(test),
    }


def _view(report: dict) -> dict:
    checkpoints = []
    for cp in report.get("checkpoints", []):
        status = str(cp.get("status", ""))
        checkpoints.append(
            {
                "id": one_line(cp.get("id"), 100),
                "title": one_line(cp.get("title"), 300),
                "score": fmt_points(cp.get("score")),
                "max_score": fmt_points(cp.get("max_score")),
                "status": status,
                "status_icon": STATUS_ICONS.get(status, ""),
                "css": status if status in STATUS_ICONS else "failed",
                "percent": _percent(cp.get("score"), cp.get("max_score")),
                "tests": [_test_view(t) for t in cp.get("tests", [])],
            }
        )
    seed = report.get("seed")
    return {
        "submission": one_line(report.get("submission"), 300),
        "score": fmt_points(report.get("score")),
        "max_score": fmt_points(report.get("max_score")),
        "percent": _percent(report.get("score"), report.get("max_score")),
        "tier": one_line(report.get("tier", ""), 20),
        "seed": "" if seed is None else str(seed),
        "isolation": one_line(report.get("isolation", ""), 300),
        "created_at": one_line(report.get("created_at", ""), 60),
        "duration": "" if report.get("duration_s") is None else fmt_points(report["duration_s"]),
        "grader_version": one_line(report.get("grader_version", ""), 40),
        "libraries": one_line(libraries_line(report.get("libraries") or {}), 300),
        "error": clean_text(report.get("error") or "")[:4000],
        "notes": [one_line(note, 400) for note in (report.get("notes") or [])[:20]],
        "checkpoints": checkpoints,
    }


def to_html(report: dict) -> str:
    """Render ``report`` as one standalone HTML page (a ``str``; UTF-8 when written).

    >>> page = to_html({"submission": "<b>bob</b>", "tier": "sim", "score": 1,
    ...                 "max_score": 2, "checkpoints": []})
    >>> "&lt;b&gt;bob&lt;/b&gt;" in page and "<b>bob" not in page
    True
    """
    return _env().get_template("report.html.j2").render(r=_view(report))
