"""What a student's own pytest run asked for, so that a narrowed run reports only what it ran.

A student iterating on one item runs ``pytest checkpoints/test_hf_image.py`` or ``pytest checkpoints
-k stream``. Without this, every checkpoint that was not asked for would show as "no result: this test
did not run" at 0 points. Here (in unofficial runs only; official grading always fails closed):

- a test that ``-k``/``-m`` deselected, or that ``path::test`` arguments did not name, is reported as
  skipped with :data:`NOT_SELECTED` (0 points, and the report says how to grade it);
- a checkpoint of which nothing ran that way, or whose module was not named at all, is left out of
  the report, as with ``--only``.

    asked = asked_for(config.args, config.invocation_params.dir)
    asked.checkpoints            # None: every checkpoint; else the ids whose module was named
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from grading.context import CHECKPOINTS_DIR, checkpoint_id_of
from grading.scoring import NO_RESULT

NOT_SELECTED = ("not run: this run did not select it (-k, -m or a path::test argument); run "
                "`pytest checkpoints` or `python -m grading grade` to score it")


@dataclass
class Asked:
    """The checkpoints a run's arguments named (tests that -k/-m deselected are recorded by the plugin
    as "not run" outcomes)."""

    checkpoints: set[str] | None = None        # None: all of them (the checkpoints folder was named)
    by_node_id: set[str] = field(default_factory=set)     # named only through path::test arguments


def asked_for(args: Iterable[str], invocation_dir: Path) -> Asked:
    """Read pytest's positional arguments: folders, checkpoint modules and ``module::test`` node ids."""
    named: set[str] = set()
    whole: set[str] = set()
    for arg in args:
        path_part, _, rest = str(arg).partition("::")
        path = (Path(invocation_dir) / path_part).resolve()
        if path.is_dir() and (path == CHECKPOINTS_DIR or path in CHECKPOINTS_DIR.parents):
            return Asked(checkpoints=None)
        checkpoint = checkpoint_id_of(path)
        if checkpoint is None:
            continue
        named.add(checkpoint)
        if not rest:
            whole.add(checkpoint)
    return Asked(checkpoints=named, by_node_id=named - whole)


def mark_not_selected(checkpoints: list[dict[str, Any]], asked: Asked) -> list[dict[str, Any]]:
    """The scored checkpoints of an unofficial run, with what it did not select said as such."""
    kept = []
    for checkpoint in checkpoints:
        cid = checkpoint["id"]
        if asked.checkpoints is not None and cid not in asked.checkpoints:
            continue
        for test in checkpoint["tests"]:
            never_ran = test["outcome"] == "error" and test["message"] == NO_RESULT
            if never_ran and cid in asked.by_node_id:
                test["outcome"], test["message"] = "skipped", NOT_SELECTED
        judged = [test for test in checkpoint["tests"] if test["outcome"] != "pending"]
        if judged and all(test["message"] == NOT_SELECTED for test in judged):
            continue  # nothing of it ran: left out, as with --only
        kept.append(checkpoint)
    return kept
