"""A student's narrowed pytest run reports what it ran; official grading still fails closed.

* ``asked_for`` reads folders, checkpoint modules and ``module::test`` node ids;
* ``mark_not_selected`` turns "no result" into "not run: ..." only for what the run did not select, and
  leaves out checkpoints of which nothing ran;
* end to end: ``pytest checkpoints -k ...`` and ``pytest checkpoints/test_hardware.py::test`` on the
  reference report only the checkpoints asked for; with ``--official`` every checkpoint is reported
  and what did not run scores 0 as "no result".
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from grading.context import CHECKPOINTS_DIR, REPO_ROOT
from grading.scoring import NO_RESULT
from grading.selection import NOT_SELECTED, Asked, asked_for, mark_not_selected


def test_asked_for_reads_folders_modules_and_node_ids(tmp_path: Path) -> None:
    assert asked_for(["checkpoints"], REPO_ROOT).checkpoints is None
    assert asked_for([str(REPO_ROOT)], tmp_path).checkpoints is None          # a folder above checkpoints/
    assert asked_for(["."], CHECKPOINTS_DIR).checkpoints is None               # relative to where pytest ran
    asked = asked_for(["checkpoints/test_hf_image.py", "checkpoints/test_hardware.py::test_fits",
                       "tests/test_rubric.py"], REPO_ROOT)
    assert asked.checkpoints == {"hf_image", "hardware"}
    assert asked.by_node_id == {"hardware"}
    both = asked_for(["checkpoints/test_hardware.py::test_fits", "checkpoints/test_hardware.py"], REPO_ROOT)
    assert both.by_node_id == set()                                            # the whole module too


def _checkpoint(cid: str, *tests: tuple[str, str, str]) -> dict[str, Any]:
    return {"id": cid, "tests": [{"name": name, "outcome": outcome, "message": message}
                                 for name, outcome, message in tests]}


def test_mark_not_selected() -> None:
    checkpoints = [
        _checkpoint("hf_image", ("test_a", "passed", ""), ("test_b", "skipped", NOT_SELECTED)),
        _checkpoint("auth", ("test_c", "skipped", NOT_SELECTED)),
        _checkpoint("hardware", ("test_d", "error", NO_RESULT), ("test_e", "failed", "wrong")),
        _checkpoint("analysis", ("test_f", "skipped", NOT_SELECTED),
                    ("test_manual", "pending", "pending manual review")),
    ]
    kept = mark_not_selected(checkpoints, Asked(checkpoints=None))
    assert [c["id"] for c in kept] == ["hf_image", "hardware"]      # nothing of auth or analysis ran
    # a test that was selected but left no result (e.g. its module failed) stays a "no result" error
    assert kept[1]["tests"][0] == {"name": "test_d", "outcome": "error", "message": NO_RESULT}
    by_node = mark_not_selected([_checkpoint("hardware", ("test_d", "error", NO_RESULT), ("test_e", "passed", ""))],
                                Asked(checkpoints={"hardware"}, by_node_id={"hardware"}))
    assert by_node[0]["tests"][0]["outcome"] == "skipped" and by_node[0]["tests"][0]["message"] == NOT_SELECTED
    assert mark_not_selected([_checkpoint("auth", ("test_c", "passed", ""))], Asked(checkpoints={"hardware"})) == []


def _pytest_report(tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", *args, "-q", "-p", "no:cacheprovider",
                           f"--submission={REPO_ROOT / 'reference'}", f"--report-json={out}", "--seed=3"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(out.read_text())


def test_narrowed_student_run_reports_what_ran(tmp_path: Path) -> None:
    report = _pytest_report(tmp_path, "checkpoints", "-k", "test_estimate_weights or test_estimate_kv_cache")
    assert [c["id"] for c in report["checkpoints"]] == ["hardware"]
    tests = report["checkpoints"][0]["tests"]
    ran = [t for t in tests if t["name"].startswith(("test_estimate_weights[", "test_estimate_kv_cache["))]
    assert ran and all(t["outcome"] == "passed" for t in ran)
    others = [t for t in tests if t not in ran]
    assert others and all(t["outcome"] == "skipped" and t["message"] == NOT_SELECTED for t in others)
    assert report["score"] == 1.5 and report["max_score"] == 5

    # one of four parametrized cases: a quarter of the item's 0.5 points, not all of them
    report = _pytest_report(tmp_path, "checkpoints", "-k", "test_estimate_weights and 7B-fp16")
    assert report["score"] == 0.125

    report = _pytest_report(tmp_path, "checkpoints/test_hardware.py::test_estimate_weights")
    assert [c["id"] for c in report["checkpoints"]] == ["hardware"]
    assert report["score"] == 0.5


def test_official_run_still_fails_closed(tmp_path: Path) -> None:
    report = _pytest_report(tmp_path, "checkpoints", "-k", "test_estimate_weights", "--official")
    assert len(report["checkpoints"]) > 1                       # every checkpoint, scored
    hardware = next(c for c in report["checkpoints"] if c["id"] == "hardware")
    fits = next(t for t in hardware["tests"] if t["name"] == "test_fits")
    assert (fits["outcome"], fits["message"], fits["score"]) == ("error", NO_RESULT, 0.0)
    assert report["score"] == 0.5
