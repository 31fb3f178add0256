"""The `failover` checkpoint.

* reference/ and an independently written solution (tests/alt_solutions/: plain httpx on the router's
  OpenAI-compatible /v1, a different loop) score 15/15;
* each known-bad variant (a `failover` mutant of reference/, built at run time from
  tests/mutants_failover.py) loses points on the tests it should, with a message naming its mistake;
* student_template/ scores 0, every item "not implemented: inference_lab.failover.chat_with_failover";
* the checkpoint stays fast (the whole of it, worker start included, in a few seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from grading.context import REPO_ROOT
from graded import assert_full_marks, assert_not_implemented, graded_checkpoint, graded_report

FAILOVER_POINTS = 15.0
FAILOVER_TESTS = ("test_failover_to_next_provider", "test_retry_after_honoured", "test_long_retry_after_moves_on",
                  "test_timeout_per_attempt", "test_unauthorized_not_retried", "test_client_errors_move_on",
                  "test_all_fail_raises", "test_exponential_backoff_with_jitter", "test_min_interval_respected",
                  "test_token_in_authorization_header")
# the checkpoint's own budget: DESIGN asks for < 6 s on 2 cores; a loaded CI box gets some slack
CHECKPOINT_BUDGET_S = 12.0
SEED = 1


def _hf_simulator_available() -> bool:
    try:
        import grading.sims.hf  # noqa: F401
        from grading.sims.hf import create  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _hf_simulator_available(), reason="the HF simulator is not built yet")


def grade(path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The `failover` checkpoint of one graded submission (each submission is graded once)."""
    return graded_checkpoint(path, "failover", tmp_path_factory, seed=SEED)


def test_reference_scores_full_marks(tmp_path_factory):
    checkpoint = grade(REPO_ROOT / "reference", tmp_path_factory)
    assert_full_marks(checkpoint, FAILOVER_POINTS, set(FAILOVER_TESTS))
    assert checkpoint["status"] == "passed"


def test_alt_solution_scores_full_marks(tmp_path_factory):
    checkpoint = grade(Path(__file__).resolve().parent / "alt_solutions", tmp_path_factory)
    assert_full_marks(checkpoint, FAILOVER_POINTS)


def test_checkpoint_is_fast(tmp_path_factory):
    # the whole grading session, worker start included
    took = graded_report(REPO_ROOT / "reference", "failover", tmp_path_factory, seed=SEED)["duration_s"]
    assert took < CHECKPOINT_BUDGET_S, f"grading the failover checkpoint took {took:.1f} s"


def test_template_scores_zero(tmp_path_factory):
    assert_not_implemented(grade(REPO_ROOT / "student_template", tmp_path_factory),
                           "inference_lab.failover.chat_with_failover", may_skip=False)
