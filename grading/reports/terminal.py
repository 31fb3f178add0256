"""A compact rich table of a report for the terminal (works without a TTY too).

Columns: checkpoint, score, max, status, first failure (a hidden test only says
"hidden test failed", never its message), then a total line. All report text goes in as
``rich.text.Text`` after control characters are removed, so neither rich markup such as
``[red]`` nor terminal escape sequences in student text can take effect.

Usage::

    from grading.reports.terminal import print_summary
    print_summary(report)                        # to stdout
    print_summary(report, console=Console(stderr=True))
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .markdown import fmt_points
from .schema import one_line

__all__ = ["print_summary", "first_failure"]

_STATUS_STYLE = {"passed": "green", "partial": "yellow", "failed": "red", "pending": "cyan"}
FAILURE_WIDTH = 80


def first_failure(checkpoint: dict, limit: int = FAILURE_WIDTH) -> str:
    """One line about the first test of ``checkpoint`` that did not pass ('' if none)."""
    for test in checkpoint.get("tests", []):
        outcome = test.get("outcome")
        if outcome == "passed" or (outcome == "skipped" and not test.get("max_score")):
            continue  # a skipped item worth nothing (e.g. a local-tier-only check) is no failure
        if test.get("visibility") == "hidden":
            return f"hidden test {outcome}"
        if outcome == "pending":
            return "pending manual review"
        label = test.get("description") or test.get("name") or ""
        # Messages name what failed ("not implemented: inference_lab.auth.get_token"), so they stand alone.
        text = one_line(test.get("message") or f"{label}: {outcome}", 10 * limit)
        return text if len(text) <= limit else text[: limit - 1] + "…"
    return ""


def _text(value: Any, style: str = "") -> Text:
    return Text(one_line(value, 300), style=style)


def print_summary(report: dict, console: Console | None = None) -> None:
    """Print ``report`` as a table (one row per checkpoint, plus a total) to ``console``.

    >>> import io
    >>> from rich.console import Console
    >>> out = io.StringIO()
    >>> print_summary({"submission": "s", "tier": "sim", "score": 0, "max_score": 0,
    ...                "checkpoints": []}, console=Console(width=100, file=out))
    >>> "Total" in out.getvalue()
    True
    """
    console = console or Console()
    seed = report.get("seed")
    title = Text.assemble(
        "infergrade: ", _text(report.get("submission"), "bold"),
        f"  (tier {one_line(report.get('tier'), 20)}" + (f", seed {one_line(seed, 40)}" if seed is not None else "") + ")",
    )
    table = Table(title=title, show_footer=False, expand=False)
    checkpoints = report.get("checkpoints", [])
    id_width = max([len(one_line(cp.get("id"), 40)) for cp in checkpoints] + [10])
    table.add_column("Checkpoint", no_wrap=True, min_width=id_width)
    table.add_column("Score", justify="right", no_wrap=True, min_width=5)
    table.add_column("Max", justify="right", no_wrap=True, min_width=5)
    table.add_column("Status", no_wrap=True, min_width=7)
    # What is left of the console's width after the fixed columns and the borders (16 characters).
    room = max(20, min(FAILURE_WIDTH, console.width - id_width - 5 - 5 - 7 - 16))
    table.add_column("First failure", overflow="ellipsis", no_wrap=True, max_width=room)
    for i, cp in enumerate(checkpoints):
        status = str(cp.get("status", ""))
        table.add_row(
            _text(one_line(cp.get("id"), 40)),
            Text(fmt_points(cp.get("score"))),
            Text(fmt_points(cp.get("max_score"))),
            _text(status, _STATUS_STYLE.get(status, "")),
            Text(first_failure(cp, limit=room), style="dim"),
            end_section=i == len(checkpoints) - 1,
        )
    table.add_row(
        Text("Total", style="bold"),
        Text(fmt_points(report.get("score")), style="bold"),
        Text(fmt_points(report.get("max_score")), style="bold"),
        Text(""),
        Text(""),
    )
    console.print(table)
    if report.get("error"):
        console.print(Text.assemble(("Grading could not run: ", "bold red"), _text(report["error"])))
