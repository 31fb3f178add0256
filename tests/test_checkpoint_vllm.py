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
from mutants import MUTANTS, assert_mutant_differs, build, for_checkpoint

POINTS = 10.0
TESTS = {"test_serve_command", "test_serve_command_refuses_ollama_port", "test_serve_command_really_starts",
         "test_chat", "test_complete", "test_server_down_error", "test_offline_generate"}
VLLM_MUTANTS = for_checkpoint("vllm")
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


def test_vllm_mutants_build_and_differ(tmp_path):
    assert len(VLLM_MUTANTS) >= 6
    for variant in VLLM_MUTANTS:
        assert_mutant_differs(MUTANTS[variant], build(MUTANTS[variant], tmp_path / variant))


@pytest.mark.parametrize("variant", VLLM_MUTANTS)
def test_broken_variant_loses_points(variant, tmp_path, tmp_path_factory):
    mutant = MUTANTS[variant]
    cp = grade(build(mutant, tmp_path / variant), tmp_path_factory)
    tests = {t["name"]: t for t in cp["tests"]}
    for name, words in mutant.expect_message.items():
        test = tests[name]
        assert test["outcome"] == "failed" and test["score"] == 0, (variant, test)
        for word in words:
            assert word in test["message"], (variant, name, word, test["message"])
    for name in TESTS - set(mutant.expect_lost):
        assert tests[name]["outcome"] in ("passed", "skipped"), (variant, tests[name])
    assert cp["score"] < POINTS


@pytest.mark.engine
def test_reference_full_marks_on_local_tier(tmp_path_factory):
    from grading.services import ServiceNotAvailable, load_factory

    try:
        load_factory("vllm")(tier="local", seed=SEED)
    except ServiceNotAvailable as exc:
        pytest.skip(f"no local vLLM tier here: {exc}")
    cp = grade(REPO_ROOT / "reference", tmp_path_factory, tier="local")
    assert not failures(cp), failures(cp)
    assert cp["score"] == POINTS
