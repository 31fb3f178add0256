"""The Gradescope zip: built from this grader, and its run_autograder run against a fake /autograder tree."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from grading import __version__
from grading.context import REPO_ROOT


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ag") / "autograder.zip"
    proc = subprocess.run([sys.executable, "-m", "grading", "gradescope-autograder", "--out", str(out),
                           "--only", "hardware", "--timeout", "300"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def fake_tree(tmp_path: Path, autograder_zip: Path) -> Path:
    """Lay the zip out as Gradescope does: /autograder/{source,submission,results,run_autograder}."""
    root = tmp_path / "autograder"
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(root / "source")
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    (root / "results").mkdir()
    return root


def run_autograder(root: Path) -> tuple[subprocess.CompletedProcess, dict]:
    env = {"INFERGRADE_AUTOGRADER_ROOT": str(root), "PATH": "/usr/bin:/bin", "HOME": str(root)}
    proc = subprocess.run([sys.executable, str(root / "run_autograder")], cwd="/", env=env,
                          capture_output=True, text=True, timeout=400)
    results = json.loads((root / "results" / "results.json").read_text())
    assert sorted(p.name for p in (root / "results").iterdir()) == ["results.json"]   # written once, no leftovers
    return proc, results


def test_zip_ships_this_grader_and_nothing_of_the_solution(autograder_zip: Path) -> None:
    with zipfile.ZipFile(autograder_zip) as archive:
        names = archive.namelist()
        config = json.loads(archive.read("autograder.json"))
        modes = {i.filename: (i.external_attr >> 16) & 0o777 for i in archive.infolist()}
        setup = archive.read("setup.sh").decode()
    assert {"setup.sh", "run_autograder", "autograder.json", "infergrade/pyproject.toml",
            "infergrade/grading/__init__.py", "infergrade/checkpoints/test_hardware.py"} <= set(names)
    assert not [n for n in names if n.startswith(("infergrade/reference/", "infergrade/tests/"))]
    assert modes["setup.sh"] == modes["run_autograder"] == 0o755
    assert config["grader_version"] == __version__ and config["checkpoints"] == ["hardware"]
    assert (REPO_ROOT / "grading" / "rubric.toml").read_bytes() == \
        zipfile.ZipFile(autograder_zip).read("infergrade/grading/rubric.toml")
    assert 'pip install -q -e "$SOURCE/infergrade"' in setup and __version__ in setup
    assert subprocess.run(["bash", "-n"], input=setup, text=True).returncode == 0


def test_run_autograder_grades_the_submission(tmp_path: Path, autograder_zip: Path) -> None:
    root = fake_tree(tmp_path, autograder_zip)
    shutil.copytree(REPO_ROOT / "reference", root / "submission" / "my-lab", ignore=shutil.ignore_patterns("__pycache__"))
    proc, results = run_autograder(root)
    assert proc.returncode == 0, proc.stderr
    assert results["score"] == 5.0 and results["tests"], results
    assert all(t["status"] == "passed" for t in results["tests"])
    assert results["extra_data"]["grader_version"] == __version__ and results["extra_data"]["seed"] is not None


def test_no_package_still_writes_a_failure_result(tmp_path: Path, autograder_zip: Path) -> None:
    root = fake_tree(tmp_path, autograder_zip)
    (root / "submission" / "README.txt").write_text("oops")
    proc, results = run_autograder(root)
    assert proc.returncode == 0
    assert results["score"] == 0 and results["tests"][0]["name"] == "Autograder failed"
    assert "no inference_lab/ package" in results["tests"][0]["output"]


def test_a_grader_that_differs_from_the_zip_is_refused_with_a_result(tmp_path: Path, autograder_zip: Path) -> None:
    root = fake_tree(tmp_path, autograder_zip)
    shutil.copytree(REPO_ROOT / "reference", root / "submission", dirs_exist_ok=True)
    with open(root / "source" / "infergrade" / "grading" / "scoring.py", "a") as handle:
        handle.write("\n# edited after the zip was built\n")
    proc, results = run_autograder(root)
    assert results["score"] == 0 and "differs from the one this zip was built with" in results["tests"][0]["output"]
    (root / "source" / "autograder.json").unlink()                      # even a missing config gives a result
    proc, results = run_autograder(root)
    assert results["score"] == 0 and "FileNotFoundError" in results["tests"][0]["output"]
