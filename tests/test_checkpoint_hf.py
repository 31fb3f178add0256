"""The `hf_chat` and `hf_image` checkpoints (and `auth`'s runtime checks) against the HF simulator.

* reference/ scores full marks on auth, hf_chat and hf_image together (one grading run; its per-test
  times are printed: ``pytest -s`` shows them);
* tests/alt_solutions/ — written independently (the openai client for every chat, the router's
  ``model:provider`` suffix instead of InferenceClient's provider argument, no mapping prefetch) —
  scores full marks on the same checkpoints: only behaviour is judged;
* each known-bad variant (an hf_chat / hf_image mutant of reference/ from tests/mutants_hf.py) loses
  points exactly on the tests it names, with a message naming the mistake (the auth mutants of
  mutants_hf.py are graded by tests/test_checkpoint_auth.py);
* student_template/ scores 0 with "not implemented" messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grading.canary import make_canary
from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.services import ServiceNotAvailable, load_factory

TESTS_DIR = Path(__file__).resolve().parent
ALT = TESTS_DIR / "alt_solutions"
POINTS = {"auth": 10.0, "hf_chat": 10.0, "hf_image": 10.0}
HF_TESTS = {
    "hf_chat": {"test_chat_explicit_provider", "test_chat_auto_provider", "test_chat_openai",
                "test_stream_chat_ttft", "test_stream_chat_text_and_chunks"},
    "hf_image": {"test_image_saved_as_png", "test_image_size_and_pixels", "test_image_provider_and_latency"},
}
SEED = 3


def _sim_missing() -> str | None:
    try:
        load_factory("hf")
    except ServiceNotAvailable as exc:
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(_sim_missing() is not None, reason=f"no HF simulator: {_sim_missing()}")

_REPORTS: dict[tuple[Path, str], dict[str, Any]] = {}


def grade(path: Path, only: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    key = (Path(path).resolve(), only)
    if key not in _REPORTS:
        out = tmp_path_factory.mktemp("grade") / "report.json"
        _REPORTS[key] = run_checkpoints(key[0], out_json=out, seed=SEED, only=only)
    return _REPORTS[key]


def checkpoint(report: dict[str, Any], cid: str) -> dict[str, Any]:
    (found,) = [c for c in report["checkpoints"] if c["id"] == cid]
    return found


def results_of(report: dict[str, Any], cid: str) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in checkpoint(report, cid)["tests"]}


def failures(report: dict[str, Any], cid: str) -> dict[str, str]:
    return {t["name"]: f"{t['outcome']}: {t['message']}" for t in checkpoint(report, cid)["tests"]
            if t["outcome"] != "passed"}


def assert_no_full_token(report: dict[str, Any]) -> None:
    text = json.dumps(report, ensure_ascii=False)
    assert make_canary(SEED) not in text and make_canary(SEED)[3:] not in text, "a report shows the canary"


# -- whole submissions -----------------------------------------------------------------------------
def test_reference_scores_full_marks(tmp_path_factory: pytest.TempPathFactory) -> None:
    report = grade(REPO_ROOT / "reference", "auth,hf_chat,hf_image", tmp_path_factory)
    for cid, points in POINTS.items():
        assert not failures(report, cid), failures(report, cid)
        assert checkpoint(report, cid)["score"] == checkpoint(report, cid)["max_score"] == points
    for cid in HF_TESTS:
        assert set(results_of(report, cid)) == HF_TESTS[cid]
    assert_no_full_token(report)
    print(f"\nreference graded on auth,hf_chat,hf_image in {report['duration_s']:.2f} s (whole run)")
    for cid in POINTS:
        times = {t["name"]: t["duration_s"] for t in checkpoint(report, cid)["tests"]}
        print(f"  {cid}: {sum(times.values()):.2f} s in its tests: "
              + ", ".join(f"{name.removeprefix('test_')} {s:.2f}" for name, s in times.items()))


def test_alternative_solution_scores_full_marks(tmp_path_factory: pytest.TempPathFactory) -> None:
    assert (ALT / "inference_lab" / "hf_chat.py").is_file() and (ALT / "inference_lab" / "hf_image.py").is_file()
    report = grade(ALT, "hf_chat,hf_image", tmp_path_factory)
    for cid in HF_TESTS:
        assert not failures(report, cid), failures(report, cid)
        assert checkpoint(report, cid)["score"] == POINTS[cid]


def test_template_scores_zero(tmp_path_factory: pytest.TempPathFactory) -> None:
    report = grade(REPO_ROOT / "student_template", "hf_chat,hf_image", tmp_path_factory)
    for cid in HF_TESTS:
        assert checkpoint(report, cid)["score"] == 0
        for name, test in results_of(report, cid).items():
            assert test["score"] == 0 and test["outcome"] == "failed", (name, test)
            assert f"not implemented: inference_lab.{cid}." in test["message"], (name, test["message"])


# -- broken variants -------------------------------------------------------------------------------


