"""Scoring fails closed: only a passed test earns points; anything missing or broken scores 0."""

from __future__ import annotations

from pathlib import Path

from grading.rubric import load_rubric
from grading.scoring import NOT_ASSESSED, Outcome, build_checkpoints, totals

RUBRIC = """
[checkpoints.a]
title = "A"
points = 6
tests = [
  { name = "test_one", points = 2 },
  { name = "test_two", points = 3, visibility = "hidden" },
  { name = "test_manual", points = 1, manual = true },
]
[checkpoints.b]
title = "B"
points = 4
tests = []
"""


def _rubric(tmp_path: Path):
    path = tmp_path / "rubric.toml"
    path.write_text(RUBRIC)
    return load_rubric(path)


def test_all_passed_leaves_manual_pending(tmp_path: Path) -> None:
    outcomes = [Outcome("a", "test_one", "test_one", "passed"), Outcome("a", "test_two", "test_two", "passed")]
    a, b = build_checkpoints(_rubric(tmp_path), outcomes)
    assert a["score"] == 5 and a["status"] == "pending"
    manual = [t for t in a["tests"] if t["name"] == "test_manual"][0]
    assert manual["outcome"] == "pending" and manual["score"] == 0 and manual["max_score"] == 1
    assert b["score"] == 0 and b["status"] == "failed" and b["tests"][0]["message"] == NOT_ASSESSED
    assert totals([a, b]) == (5, 10)


def test_parametrized_cases_share_points(tmp_path: Path) -> None:
    outcomes = [Outcome("a", "test_one", "test_one[x]", "passed"), Outcome("a", "test_one", "test_one[y]", "failed", "no"),
                Outcome("a", "test_two", "test_two", "passed")]
    a = build_checkpoints(_rubric(tmp_path), outcomes, only=["a"])[0]
    cases = {t["name"]: t for t in a["tests"]}
    assert cases["test_one[x]"]["score"] == 1 and cases["test_one[y]"]["score"] == 0
    assert cases["test_one[y]"]["message"] == "no"
    assert a["score"] == 4 and a["status"] == "partial"


def test_missing_error_and_skipped_score_zero(tmp_path: Path) -> None:
    outcomes = [Outcome("a", "test_one", "test_one", "skipped", "service down"),
                Outcome("a", "test_two", "test_two", "error", "grader error")]
    a = build_checkpoints(_rubric(tmp_path), outcomes, only=["a"])[0]
    assert a["score"] == 0 and a["status"] == "failed"
    missing = build_checkpoints(_rubric(tmp_path), [], only=["a"])[0]
    assert all(t["score"] == 0 for t in missing["tests"])
    assert "did not run" in missing["tests"][0]["message"]


def test_real_rubric_loads() -> None:
    assert load_rubric().max_score == 100
