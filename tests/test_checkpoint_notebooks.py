"""The `notebooks` checkpoint against the simulators (tier sim), and the notebook runner itself.

* reference/ scores 5/5 (the three notebooks' kernel start and run times are printed with ``pytest -s``);
* student_template/ scores 0 with messages naming the notebook, the cell and its error;
* each known-bad variant (tests/mutants_notebooks.py) loses points exactly on the tests it names;
* the runner (grading/sandbox/notebooks.py) reports a kernel that cannot start, an invalid notebook
  and a missing one with a clear message, without raising.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.sandbox import notebooks

POINTS = 5.0
TESTS = {"test_image_output", "test_provider_table", "test_tokens_per_s"}
RUNS = "test_notebook_runs"
SEED = 8
_REPORTS: dict[Path, dict[str, Any]] = {}


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key = Path(path).resolve()
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp("grade") / "report.json"
        _REPORTS[key] = run_checkpoints(key, out_json=out, seed=SEED, only="notebooks")
    (found,) = [c for c in _REPORTS[key]["checkpoints"] if c["id"] == "notebooks"]
    return found


def by_base(cp: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for test in cp["tests"]:
        out.setdefault(test["name"].split("[")[0], []).append(test)
    return out


def test_reference_scores_full_marks(tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory)
    failed = {t["name"]: t["message"] for t in cp["tests"] if t["outcome"] != "passed"}
    assert not failed, failed
    assert set(by_base(cp)) == TESTS | {RUNS} and len(by_base(cp)[RUNS]) == 3
    assert cp["score"] == cp["max_score"] == POINTS
    print("\nnotebooks (sim): " + ", ".join(f"{t['name'].removeprefix('test_')} {t['duration_s']:.2f}s"
                                           for t in cp["tests"]))


def test_template_scores_zero(tmp_path_factory):
    cp = grade(REPO_ROOT / "student_template", tmp_path_factory)
    assert cp["score"] == 0
    for test in cp["tests"]:
        assert test["outcome"] == "failed" and test["message"], test
        assert ".ipynb" in test["message"] and "cell " in test["message"], test["message"]
    runs = by_base(cp)[RUNS]
    assert all("NotImplementedError" in t["message"] and "--- error ---" in t["message"] for t in runs), runs
    # student-facing: no grader internals in the excerpt
    assert not any("grading/" in t["message"] or "site-packages/nbclient" in t["message"] for t in cp["tests"])






# -- the runner, directly (no sandbox needed for what it reports) -----------------------------------------
def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, str(path))


def test_runner_reports_missing_kernel_invalid_and_missing(tmp_path):
    _notebook(tmp_path / "a.ipynb", "print('never runs')")
    (tmp_path / "broken.ipynb").write_text('{"cells": [', encoding="utf-8")
    no_kernel = [sys.executable, "-m", "infergrade_no_such_kernel", "-f", "{connection_file}"]
    result = notebooks.run_request(tmp_path, {"names": ["a.ipynb", "broken.ipynb", "gone.ipynb", "../x.ipynb"],
                                              "kernel_argv": no_kernel, "cell_timeout_s": 5,
                                              "notebook_timeout_s": 20})
    a, broken, gone, outside = result["notebooks"]
    assert a["status"] == "kernel" and "a.ipynb: the Python kernel could not start" in a["message"], a
    assert "no cell was run" in a["message"] and a["cells"][0]["status"] == "not_run"
    assert broken["status"] == "invalid" and "broken.ipynb is not a valid notebook" in broken["message"]
    assert gone["status"] == "missing" and "gone.ipynb was not found" in gone["message"]
    assert outside["status"] == "invalid"


def test_runner_timeout_error_and_images(tmp_path):
    _notebook(tmp_path / "t.ipynb", "from PIL import Image\nImage.new('RGB', (12, 7))", "1/0",
              "x = 41 + 1\nx", "import time\ntime.sleep(60)", "print('not reached')")
    result = notebooks.run_request(tmp_path, {"names": ["t.ipynb"], "cell_timeout_s": 2, "notebook_timeout_s": 30})
    (nb,) = result["notebooks"]
    image, error, value, hang, after = nb["cells"]
    assert nb["status"] == "failed" and "t.ipynb, cell 4" in nb["message"] and "within 2 s" in nb["message"]
    assert {(i["width"], i["height"]) for o in image["outputs"] for i in o.get("images", [])} == {(12, 7)}
    assert error["status"] == "error" and error["error"]["name"] == "ZeroDivisionError"
    assert "Cell In[2]" in error["error"]["traceback"] and "\x1b[" not in error["error"]["traceback"]
    assert value["status"] == "ok" and value["outputs"][0]["data"]["text/plain"] == "42"
    assert hang["status"] == "timeout" and after["status"] == "not_run"


def test_runner_finds_watched_strings_in_whole_outputs(tmp_path):
    secret = "hf_" + "WatchedStringForThisTestOnly"
    _notebook(tmp_path / "w.ipynb", f"print('x' * 9000 + ' {secret}')",     # past the clipped copy's end
              f"raise ValueError('{secret[3:]}')", "'clean'")
    result = notebooks.run_request(tmp_path, {"names": ["w.ipynb"], "cell_timeout_s": 20, "notebook_timeout_s": 60,
                                              "watch": [secret, secret[3:]]})
    (nb,) = result["notebooks"]
    assert secret not in nb["cells"][0]["outputs"][0]["text"]        # the report's copy is clipped...
    printed = nb["printed"]
    assert any(line.startswith("cell 1: ") and secret in line for line in printed), printed   # ...not the search
    assert any(line.startswith("cell 2: ") for line in printed) and not any("cell 3" in x for x in printed)
    assert all(len(line) < 400 for line in printed)


def test_canary_printed_by_a_notebook_costs_auth_once(tmp_path):
    sub = tmp_path / "sub"
    shutil.copytree(REPO_ROOT / "reference", sub, ignore=shutil.ignore_patterns("__pycache__"))
    path = sub / "chat_inference_practice.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell("import os\nprint('my token is', os.environ['HF_TOKEN'])"))
    nbformat.write(nb, path)
    report = run_checkpoints(sub, out_json=tmp_path / "report.json", seed=SEED, only="auth,notebooks")
    checkpoints = {c["id"]: c for c in report["checkpoints"]}
    assert checkpoints["notebooks"]["score"] == POINTS         # judged in one place: auth
    lost = {t["name"]: t["message"] for t in checkpoints["auth"]["tests"] if t["outcome"] != "passed"}
    assert set(lost) == {"test_no_token_in_output"}, lost
    message = lost["test_no_token_in_output"]
    assert "notebooks checkpoint" in message and "chat_inference_practice.ipynb, cell 3" in message, message
    text = (tmp_path / "report.json").read_text()
    assert "hf_…" in message and not re.search(r"hf_[A-Za-z0-9]{20,}", text)
