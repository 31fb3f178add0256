"""The `analysis` checkpoint (static: REPORT.md and results/ read as data).

* reference/ (its REPORT.md and results/ produced by scripts/make_reference_results.py) scores every
  automatic point, and the manual item shows as pending with its points;
* student_template/ scores 0 with messages;
* each known-bad variant (tests/mutants_notebooks.py, checkpoint "analysis") loses points exactly on
  the tests it names.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from grading import report_checks as rc
from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.safe_read import RefusedFile

AUTOMATIC = {"test_results_files": 1.0, "test_table_matches_results": 0.75, "test_claims_agree_with_data": 0.75,
             "test_sections_have_substance": 0.5}
MANUAL = "use_cases_and_reasoning"
_REPORTS: dict[Path, dict[str, Any]] = {}


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key = Path(path).resolve()
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp("grade") / "report.json"
        _REPORTS[key] = run_checkpoints(key, out_json=out, seed=3, only="analysis")
    (found,) = [c for c in _REPORTS[key]["checkpoints"] if c["id"] == "analysis"]
    return found


def test_reference_scores_all_automatic_points(tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory)
    tests = {t["name"]: t for t in cp["tests"]}
    for name, points in AUTOMATIC.items():
        assert tests[name]["outcome"] == "passed" and tests[name]["score"] == points, tests[name]
    manual = tests[MANUAL]
    assert manual["outcome"] == "pending" and manual["max_score"] == 2 and manual["score"] == 0
    assert manual["message"] == "pending manual review"
    assert cp["score"] == sum(AUTOMATIC.values()) and cp["max_score"] == 5 and cp["status"] == "pending"


def test_template_scores_zero(tmp_path_factory):
    cp = grade(REPO_ROOT / "student_template", tmp_path_factory)
    assert cp["score"] == 0
    for test in cp["tests"]:
        if test["name"] == MANUAL:
            assert test["outcome"] == "pending"
        else:
            assert test["outcome"] == "failed" and test["message"], test
    messages = {t["name"]: t["message"] for t in cp["tests"]}
    assert "results/ollama-c1.json" in messages["test_results_files"]
    assert "TODO" in messages["test_sections_have_substance"]


def _reference_copy(dest: Path) -> Path:
    shutil.copytree(REPO_ROOT / "reference", dest, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def test_results_files_are_read_only_when_regular_files(tmp_path):
    """results/ is read in the grader's process: a named pipe must not block it, a link must not lend
    someone else's results (here the reference's own), /dev/zero or a huge file must not fill its memory."""
    sub = _reference_copy(tmp_path / "sub")
    results = sub / "results"
    (results / "ollama-c1.json").unlink()
    os.mkfifo(results / "ollama-c1.json")
    (results / "ollama-c8.json").unlink()
    (results / "ollama-c8.json").symlink_to(REPO_ROOT / "reference" / "results" / "ollama-c8.json")
    (results / "vllm-c1.json").write_bytes(b" " * (rc.MAX_RESULTS_BYTES + 1))
    (results / "vllm-c8.json").unlink()
    (results / "vllm-c8.json").symlink_to("/dev/zero")
    (results / "extra-c2.json").mkdir()
    started = time.monotonic()
    found, problems = rc.load_results(results)
    assert time.monotonic() - started < 5
    assert found == {}
    assert problems == [
        "results/extra-c2.json is a folder, not a regular file",
        "results/ollama-c1.json is a named pipe (FIFO), not a regular file",
        "results/ollama-c8.json is a symbolic link, not a regular file (links are not followed: hand in the file "
        "itself)",
        "results/vllm-c1.json is larger than 1 MiB, more than the grader reads for it",
        "results/vllm-c8.json is a symbolic link, not a regular file (links are not followed: hand in the file "
        "itself)",
    ], problems


def test_a_linked_results_folder_or_report_is_refused(tmp_path):
    sub = _reference_copy(tmp_path / "sub")
    shutil.rmtree(sub / "results")
    (sub / "results").symlink_to(REPO_ROOT / "reference" / "results", target_is_directory=True)
    found, problems = rc.load_results(sub / "results")
    assert found == {} and len(problems) == 1 and "results/ is a symbolic link" in problems[0], problems
    (sub / "REPORT.md").unlink()
    os.mkfifo(sub / "REPORT.md")
    with pytest.raises(RefusedFile, match=r"named pipe \(FIFO\)"):
        rc.read_report(sub)


def test_special_results_files_lose_the_item_and_do_not_hang_grading(tmp_path, tmp_path_factory):
    sub = _reference_copy(tmp_path / "special_results")
    (sub / "results" / "ollama-c1.json").unlink()
    os.mkfifo(sub / "results" / "ollama-c1.json")
    (sub / "results" / "ollama-c8.json").unlink()
    (sub / "results" / "ollama-c8.json").symlink_to(REPO_ROOT / "reference" / "results" / "ollama-c8.json")
    report = run_checkpoints(sub, out_json=tmp_path / "report.json", seed=3, only="analysis", timeout_s=120)
    (cp,) = [c for c in report["checkpoints"] if c["id"] == "analysis"]
    tests = {t["name"]: t for t in cp["tests"]}
    item = tests["test_results_files"]
    assert item["outcome"] == "failed" and item["score"] == 0, item
    assert "results/ollama-c1.json is a named pipe (FIFO), not a regular file" in item["message"], item
    assert "results/ollama-c8.json is a symbolic link" in item["message"], item
    assert cp["score"] < sum(AUTOMATIC.values())


@pytest.mark.parametrize("shown, value, ok", [
    ("0.0357", 0.035712, True), ("0.036", 0.035712, True), ("0.035", 0.035712, False),
    ("412.1", 412.1024, True), ("412", 412.49, True), ("413", 412.1, False), ("3.571e-2", 0.035712, True),
    ("TODO", 1.0, False), ("35.7", 0.0357, False),
])
def test_within_rounding(shown, value, ok):
    assert rc.within_rounding(shown, value) is ok


def test_consistency_checks_catch_impossible_results():
    good = {"requests": 4, "concurrency": 1, "errors": 0, "output_tokens": 100, "duration_s": 2.0,
            "ttft_p50_s": 0.1, "ttft_p95_s": 0.2, "tpot_mean_s": 0.01, "itl_p50_s": 0.01, "e2e_p50_s": 0.5,
            "e2e_p95_s": 0.6, "output_tokens_per_s": 50.0, "requests_per_s": 2.0, "engine": "vllm", "model": "m"}
    assert rc.check_result("vllm-c1.json", "vllm", 1, good, 0.001) == []
    cases = {"ttft_p95_s": 0.05, "e2e_p95_s": 0.4, "requests_per_s": 3.0, "concurrency": 8, "engine": "ollama"}
    for key, value in cases.items():
        assert rc.check_result("vllm-c1.json", "vllm", 1, {**good, key: value}, 0.001), key
