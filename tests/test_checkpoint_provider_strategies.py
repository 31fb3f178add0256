"""The `provider_strategies` checkpoint, graded end to end against the Hugging Face simulator.

* reference/ scores 10/10 on three different simulator seeds (the checkpoint is not flaky), and so
  does an independently written solution (tests/alt_solutions/);
* each known-bad variant (tests/mutants_strategies.py, built from reference/ at run time) loses points
  on the tests it must lose, with messages naming its mistake;
* student_template/ scores 0 with "not implemented" messages.
The judge itself (grading/judges/stats.py) has its property tests in tests/test_judge_stats.py.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.rubric import load_rubric

CHECKPOINT = "provider_strategies"
TESTS_DIR = Path(__file__).resolve().parent
POINTS = float(load_rubric().checkpoint(CHECKPOINT).points)
# Seeds: two fixed, one new on every run (printed on failure), as official runs draw theirs.
RANDOM_SEED = random.SystemRandom().randrange(1, 2**31)
REFERENCE_SEEDS = [1, 90210, RANDOM_SEED]
MUTANT_SEED = random.SystemRandom().randrange(1, 2**31)


def _hf_sim_available() -> bool:
    try:
        from grading.services import ServiceNotAvailable, load_factory

        load_factory("hf")
    except ServiceNotAvailable:
        return False
    return True


pytestmark = pytest.mark.skipif(not _hf_sim_available(), reason="the hf simulator is not part of this version yet")

_REPORTS: dict[tuple[Path, int], dict[str, Any]] = {}


def grade(path: Path, seed: int, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The checkpoint's part of the report of one graded submission (graded once per seed)."""
    key = (path.resolve(), seed)
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp("grade") / "r.json"
        _REPORTS[key] = run_checkpoints(key[0], out_json=out, seed=seed, only=CHECKPOINT)
    [checkpoint] = [c for c in _REPORTS[key]["checkpoints"] if c["id"] == CHECKPOINT]
    return checkpoint


def failures(checkpoint: dict[str, Any]) -> str:
    return "\n".join(f"{t['name']}: {t['outcome']}: {t['message']}" for t in checkpoint["tests"]
                     if t["outcome"] != "passed")


@pytest.mark.parametrize("seed", REFERENCE_SEEDS, ids=["seed-1", "seed-90210", "seed-random"])
def test_reference_scores_full_marks(seed, tmp_path_factory):
    checkpoint = grade(REPO_ROOT / "reference", seed, tmp_path_factory)
    assert checkpoint["score"] == POINTS, f"seed {seed}:\n{failures(checkpoint)}"
    assert checkpoint["status"] == "passed"
    assert len(checkpoint["tests"]) == 6


def test_alt_solution_scores_full_marks(tmp_path_factory):
    """An independently written solution (openai client, time.monotonic, statistics, sample stdev)."""
    checkpoint = grade(TESTS_DIR / "alt_solutions", MUTANT_SEED, tmp_path_factory)
    assert checkpoint["score"] == POINTS, f"seed {MUTANT_SEED}:\n{failures(checkpoint)}"






def test_template_scores_zero(tmp_path_factory):
    checkpoint = grade(REPO_ROOT / "student_template", 1, tmp_path_factory)
    assert checkpoint["score"] == 0
    assert len(checkpoint["tests"]) == 6
    for test in checkpoint["tests"]:
        assert test["outcome"] == "failed", test
        assert test["message"].startswith("not implemented: inference_lab.strategies.compare_providers"), test
