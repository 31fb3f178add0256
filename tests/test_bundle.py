"""The student edition: the visible checkpoints and the runtime, never the solution or a hidden test."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from grading.context import REPO_ROOT
from grading.rubric import load_rubric

HIDE = {"test_estimate_kv_cache": "hidden", "test_fits": "after_due_date"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("bundle")
    rubric = (REPO_ROOT / "grading" / "rubric.toml").read_text()
    for name, visibility in HIDE.items():     # the real rubric hides nothing yet: hide two tests here
        old = f'{{ name = "{name}", points = 1,'
        assert old in rubric
        rubric = rubric.replace(old, f'{old} visibility = "{visibility}",')
    (tmp / "rubric.toml").write_text(rubric)
    out = tmp / "edition"
    proc = subprocess.run([sys.executable, "-m", "grading", "bundle", "--out", str(out), "--rubric",
                           str(tmp / "rubric.toml")], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def test_no_reference_no_tests_no_instructor_files(bundle: Path) -> None:
    files = [p for p in bundle.rglob("*") if p.is_file()]
    rel = {p.relative_to(bundle).as_posix() for p in files}
    assert not [r for r in rel if r.split("/")[0] in ("reference", "tests", "benchmarks", "docs", ".git")]
    assert not [r for r in rel if r.startswith(("grading/batch/", "grading/autograder/")) or
                r in ("grading/commands/batch.py", "grading/commands/gradescope_autograder.py", "grading/bundle.py")]
    template = {digest(p) for p in (REPO_ROOT / "student_template").rglob("*") if p.is_file()}
    solution = {digest(p) for p in (REPO_ROOT / "reference").rglob("*") if p.is_file()} - template
    assert not [p for p in files if digest(p) in solution], "a reference/ file is in the bundle"
    assert {"README.md", "conftest.py", "pyproject.toml", "BUNDLE.json", "student_template/inference_lab/auth.py",
            "grading/sims/__init__.py", "grading/sandbox/worker.py"} <= rel
    assert json.loads((bundle / "BUNDLE.json").read_text())["hidden_tests_removed"] == 2


def test_hidden_tests_are_cut_out_and_the_rest_still_grades(bundle: Path) -> None:
    source = (bundle / "checkpoints" / "test_hardware.py").read_text()
    for name in HIDE:
        assert f"def {name}(" not in source
    assert "def test_estimate_weights(" in source and "def test_sample_usage(" in source
    rubric = load_rubric(bundle / "grading" / "rubric.toml")
    hardware = rubric.checkpoint("hardware")
    assert hardware.points == 3 and {t.visibility for c in rubric.checkpoints for t in c.tests} == {"visible"}
    report_path = bundle.parent / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "checkpoints", "-q", "-p", "no:cacheprovider",
                           "--only=hardware", f"--submission={REPO_ROOT / 'reference'}", f"--report-json={report_path}"],
                          cwd=bundle, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    report = json.loads(report_path.read_text())
    assert report["score"] == report["max_score"] == 3
    names = {t["name"].split("[")[0] for c in report["checkpoints"] for t in c["tests"]}
    assert names.isdisjoint(HIDE)
    check = subprocess.run([sys.executable, "-c", "import grading; print(grading.__file__)"], cwd=bundle,
                           capture_output=True, text=True)
    assert check.stdout.strip() == str(bundle / "grading" / "__init__.py")     # it graded with its own copy


def test_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("keep me")
    proc = subprocess.run([sys.executable, "-m", "grading", "bundle", "--out", str(tmp_path)], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not empty" in proc.stderr and (tmp_path / "x").exists()
