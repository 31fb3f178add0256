"""The rubric: points, visibility and limits per checkpoint and per test, read from ``rubric.toml``.

>>> rubric = load_rubric()
>>> rubric.checkpoint("auth").points
10.0
>>> rubric.checkpoint("hardware").limits.memory_mb
512
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading.sandbox.limits import Limits

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")
DEFAULT_THRESHOLDS = Path(__file__).with_name("thresholds.toml")
VISIBILITIES = ("visible", "hidden", "after_due_date")


class RubricError(ValueError):
    """The rubric file is inconsistent (a typo there must never change a score silently)."""


@dataclass(frozen=True)
class TestItem:
    name: str
    points: float
    description: str = ""
    visibility: str = "visible"
    manual: bool = False
    #: judged against measured times: may fail for a correct solution on a saturated machine, so a
    #: batch grades a submission that lost such an item again, alone (grading/batch/runner.py)
    timing: bool = False


@dataclass(frozen=True)
class Checkpoint:
    id: str
    title: str
    points: float
    tests: tuple[TestItem, ...]
    limits: Limits = field(default_factory=Limits)

    def test(self, name: str) -> TestItem | None:
        return next((t for t in self.tests if t.name == name), None)


@dataclass(frozen=True)
class Rubric:
    checkpoints: tuple[Checkpoint, ...]
    path: Path

    @property
    def ids(self) -> list[str]:
        return [c.id for c in self.checkpoints]

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checkpoints)

    def checkpoint(self, checkpoint_id: str) -> Checkpoint:
        for checkpoint in self.checkpoints:
            if checkpoint.id == checkpoint_id:
                return checkpoint
        raise KeyError(f"no checkpoint {checkpoint_id!r} in {self.path} (known: {', '.join(self.ids)})")

    def select(self, only: list[str] | None) -> list[Checkpoint]:
        """The checkpoints to grade: all, or those named by ``--only`` (unknown ids are an error)."""
        if not only:
            return list(self.checkpoints)
        return [self.checkpoint(cid) for cid in only]


def _test_item(checkpoint_id: str, data: dict[str, Any]) -> TestItem:
    unknown = set(data) - {"name", "points", "description", "visibility", "manual", "timing"}
    if unknown:
        raise RubricError(f"{checkpoint_id}: unknown key(s) {sorted(unknown)} in test {data.get('name')!r}")
    visibility = data.get("visibility", "visible")
    if visibility not in VISIBILITIES:
        raise RubricError(f"{checkpoint_id}.{data['name']}: visibility must be one of {VISIBILITIES}")
    points = float(data["points"])
    if points < 0:
        raise RubricError(f"{checkpoint_id}.{data['name']}: negative points")
    return TestItem(name=str(data["name"]), points=points, description=str(data.get("description", "")),
                    visibility=visibility, manual=bool(data.get("manual", False)),
                    timing=bool(data.get("timing", False)))


def load_rubric(path: Path | None = None) -> Rubric:
    path = Path(path or DEFAULT_RUBRIC)
    data = tomllib.loads(path.read_text())
    default_limits = Limits.from_data(data.get("defaults", {}).get("limits"))
    checkpoints = []
    for checkpoint_id, table in data.get("checkpoints", {}).items():
        tests = tuple(_test_item(checkpoint_id, t) for t in table.get("tests", []))
        names = [t.name for t in tests]
        if len(names) != len(set(names)):
            raise RubricError(f"{checkpoint_id}: a test is listed twice")
        points = float(table["points"])
        if tests and abs(sum(t.points for t in tests) - points) > 1e-9:
            raise RubricError(f"{checkpoint_id}: tests add up to {sum(t.points for t in tests)}, "
                              f"the checkpoint is worth {points}")
        checkpoints.append(Checkpoint(
            id=checkpoint_id, title=str(table["title"]), points=points, tests=tests,
            limits=Limits.from_data(table.get("limits"), base=default_limits)))
    return Rubric(checkpoints=tuple(checkpoints), path=path)


def load_thresholds(path: Path | None = None, hardware_class: str | None = None,
                    tier: str | None = None) -> dict[str, Any]:
    """Tolerances: the ``[default]`` table, overridden by the machine's ``[hardware_class.X]``, then by
    the tier's ``[tier.X]`` (a real engine shares the CPU with the student's client)."""
    data = tomllib.loads(Path(path or DEFAULT_THRESHOLDS).read_text())
    merged = dict(data.get("default", {}))
    if hardware_class:
        merged.update(data.get("hardware_class", {}).get(hardware_class, {}))
    if tier:
        merged.update(data.get("tier", {}).get(tier, {}))
    return merged
