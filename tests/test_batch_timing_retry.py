"""A batch that grades several submissions at once grades again, alone, each one that lost an item the
rubric marks ``timing = true`` (measured times a saturated machine can spoil), and keeps that result."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from grading.batch.manifest import Manifest
from grading.batch.runner import BatchOptions, run_batch
from grading.context import REPO_ROOT
from mutants import MUTANTS, build


def test_timing_losses_are_graded_again_alone(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "reference", src / "honest", ignore=shutil.ignore_patterns("__pycache__"))
    build(MUTANTS["hardware_sample_constant"], src / "constant")       # loses a timing item on any machine
    shutil.copytree(REPO_ROOT / "student_template", src / "stubs", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path / "out"
    summary = run_batch(BatchOptions(src=src, out=out, jobs=2, only="hardware", quiet=True, seed=4,
                                     allow_weak_isolation=True))
    events = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    done = [e for e in events if e.get("event") == "done"]
    honest = [e for e in done if e["key"] == "honest"]     # full marks: graded once (unless this machine
    assert len(honest) == 1 or "graded_alone_after" in honest[-1], honest   # was saturated: then again alone)
    again = [e for e in done if e["key"] == "constant"]
    assert len(again) == 2 and "graded_alone_after" not in again[0], again
    assert "hardware.test_sample_usage_under_load" in again[1]["graded_alone_after"], again[1]
    assert [e["key"] for e in done].count("stubs") == 1      # "not implemented": no quieter run changes it
    assert set(Manifest(out / "manifest.jsonl").done_counts().values()) == {1}
    assert any("graded again alone" in note for note in summary["notes"]), summary["notes"]
    rows = {row["student_id"]: row for row in summary["rows"]}
    assert rows["honest"]["score"] == rows["honest"]["max_score"] and rows["stubs"]["score"] == 0
    assert rows["constant"]["score"] < rows["honest"]["score"]


def test_one_at_a_time_is_not_graded_twice(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(REPO_ROOT / "student_template", src / "stubs", ignore=shutil.ignore_patterns("__pycache__"))
    summary = run_batch(BatchOptions(src=src, out=tmp_path / "out", jobs=1, only="hardware", quiet=True,
                                     allow_weak_isolation=True))
    done = [json.loads(line) for line in (tmp_path / "out" / "manifest.jsonl").read_text().splitlines()
            if json.loads(line).get("event") == "done"]
    assert len(done) == 1 and not any("graded again" in note for note in summary["notes"])


def _checkpoint(cid: str, score: float, max_score: float = 10.0) -> dict:
    return {"id": cid, "title": cid, "score": score, "max_score": max_score, "status": "x",
            "tests": [{"name": "test_a", "outcome": "passed" if score == max_score else "failed",
                       "score": score, "max_score": max_score, "message": ""}]}


def test_only_the_checkpoints_graded_again_are_replaced() -> None:
    from grading.batch.runner import _alone_task, _merge_regrade

    task = _alone_task({"key": "k", "only": None}, ["failover.test_min_interval_respected", "hf_chat.test_ttft"])
    assert task["only"] == "failover,hf_chat" and task["alone_after"][0].startswith("failover.")
    first = {"key": "k", "log": "first", "notes": [], "report": {
        "score": 14.0, "max_score": 30.0, "duration_s": 30.0, "notes": [],
        "checkpoints": [_checkpoint("auth", 10.0), _checkpoint("failover", 4.0), _checkpoint("hf_chat", 0.0)]}}
    again = {"key": "k", "log": "second", "notes": [], "report": {
        "score": 20.0, "max_score": 20.0, "duration_s": 6.0, "error": None,
        "checkpoints": [_checkpoint("failover", 10.0), _checkpoint("hf_chat", 10.0)]}}
    merged = _merge_regrade(first, again)["report"]
    assert [c["id"] for c in merged["checkpoints"]] == ["auth", "failover", "hf_chat"]
    assert (merged["score"], merged["max_score"], merged["duration_s"]) == (30.0, 30.0, 36.0)
    note = next(note for note in merged["notes"] if "failover, hf_chat graded again alone" in note)
    assert "failover.test_a" in note and "hf_chat.test_a" in note   # what the first grading lost
    failed = _merge_regrade(first, {"key": "k", "log": "", "report": {"error": "grading took too long",
                                                                       "checkpoints": []}})["report"]
    assert failed["score"] == 14.0 and "grading took too long" in failed["notes"][-1]
