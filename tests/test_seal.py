"""Sealed reports (grading/seal.py): only the grading run that made the key can write a report that
is scored; a forged, edited or unsealed report is an error, never a score."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grading.commands import grade
from grading.context import REPO_ROOT
from grading.seal import SealError, make_key_pipe, read_key, seal_path, verify, write_sealed


def test_key_travels_through_the_pipe_once() -> None:
    key, fd = make_key_pipe()
    assert read_key(fd) == key and len(key) == 32
    with pytest.raises(OSError):
        os.fstat(fd)          # closed after reading: nothing later can read it again


def test_sealed_report_verifies_and_any_change_is_caught(tmp_path: Path) -> None:
    key, fd = make_key_pipe()
    os.close(fd)
    report = tmp_path / "report.json"
    write_sealed(report, json.dumps({"score": 12.5}), key)
    assert json.loads(verify(report, key)) == {"score": 12.5}
    report.write_text(json.dumps({"score": 100.0}))                 # edited afterwards
    with pytest.raises(SealError, match="does not match its seal"):
        verify(report, key)
    write_sealed(report, json.dumps({"score": 100.0}), b"k" * 32)    # sealed with a guessed key
    with pytest.raises(SealError, match="does not match its seal"):
        verify(report, key)
    seal_path(report).unlink()
    with pytest.raises(SealError, match="has no seal"):
        verify(report, key)


def test_a_report_the_grader_did_not_seal_is_not_scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pytest child that writes a report without the run's key (what forged output looks like to
    run_checkpoints): the run raises, and a batch turns that into an error row scoring 0."""
    real_write = grade.subprocess.run

    def forge(command, **kwargs):
        out = Path(next(a for a in command if str(a).startswith("--report-json=")).split("=", 1)[1])
        out.write_text(json.dumps({"score": 100.0, "max_score": 100.0, "checkpoints": []}))
        seal_path(out).write_text("0" * 64)
        return real_write(["true"], **{k: v for k, v in kwargs.items() if k != "cwd"})

    monkeypatch.setattr(grade.subprocess, "run", forge)
    with pytest.raises(RuntimeError, match="failed its integrity check"):
        grade.run_checkpoints(REPO_ROOT / "reference", out_json=tmp_path / "report.json", only="auth")


def test_real_run_is_sealed_and_verified(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    report = grade.run_checkpoints(REPO_ROOT / "student_template", out_json=out, only="hardware", seed=1)
    assert seal_path(out).exists() and report["max_score"] > 0
