"""Grading submissions from the grader's own tests: each (submission, checkpoint, seed, tier) once.

    from graded import graded_checkpoint, failures, assert_not_implemented

    checkpoint = graded_checkpoint(REPO_ROOT / "reference", "ollama", tmp_path_factory, seed=5)
    assert not failures(checkpoint), failures(checkpoint)

Grading is the slow part of these tests, so the whole report of each run is kept for the session
(``graded_report``) and every test module asking the same question shares it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grading.commands.grade import run_checkpoints

_REPORTS: dict[tuple[Path, str, int, str], dict[str, Any]] = {}


def graded_report(path: Path, checkpoint: str, tmp_path_factory: pytest.TempPathFactory, *, seed: int,
                  tier: str = "sim") -> dict[str, Any]:
    """The whole report.json of grading ``path`` with ``--only checkpoint`` (graded once per session)."""
    key = (Path(path).resolve(), checkpoint, seed, tier)
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp(f"grade-{checkpoint}") / "report.json"
        _REPORTS[key] = run_checkpoints(key[0], out_json=out, seed=seed, only=checkpoint, tier=tier)
    return _REPORTS[key]


def graded_checkpoint(path: Path, checkpoint: str, tmp_path_factory: pytest.TempPathFactory, *, seed: int,
                      tier: str = "sim") -> dict[str, Any]:
    """The one checkpoint's entry of ``graded_report``."""
    report = graded_report(path, checkpoint, tmp_path_factory, seed=seed, tier=tier)
    (found,) = [c for c in report["checkpoints"] if c["id"] == checkpoint]
    return found


def failures(checkpoint: dict[str, Any]) -> dict[str, str]:
    """test name -> "outcome: message" for every item with points that did not pass."""
    return {t["name"]: f"{t['outcome']}: {t['message']}" for t in checkpoint["tests"]
            if t["outcome"] != "passed" and t["max_score"] > 0}


def assert_not_implemented(checkpoint: dict[str, Any], expected: str, *, may_skip: bool = True) -> None:
    """The template's grade: 0 points, every failed item saying ``not implemented: <expected>…``."""
    assert checkpoint["score"] == 0
    allowed = ("failed", "skipped") if may_skip else ("failed",)
    for test in checkpoint["tests"]:
        assert test["score"] == 0 and test["outcome"] in allowed, test
        if test["outcome"] == "failed":
            assert f"not implemented: {expected}" in test["message"], test["message"]


def assert_full_marks(checkpoint: dict[str, Any], points: float, names: set[str] | None = None) -> str:
    """Every item with points passed and the checkpoint scored ``points`` (and has exactly ``names``).

    Returns the items' grading times ("name 0.12s, ...") for tests that print them (``pytest -s``).
    """
    if names is not None:
        assert {t["name"] for t in checkpoint["tests"]} == names
    assert not failures(checkpoint), failures(checkpoint)
    assert checkpoint["score"] == checkpoint["max_score"] == points
    return ", ".join(f"{t['name'].removeprefix('test_')} {t['duration_s']:.2f}s" for t in checkpoint["tests"])
