"""What a batch writes besides the per-submission reports: grades.csv, the Canvas column, summary.html.

* ``grades.csv``: ``grading.reports.csv_report`` (student id, submission, total, max, one column per
  checkpoint, status, duration), one row per submission, sorted by student id.
* ``canvas.csv``: a gradebook column to import in Canvas (Grades > Import): ``Student, ID, SIS User ID,
  SIS Login ID, Section, <assignment>``, with the ``Points Possible`` row Canvas expects. ``ID`` is the
  numeric id from Canvas's own file names; rows without one must be matched by hand.
* ``summary.html`` with ``histogram.png`` and ``pass_rates.png`` (matplotlib, optional: without it the
  page has the tables only and says so), the slowest and the most-failed tests, errors and overrides.

Usage::

    write_outputs(out, rows, checkpoint_ids, assignment="Lab 3")   # rows: final report dicts
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from grading.reports.csv_report import safe_cell, write_grades_csv
from grading.reports.json_report import atomic_write_text

__all__ = ["write_outputs", "write_canvas_csv", "summary_stats"]


def write_canvas_csv(rows: list[dict], path: Path, assignment: str) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", safe_cell(assignment)])
    max_score = max((r.get("max_score") or 0 for r in rows), default=0)
    writer.writerow(["Points Possible", "", "", "", "", f"{max_score:g}"])
    for report in rows:
        student_id = str(report.get("student_id", ""))
        canvas_id = student_id if student_id.isdigit() else ""
        writer.writerow([safe_cell(report.get("student_name") or student_id), canvas_id, "", "", "",
                         f"{float(report.get('score') or 0):g}"])
    atomic_write_text(Path(path), buffer.getvalue())


def summary_stats(rows: list[dict], checkpoint_ids: list[str]) -> dict[str, Any]:
    scores = [float(r.get("score") or 0) for r in rows]
    passes: dict[str, list[float]] = defaultdict(list)
    fractions: dict[str, list[float]] = defaultdict(list)
    durations: dict[str, list[float]] = defaultdict(list)
    failures: dict[str, int] = defaultdict(int)
    for report in rows:
        for cp in report.get("checkpoints", []):
            passes[cp["id"]].append(1.0 if cp.get("status") == "passed" else 0.0)
            fractions[cp["id"]].append(cp["score"] / cp["max_score"] if cp.get("max_score") else 0.0)
            for test in cp.get("tests", []):
                name = f"{cp['id']}.{test['name']}"
                durations[name].append(float(test.get("duration_s") or 0))
                if test.get("outcome") in ("failed", "error"):
                    failures[name] += 1
    graded = [r for r in rows if not r.get("error")]
    return {
        "count": len(rows), "graded": len(graded), "errors": [r for r in rows if r.get("error")],
        "max_score": max((r.get("max_score") or 0 for r in rows), default=0),
        "mean": statistics.fmean(scores) if scores else 0.0,
        "median": statistics.median(scores) if scores else 0.0,
        "min": min(scores, default=0.0), "max": max(scores, default=0.0), "scores": scores,
        "checkpoints": [{"id": cid, "pass_rate": statistics.fmean(passes[cid]) if passes[cid] else 0.0,
                         "mean_fraction": statistics.fmean(fractions[cid]) if fractions[cid] else 0.0,
                         "graded": len(passes[cid])} for cid in checkpoint_ids],
        "slowest": sorted(((n, statistics.fmean(d), max(d)) for n, d in durations.items()),
                          key=lambda x: -x[1])[:10],
        "most_failed": sorted(failures.items(), key=lambda x: (-x[1], x[0]))[:10],
        "overrides": [(r.get("student_id"), o) for r in rows for o in r.get("overrides", [])],
    }


def _plots(out: Path, stats: dict[str, Any]) -> tuple[list[str], str]:
    """Render the two PNGs; returns (file names, a note when matplotlib is missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return [], "install matplotlib (pip install matplotlib) to get the score histogram and pass-rate plots"
    names = []
    fig, ax = plt.subplots(figsize=(7, 3.2))
    top = stats["max_score"] or max(stats["scores"], default=1) or 1
    ax.hist(stats["scores"], bins=min(20, max(5, len(stats["scores"]))), range=(0, top), color="#0969da")
    ax.set_xlabel("score")
    ax.set_ylabel("submissions")
    ax.set_title(f"Scores ({stats['count']} submissions)")
    fig.tight_layout()
    fig.savefig(out / "histogram.png", dpi=100)
    plt.close(fig)
    names.append("histogram.png")
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(3, len(stats["checkpoints"])) + 1))
    ids = [c["id"] for c in stats["checkpoints"]][::-1]
    ax.barh(ids, [100 * c["mean_fraction"] for c in stats["checkpoints"]][::-1], color="#bf8700",
            label="mean % of points")
    ax.barh(ids, [100 * c["pass_rate"] for c in stats["checkpoints"]][::-1], color="#1a7f37", height=0.4,
            label="% passed in full")
    ax.set_xlim(0, 100)
    ax.set_xlabel("%")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "pass_rates.png", dpi=100)
    plt.close(fig)
    names.append("pass_rates.png")
    return names, ""


def _render_summary(stats: dict[str, Any], plots: list[str], note: str, title: str, notes: list[str]) -> str:
    from grading.reports.html import _env

    return _env().get_template("batch_summary.html.j2").render(s=stats, plots=plots, plot_note=note,
                                                               title=title, notes=notes)


def write_outputs(out: Path, rows: list[dict], checkpoint_ids: list[str], *, assignment: str = "infergrade",
                  notes: list[str] | None = None) -> dict[str, Path]:
    out = Path(out)
    rows = sorted(rows, key=lambda r: str(r.get("student_id", "")))
    paths = {"grades": out / "grades.csv", "canvas": out / "canvas.csv", "summary": out / "summary.html"}
    write_grades_csv(rows, paths["grades"], checkpoint_ids)
    write_canvas_csv(rows, paths["canvas"], assignment)
    stats = summary_stats(rows, checkpoint_ids)
    plots, note = _plots(out, stats) if rows else ([], "")
    atomic_write_text(paths["summary"], _render_summary(stats, plots, note, assignment, notes or []))
    return paths
