"""``report.md``: student-readable feedback in (GitHub-flavoured) Markdown.

Every piece of report text is escaped, table cells are kept on one line with ``|`` escaped,
and test messages go into fenced code blocks whose fence is longer than any backtick run
inside, so student text can never break the layout or inject links/HTML. Hidden tests
show as "hidden test" with their points only.

Usage::

    from grading.reports.markdown import to_markdown
    Path("report.md").write_text(to_markdown(report), encoding="utf-8")
"""

from __future__ import annotations

import re
from typing import Any

from .schema import clean_text, one_line, truncate

__all__ = ["to_markdown", "md_escape", "fmt_points", "OUTCOME_ICONS", "STATUS_ICONS"]

OUTCOME_ICONS = {"passed": "✅", "failed": "❌", "error": "💥", "skipped": "⏭️", "pending": "⏳"}
STATUS_ICONS = {"passed": "🟢", "partial": "🟡", "failed": "🔴", "pending": "⏳"}
MESSAGE_LIMIT = 4000  # characters of a test message shown in md/html
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~&!{}])")


def md_escape(text: Any, limit: int = 300) -> str:
    """One-line, Markdown-inert form of ``text`` (safe in a table cell or a heading).

    >>> md_escape("a|b *c*\\n<x>")
    'a\\\\|b \\\\*c\\\\* \\\\<x\\\\>'
    """
    return _MD_SPECIAL.sub(r"\\\1", one_line(text, limit))


def fmt_points(value: Any) -> str:
    """Points without noise: ``2.0 -> "2"``, ``2.5 -> "2.5"``, ``1/3 -> "0.33"``."""
    try:
        return f"{float(value):.2f}".rstrip("0").rstrip(".")
    except (TypeError, ValueError):
        return "?"


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def test_label(test: dict) -> str:
    """What a visible test is called for students: its description, else its name."""
    return str(test.get("description") or test.get("name") or "")


def is_hidden(test: dict) -> bool:
    """Hidden tests never show their name details or message in student-facing output."""
    return test.get("visibility") == "hidden"


def shown_message(test: dict) -> str:
    """The cleaned, truncated message a student may see ('' for passed or hidden tests)."""
    if is_hidden(test) or test.get("outcome") == "passed":
        return ""
    message = clean_text(test.get("message", "")).strip()
    if test.get("outcome") == "pending" and not message:
        message = "Pending manual review."
    return truncate(message, MESSAGE_LIMIT)


def libraries_line(libraries: dict) -> str:
    """``{"huggingface_hub": "2.5.0", "openai": None}`` -> "huggingface_hub 2.5.0 · openai (absent)"."""
    if not isinstance(libraries, dict):
        return ""
    return " · ".join(f"{name} {version}" if version else f"{name} (absent)"
                      for name, version in libraries.items())


def _header(report: dict) -> list[str]:
    facts = [f"**Score: {fmt_points(report.get('score'))} / {fmt_points(report.get('max_score'))}**"]
    facts.append(f"tier `{md_escape(report.get('tier', '?'))}`")
    if report.get("seed") is not None:
        facts.append(f"seed {md_escape(report['seed'])}")
    if report.get("isolation"):
        facts.append(f"isolation: {md_escape(report['isolation'])}")
    if report.get("created_at"):
        facts.append(md_escape(report["created_at"]))
    if report.get("duration_s") is not None:
        facts.append(f"{fmt_points(report['duration_s'])} s")
    if report.get("grader_version"):
        facts.append(f"infergrade {md_escape(report['grader_version'])}")
    if report.get("libraries"):
        facts.append(md_escape(libraries_line(report["libraries"])))
    lines = [f"# Grading report: {md_escape(report.get('submission', ''))}", "", " · ".join(facts), ""]
    if report.get("error"):
        lines += [f"> **Grading could not run:** {md_escape(report['error'], 1000)}", ""]
    for note in (report.get("notes") or [])[:20]:
        lines.append(f"> Note: {md_escape(note, 400)}")
    if report.get("notes"):
        lines.append("")
    return lines


def _summary(report: dict) -> list[str]:
    lines = ["## Summary", "", "| Checkpoint | Score | Max | Status |", "|---|---:|---:|---|"]
    for cp in report.get("checkpoints", []):
        status = str(cp.get("status", ""))
        lines.append(
            f"| {md_escape(cp.get('title'))} ({md_escape(cp.get('id'))}) | {fmt_points(cp.get('score'))} "
            f"| {fmt_points(cp.get('max_score'))} | {STATUS_ICONS.get(status, '')} {md_escape(status)} |"
        )
    lines.append(
        f"| **Total** | **{fmt_points(report.get('score'))}** | **{fmt_points(report.get('max_score'))}** | |"
    )
    return lines + [""]


def _checkpoint(cp: dict) -> list[str]:
    lines = [
        f"## {md_escape(cp.get('title'))} — {fmt_points(cp.get('score'))} / "
        f"{fmt_points(cp.get('max_score'))} ({md_escape(cp.get('status'))})",
        "",
    ]
    tests = cp.get("tests", [])
    if not tests:
        return lines + ["_No tests were run for this checkpoint._", ""]
    lines += ["| Result | Test | Points |", "|---|---|---:|"]
    details: list[str] = []
    for test in tests:
        outcome = str(test.get("outcome", ""))
        result = f"{OUTCOME_ICONS.get(outcome, '')} {md_escape(outcome)}"
        points = f"{fmt_points(test.get('score'))} / {fmt_points(test.get('max_score'))}"
        if is_hidden(test):
            lines.append(f"| {result} | _hidden test_ | {points} |")
            continue
        label = md_escape(test_label(test))
        if test.get("description") and test.get("name"):
            label += f" ({md_escape(test['name'])})"
        lines.append(f"| {result} | {label} | {points} |")
        message = shown_message(test)
        if message:
            details += [f"**{OUTCOME_ICONS.get(outcome, '')} {md_escape(test_label(test))}** — {points} points", ""]
            details += [_fence(message), ""]
    lines.append("")
    return lines + details


def to_markdown(report: dict) -> str:
    """Render ``report`` as Markdown feedback: header, summary table, then tests per checkpoint.

    >>> md = to_markdown({"submission": "alice", "tier": "sim", "score": 0, "max_score": 0,
    ...                   "checkpoints": []})
    >>> md.splitlines()[0]
    '# Grading report: alice'
    """
    lines = _header(report) + _summary(report)
    for cp in report.get("checkpoints", []):
        lines += _checkpoint(cp)
    return "\n".join(lines).rstrip("\n") + "\n"
