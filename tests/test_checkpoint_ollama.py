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

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT

POINTS = 10.0
TESTS = {"test_list_models", "test_ensure_model_pulls_only_when_missing", "test_generate_tokens_per_s",
         "test_chat_sends_history", "test_stream_chat_ttft", "test_chat_openai", "test_ollama_host_from_env",
         "test_server_down_error", "test_default_port_11434"}
SEED = 5
_REPORTS: dict[Path, dict[str, Any]] = {}


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory, tier: str = "sim") -> dict[str, Any]:
    key = Path(path).resolve()
    if (key, tier) not in _REPORTS:
        out = tmp_path_factory.mktemp("grade") / "report.json"
        _REPORTS[(key, tier)] = run_checkpoints(key, out_json=out, seed=SEED, only="ollama", tier=tier)
    (found,) = [c for c in _REPORTS[(key, tier)]["checkpoints"] if c["id"] == "ollama"]
    return found


def failures(cp: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: f"{t['outcome']}: {t['message']}" for t in cp["tests"] if t["outcome"] != "passed"}


def test_reference_scores_full_marks(tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory)
    assert {t["name"] for t in cp["tests"]} == TESTS
    assert not failures(cp), failures(cp)
    assert cp["score"] == cp["max_score"] == POINTS
    print("\nollama (sim): " + ", ".join(f"{t['name'].removeprefix('test_')} {t['duration_s']:.2f}s" for t in cp["tests"]))


def test_template_scores_zero(tmp_path_factory):
    cp = grade(REPO_ROOT / "student_template", tmp_path_factory)
    assert cp["score"] == 0
    for test in cp["tests"]:
        assert test["score"] == 0 and test["outcome"] in ("failed", "skipped"), test
        if test["outcome"] == "failed":
            assert "not implemented: inference_lab.ollama_client." in test["message"], test["message"]






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
