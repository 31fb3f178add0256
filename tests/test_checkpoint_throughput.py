"""The `throughput` checkpoint against the simulators (tier sim).

* reference/ scores 10/10 on three seeds (different pacing each), and its per-test times are printed
  with ``pytest -s``;
* student_template/ scores 0 with "not implemented" messages;
* each known-bad variant (tests/mutants_throughput.py) loses points exactly on the tests it names, with
  a message naming the mistake, and passes the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grading.context import REPO_ROOT
from graded import assert_full_marks, assert_not_implemented, failures, graded_checkpoint
from mutants import MUTANTS, build, for_checkpoint

POINTS = 10.0
TESTS = {"test_result_shape", "test_requests_as_asked", "test_output_tokens_from_usage",
         "test_ttft_to_first_content", "test_token_latencies", "test_throughput_and_duration",
         "test_really_concurrent", "test_errors_counted"}
SEEDS = (5, 17, 2024)


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory, seed: int = SEEDS[0],
          tier: str = "sim") -> dict[str, Any]:
    return graded_checkpoint(path, "throughput", tmp_path_factory, seed=seed, tier=tier)


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_scores_full_marks(seed, tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory, seed)
    print(f"\nthroughput (sim, seed {seed}): " + assert_full_marks(cp, POINTS, TESTS))


def test_template_scores_zero(tmp_path_factory):
    assert_not_implemented(grade(REPO_ROOT / "student_template", tmp_path_factory), "inference_lab.bench.measure")


# -- tier local: the real vLLM-CPU engine behind the grader's logging proxy ------------------------------
# Counting chunks as tokens is caught only by the simulator (two tokens per chunk): this vLLM-CPU server
# sends one token per content chunk, so on it that mistake gives the right number.
LOCAL_MUTANTS = [m for m in for_checkpoint("throughput") if m != "throughput_chunks_as_tokens"]


def grade_local(path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return grade(path, tmp_path_factory, tier="local")


@pytest.mark.engine
def test_reference_full_marks_on_local_tier(vllm_engine, tmp_path_factory):
    """The vLLM runs judged against the real server's log (the session's shared vLLM-CPU server)."""
    cp = grade_local(REPO_ROOT / "reference", tmp_path_factory)
    assert not failures(cp), failures(cp)
    assert cp["score"] == POINTS


@pytest.mark.engine
@pytest.mark.parametrize("variant", LOCAL_MUTANTS)
def test_broken_variant_loses_points_on_local_tier(variant, vllm_engine, tmp_path, tmp_path_factory):
    """The same broken variants lose their points against the real engine (where a chunk may hold several
    tokens and TTFT/ITL are the engine's own)."""
    mutant = MUTANTS[variant]
    cp = grade_local(build(mutant, tmp_path / variant), tmp_path_factory)
    tests = {t["name"]: t for t in cp["tests"]}
    lost = [name for name in mutant.expect_lost if tests[name]["outcome"] == "failed"]
    assert lost, (variant, {n: tests[n]["outcome"] for n in mutant.expect_lost})
    assert cp["score"] < POINTS

