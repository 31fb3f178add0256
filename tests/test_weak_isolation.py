"""Official batch grading refuses weak isolation unless told ``--allow-weak-isolation``; the reports
record which isolation was used."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grading.batch.runner import BatchOptions, WeakIsolationError, run_batch
from grading.context import REPO_ROOT
from grading.sandbox.isolation import weak_isolation_reason


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "student_template", folder / "alice", ignore=shutil.ignore_patterns(".env"))
    return folder


def test_official_batch_refuses_process_isolation(src: Path, tmp_path: Path) -> None:
    with pytest.raises(WeakIsolationError, match="--allow-weak-isolation"):
        run_batch(BatchOptions(src=src, out=tmp_path / "out", isolation="process", only="hardware", quiet=True))
    assert not (tmp_path / "out" / "grades.csv").exists()
    cli = subprocess.run([sys.executable, "-m", "grading", "batch", str(src), "--out", str(tmp_path / "cli"),
                          "--isolation", "process", "--only", "hardware", "-q"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "--allow-weak-isolation" in cli.stderr, cli.stderr


def test_allowed_weak_isolation_is_graded_and_said(src: Path, tmp_path: Path) -> None:
    summary = run_batch(BatchOptions(src=src, out=tmp_path / "out", isolation="process", only="hardware",
                                     allow_weak_isolation=True, quiet=True))
    assert any(note.startswith("WEAK ISOLATION") for note in summary["notes"]), summary["notes"]
    report = json.loads((tmp_path / "out" / "submissions" / "alice" / "report.json").read_text())
    assert report["isolation"].startswith("process"), report["isolation"]


def test_practice_batch_warns_instead_of_refusing(src: Path, tmp_path: Path) -> None:
    summary = run_batch(BatchOptions(src=src, out=tmp_path / "out", isolation="process", only="hardware",
                                     official=False, quiet=True))
    assert any("WEAK ISOLATION" in note for note in summary["notes"])


@pytest.mark.skipif(weak_isolation_reason() is not None, reason=f"full isolation not available: {weak_isolation_reason()}")
def test_full_isolation_is_recorded(src: Path, tmp_path: Path) -> None:
    summary = run_batch(BatchOptions(src=src, out=tmp_path / "out", only="hardware", quiet=True))
    assert not any("WEAK ISOLATION" in note for note in summary["notes"])
    report = json.loads((tmp_path / "out" / "submissions" / "alice" / "report.json").read_text())
    assert "bwrap" in report["isolation"] and "net" in report["isolation"], report["isolation"]
