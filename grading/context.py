"""What one grading session knows: which submission, which tier, which seed, the rubric, the canary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from grading.canary import make_canary
from grading.rubric import Rubric

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
TIERS = ("sim", "local", "live")


@dataclass
class GradingContext:
    submission: Path
    tier: str
    seed: int
    rubric: Rubric
    official: bool = False
    isolation_mode: str = "auto"
    isolation: str = ""                 # filled in by the first worker started
    notes: list[str] = field(default_factory=list)   # for the report: e.g. files left out of the copy
    only: list[str] | None = None
    hardware: dict = field(default_factory=dict)

    @property
    def canary_token(self) -> str:
        """The fake HF token student code gets; a leak of it anywhere is detectable."""
        return make_canary(self.seed)


def checkpoint_id_of(path: Path) -> str | None:
    """``checkpoints/test_auth.py`` -> ``auth``; None for files outside ``checkpoints/``."""
    path = Path(path).resolve()
    if path.parent != CHECKPOINTS_DIR or not path.name.startswith("test_") or path.suffix != ".py":
        return None
    return path.stem[len("test_"):]
