"""Every known-bad variant of the reference loses its checkpoint's points, and only where it should.

One test per mutant in tests/mutants*.py: build it from reference/ (tests/mutants.py), grade it with
``--only <its checkpoint>``, and check that
* each test in ``expect_lost`` failed with 0 points, its message naming the problem (``expect_message``);
* every other automatic test of that checkpoint kept its points (or was skipped exactly where the
  reference's own run skips it, on this machine), and manual items stay pending;
* the checkpoint scored less than full marks, no item is a grader error, and no report shows a token.
"""

from __future__ import annotations

import dataclasses
import json
import random
from pathlib import Path
from typing import Any

import pytest

from grading.canary import make_canary
from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from mutants import FAKE, MUTANTS, Mutant, MutantOutOfDate, assert_mutant_differs, build

_REFERENCE: dict[str, dict[str, Any]] = {}


def _base(name: str) -> str:
    return name.split("[")[0]


def _grade(path: Path, checkpoint: str, seed: int, out: Path) -> dict[str, Any]:
    report = run_checkpoints(path, out_json=out, seed=seed, only=checkpoint)
    (found,) = [c for c in report["checkpoints"] if c["id"] == checkpoint]
    return {"report": report, "checkpoint": found}


def _reference_skips(checkpoint: str, tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Tests the reference itself skips here (e.g. a port already taken on this machine)."""
    if checkpoint not in _REFERENCE:
        out = tmp_path_factory.mktemp("reference") / "report.json"
        _REFERENCE[checkpoint] = _grade(REPO_ROOT / "reference", checkpoint, 1, out)["checkpoint"]
    return {_base(t["name"]) for t in _REFERENCE[checkpoint]["tests"] if t["outcome"] == "skipped"}


def test_every_mutant_builds_and_differs(tmp_path: Path) -> None:
    assert len({m.checkpoint for m in MUTANTS.values()}) >= 8
    for name, mutant in MUTANTS.items():
        assert_mutant_differs(mutant, build(mutant, tmp_path / name))


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutant_loses_its_points(name: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    mutant: Mutant = MUTANTS[name]
    reason = mutant.undetectable_here() if mutant.undetectable_here else None
    if reason:
        pytest.skip(reason)
    for key, value in mutant.env.items():  # the grading run (a child process) inherits them
        monkeypatch.setenv(key, value)
    seed = mutant.seed if mutant.seed is not None else random.SystemRandom().randrange(1, 2**31)
    graded = _grade(build(mutant, tmp_path / name), mutant.checkpoint, seed, tmp_path / "report.json")
    checkpoint, where = graded["checkpoint"], f"{name} (seed {seed})"
    by_test: dict[str, list[dict[str, Any]]] = {}
    for test in checkpoint["tests"]:
        by_test.setdefault(_base(test["name"]), []).append(test)

    for lost in mutant.expect_lost:
        items = by_test.get(lost, [])
        failed = [t for t in items if t["outcome"] == "failed" and t["score"] == 0]
        assert failed, f"{where}: expected {lost} to fail; got {items}"
        assert all(t["outcome"] in ("passed", "failed") for t in items), (where, items)
        for word in mutant.expect_message.get(lost, ()):
            assert all(word in t["message"] for t in failed), (where, lost, word, [t["message"] for t in failed])

    may_skip = _reference_skips(mutant.checkpoint, tmp_path_factory) if mutant.others_must_pass else set()
    for test_name, items in by_test.items():
        if test_name in mutant.expect_lost or not mutant.others_must_pass:
            continue
        for test in items:
            allowed = {"passed", "pending"}  # pending: a manual-review item, never scored automatically
            if test_name in may_skip or test["max_score"] == 0:
                allowed.add("skipped")
            assert test["outcome"] in allowed, (where, test)

    assert checkpoint["score"] < checkpoint["max_score"], f"{where} scored full marks"
    assert not [t for t in checkpoint["tests"] if "grader error" in t["message"]], (where, checkpoint["tests"])
    shown = json.dumps(graded["report"], ensure_ascii=False)
    for token in (FAKE, make_canary(seed), make_canary(seed)[3:]):
        assert token not in shown, f"{where}: a report shows a full token"


def test_a_stale_mutant_is_an_error_never_a_copy_of_the_reference(tmp_path: Path) -> None:
    mutant = MUTANTS["hardware_gib"]
    stale = dataclasses.replace(mutant, edits=[("inference_lab/hardware.py", "this text is not there\n", "")])
    with pytest.raises(MutantOutOfDate, match="reference changed"):
        build(stale, tmp_path / "stale")
