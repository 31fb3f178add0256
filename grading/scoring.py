"""From test outcomes to scores: the rubric decides the points, outcomes decide who gets them.

Fails closed: a rubric item with no result, an error or a skip scores 0, with a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grading.rubric import Checkpoint, Rubric

NOT_ASSESSED = "not assessed yet (this version has no tests for it; scores 0)"

NO_RESULT = "no result: this test did not run (scored 0)"


@dataclass
class Outcome:
    """What happened to one collected test item (one parametrized case counts as one item)."""

    checkpoint: str
    test: str          # the rubric name: the function name without [params]
    name: str          # the item's name, with [params]
    outcome: str       # passed | failed | error | skipped
    message: str = ""
    duration_s: float = 0.0


def _checkpoint_status(score: float, max_score: float, tests: list[dict[str, Any]]) -> str:
    pending = any(t["outcome"] == "pending" for t in tests)
    automatic_max = sum(t["max_score"] for t in tests if t["outcome"] != "pending")
    if pending and score >= automatic_max - 1e-9:
        return "pending"
    if max_score > 0 and score >= max_score - 1e-9:
        return "passed"
    return "partial" if score > 0 else "failed"


def score_checkpoint(checkpoint: Checkpoint, outcomes: list[Outcome]) -> dict[str, Any]:
    tests: list[dict[str, Any]] = []
    if not checkpoint.tests:
        tests.append({"name": "not_assessed_yet", "description": "", "outcome": "failed",
                      "score": 0.0, "max_score": checkpoint.points, "visibility": "visible",
                      "message": NOT_ASSESSED, "duration_s": 0.0})
    for item in checkpoint.tests:
        base = {"description": item.description, "visibility": item.visibility}
        if item.manual:
            tests.append({**base, "name": item.name, "outcome": "pending", "score": 0.0,
                          "max_score": item.points, "message": "pending manual review",
                          "duration_s": 0.0})
            continue
        mine = [o for o in outcomes if o.checkpoint == checkpoint.id and o.test == item.name]
        if not mine:
            tests.append({**base, "name": item.name, "outcome": "error", "score": 0.0,
                          "max_score": item.points, "duration_s": 0.0,
                          "message": NO_RESULT})
            continue
        share = item.points / len(mine)
        for outcome in mine:
            tests.append({**base, "name": outcome.name, "outcome": outcome.outcome,
                          "score": share if outcome.outcome == "passed" else 0.0,
                          "max_score": share, "message": "" if outcome.outcome == "passed" else outcome.message,
                          "duration_s": round(outcome.duration_s, 4)})
    score = sum(t["score"] for t in tests)
    return {"id": checkpoint.id, "title": checkpoint.title, "score": round(score, 6),
            "max_score": checkpoint.points, "status": _checkpoint_status(score, checkpoint.points, tests),
            "tests": tests}


def build_checkpoints(rubric: Rubric, outcomes: list[Outcome], only: list[str] | None = None) -> list[dict[str, Any]]:
    return [score_checkpoint(c, outcomes) for c in rubric.select(only)]


def totals(checkpoints: list[dict[str, Any]]) -> tuple[float, float]:
    return (round(sum(c["score"] for c in checkpoints), 6), sum(c["max_score"] for c in checkpoints))
