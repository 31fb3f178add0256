"""The `ollama` checkpoint against the Ollama simulator (tier sim).

* reference/ scores 10/10 (its per-test times are printed with ``pytest -s``);
* student_template/ scores 0 with "not implemented" messages;
* each known-bad variant (tests/mutants_ollama.py) loses points exactly on the tests it names, with a
  message naming the mistake, and passes the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grading.context import REPO_ROOT
from graded import assert_full_marks, assert_not_implemented, failures, graded_checkpoint

POINTS = 10.0
TESTS = {"test_list_models", "test_ensure_model_pulls_only_when_missing", "test_generate_tokens_per_s",
         "test_chat_sends_history", "test_stream_chat_ttft", "test_chat_openai", "test_ollama_host_from_env",
         "test_server_down_error", "test_default_port_11434"}
SEED = 5


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory, tier: str = "sim") -> dict[str, Any]:
    return graded_checkpoint(path, "ollama", tmp_path_factory, seed=SEED, tier=tier)


def test_reference_scores_full_marks(tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory)
    print("\nollama (sim): " + assert_full_marks(cp, POINTS, TESTS))


def test_template_scores_zero(tmp_path_factory):
    assert_not_implemented(grade(REPO_ROOT / "student_template", tmp_path_factory), "inference_lab.ollama_client.")


@pytest.mark.engine
def test_reference_full_marks_on_local_tier(tmp_path_factory):
    from grading.services import ServiceNotAvailable, load_factory

    try:
        load_factory("ollama")(tier="local", seed=SEED)
    except ServiceNotAvailable as exc:
        pytest.skip(f"no local Ollama tier here: {exc}")
    cp = grade(REPO_ROOT / "reference", tmp_path_factory, tier="local")
    assert not failures(cp), failures(cp)
    assert cp["score"] == POINTS
