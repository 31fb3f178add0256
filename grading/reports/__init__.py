"""Reports rendered from one report dict (see ``docs/report-schema.md``).

Usage::

    from pathlib import Path
    from grading.reports import write_all, validate_report

    paths = write_all(report, Path("grading-out/alice"))
    # {"json": .../report.json, "md": .../report.md, "html": .../report.html,
    #  "gradescope": .../results.json, "junit": .../junit.xml}

Single formats: ``json_report.to_json``, ``markdown.to_markdown``, ``html.to_html``,
``gradescope.to_gradescope`` / ``gradescope.failure_results``, ``junit.to_junit_xml``,
``csv_report.write_grades_csv`` (batch), ``terminal.print_summary``.
"""

from __future__ import annotations

from pathlib import Path

from .gradescope import failure_results, to_gradescope
from .html import to_html
from .json_report import atomic_write_text, read_report, to_json
from .junit import to_junit_xml
from .markdown import to_markdown
from .schema import validate_report

__all__ = [
    "FILENAMES",
    "write_all",
    "validate_report",
    "read_report",
    "to_json",
    "to_markdown",
    "to_html",
    "to_gradescope",
    "failure_results",
    "to_junit_xml",
]

#: key in write_all's result -> file name in out_dir
FILENAMES = {
    "json": "report.json",
    "md": "report.md",
    "html": "report.html",
    "gradescope": "results.json",
    "junit": "junit.xml",
}


def write_all(report: dict, out_dir: Path) -> dict[str, Path]:
    """Validate ``report`` and write all five report files into ``out_dir``.

    Every format is rendered before anything is written, and each file is replaced
    atomically, so a failure never leaves a half-written file. ``ValueError`` if the
    report is invalid (nothing is written then).

    >>> paths = write_all(report, Path("out"))          # doctest: +SKIP
    >>> sorted(paths)                                    # doctest: +SKIP
    ['gradescope', 'html', 'json', 'junit', 'md']
    """
    validate_report(report)
    rendered = {
        "json": to_json(report),
        "md": to_markdown(report),
        "html": to_html(report),
        "gradescope": to_json(to_gradescope(report)),
        "junit": to_junit_xml(report),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return {key: atomic_write_text(out / FILENAMES[key], text) for key, text in rendered.items()}
