"""What one grading session knows: which submission, which tier, which seed, the rubric, the canary."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from grading.canary import make_canary
from grading.rubric import Rubric

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"
TIERS = ("sim", "local", "live")
PRINTED_PER_CHECKPOINT = 20         # lines kept per checkpoint that printed the canary
PRINTED_CONTEXT = 150               # characters kept on each side of the canary in such a line


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
    # (checkpoint id, line) of the lines the workers of closed checkpoints printed that hold the canary:
    # the auth checkpoint's output check, which runs last, judges them whichever checkpoint printed them.
    printed: list[tuple[str, str]] = field(default_factory=list, repr=False)

    @property
    def canary_token(self) -> str:
        """The fake HF token student code gets; a leak of it anywhere is detectable."""
        return make_canary(self.seed)

    @property
    def watched(self) -> tuple[str, str]:
        """What a worker must never print: the canary, whole and without its "hf_"."""
        return self.canary_token, self.canary_token[3:]

    def note_printed(self, checkpoint_id: str, lines: list[str]) -> None:
        """Keep the lines a checkpoint's workers printed that hold the canary (raw: redact before showing),
        each cut to the canary and a little around it, at most PRINTED_PER_CHECKPOINT of them."""
        for line in lines[:PRINTED_PER_CHECKPOINT]:
            self.printed.append((checkpoint_id, around_secret(line, self.watched)))


def around_secret(line: str, secrets: tuple[str, ...], context: int = PRINTED_CONTEXT) -> str:
    """``line`` cut to its first secret and ``context`` characters on each side (the secret kept whole).

    A word cut in two by the cut is left out: it could be part of another token, shown in part.
    """
    found = [(line.find(s), len(s)) for s in secrets if s and s in line]
    start, length = min(found) if found else (0, 0)
    left, right = max(0, start - context), min(len(line), start + length + context)
    if left > 0 and _word(line[left - 1]):
        while left < start and _word(line[left]):
            left += 1
    if right < len(line) and _word(line[right]):
        while right > start + length and _word(line[right - 1]):
            right -= 1
    return line[left:right]


def _word(char: str) -> bool:
    return char.isalnum() or char == "_"


def checkpoint_id_of(path: Path) -> str | None:
    """``checkpoints/test_auth.py`` -> ``auth``; None for files outside ``checkpoints/``."""
    path = Path(path).resolve()
    if path.parent != CHECKPOINTS_DIR or not path.name.startswith("test_") or path.suffix != ".py":
        return None
    return path.stem[len("test_"):]


# The libraries student code calls the services with, and that run its notebooks: their versions go in
# every report, since a new release can change what a client sends (huggingface_hub 2.5 moved provider
# chat to the router's /v1/chat/completions).
CLIENT_LIBRARIES = ("huggingface_hub", "openai", "ollama", "httpx", "nbclient")


def library_versions(names: tuple[str, ...] = CLIENT_LIBRARIES) -> dict[str, str | None]:
    """``{"huggingface_hub": "2.5.0", ...}``, read from package metadata (nothing is imported); None where
    a library is not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions
