"""``python -m grading grade`` end to end: the table, the five files, and what no submission can break."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.reports.schema import validate_report
from grading.rubric import load_rubric

ASSESSED = [c for c in load_rubric().checkpoints if c.tests]
ASSESSED_POINTS = sum(c.points for c in ASSESSED)
ONLY_ASSESSED = ",".join(c.id for c in ASSESSED)
# checkpoints that judge notebooks and REPORT.md rather than calling inference_lab functions directly
READ_AS_DATA = ("notebooks", "analysis")


def grade_cli(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "grading", "grade", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("reference-out")
    return grade_cli(str(REPO_ROOT / "reference"), "--out", str(out), "--seed", "7", "-q"), out


def test_reference_scores_every_assessed_point(reference_run) -> None:
    proc, out = reference_run
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["seed"] == 7 and report["tier"] == "sim" and report["max_score"] == 100
    assert report["isolation"] and report["hardware"]["cpu_count"] >= 1
    # the client libraries the student's code ran with, as installed (a release can change their requests)
    assert report["libraries"]["huggingface_hub"] == importlib.metadata.version("huggingface_hub")
    assert set(report["libraries"]) >= {"huggingface_hub", "openai", "ollama"}
    assert f"huggingface\\_hub {report['libraries']['huggingface_hub']}" in (out / "report.md").read_text()
    manual = 0.0
    for checkpoint in report["checkpoints"]:
        pending = sum(t["max_score"] for t in checkpoint["tests"] if t["outcome"] == "pending")
        manual += pending
        if any(c.id == checkpoint["id"] for c in ASSESSED):
            # every automatic point; manual-review items show as pending, scored 0 until reviewed
            assert checkpoint["score"] == checkpoint["max_score"] - pending, checkpoint
            assert checkpoint["status"] == ("pending" if pending else "passed"), checkpoint
        else:
            assert checkpoint["score"] == 0 and checkpoint["status"] == "failed"
    assert report["score"] == ASSESSED_POINTS - manual


def test_reference_writes_five_reports_and_a_table(reference_run) -> None:
    proc, out = reference_run
    for name in ("report.json", "report.md", "report.html", "results.json", "junit.xml"):
        assert (out / name).stat().st_size > 0, name
    gradescope = json.loads((out / "results.json").read_text())
    assert gradescope["score"] == json.loads((out / "report.json").read_text())["score"]
    assert "auth" in proc.stdout and "hardware" in proc.stdout and "Total" in proc.stdout


def test_template_scores_zero_with_not_implemented_messages(tmp_path: Path) -> None:
    report = run_checkpoints(REPO_ROOT / "student_template", out_json=tmp_path / "r.json", seed=3,
                             only=ONLY_ASSESSED)
    assert report["score"] == 0
    for checkpoint in report["checkpoints"]:
        for test in checkpoint["tests"]:
            assert test["score"] == 0
            if test["max_score"] == 0:             # an item worth nothing here (e.g. local tier only)
                continue
            if checkpoint["id"] in READ_AS_DATA:   # their own messages: tests/test_checkpoint_<id>.py
                assert test["message"], test
                continue
            assert "not implemented: inference_lab." in test["message"], test


def test_missing_folder_is_a_clear_error_and_still_writes_results_json(tmp_path: Path) -> None:
    proc = grade_cli(str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert "is not a folder" in proc.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["score"] == 0 and "Autograder failed" in json.dumps(results)


def test_unknown_checkpoint_in_only_is_refused(tmp_path: Path) -> None:
    proc = grade_cli(str(REPO_ROOT / "reference"), "--out", str(tmp_path), "--only", "auth,nonsense")
    assert proc.returncode == 2 and "nonsense" in proc.stderr


def test_folder_without_package_scores_zero_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("I forgot the package")
    proc = grade_cli(str(tmp_path / "sub"), "--out", str(tmp_path / "out"), "--only", ONLY_ASSESSED, "-q")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["score"] == 0
    messages = [t["message"] for c in report["checkpoints"] for t in c["tests"]]
    assert any("no inference_lab/ package" in m for m in messages)


def test_submission_conftest_sitecustomize_and_pth_have_no_effect(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    shutil.copytree(REPO_ROOT / "student_template", sub)
    marker = tmp_path / "MARKER"
    cheat = ("import pytest\n"
             "@pytest.hookimpl(wrapper=True)\n"
             "def pytest_runtest_makereport(item, call):\n"
             "    rep = yield\n    rep.outcome = 'passed'\n    return rep\n"
             f"open({str(marker)!r}, 'w').write('conftest ran')\n")
    (sub / "conftest.py").write_text(cheat)
    (sub / "inference_lab" / "conftest.py").write_text(cheat)
    (sub / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w').write('site ran')\n")
    (sub / "cheat.pth").write_text(f"import os; open({str(marker)!r}, 'w').write('pth ran')\n")
    (sub / "pytest.ini").write_text("[pytest]\naddopts = -p no:grading.plugin\n")
    report = run_checkpoints(sub, out_json=tmp_path / "r.json", seed=3, only=ONLY_ASSESSED)
    assert report["score"] == 0
    assert not marker.exists()
