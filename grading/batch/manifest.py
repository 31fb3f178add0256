"""The batch manifest: an append-only JSON-lines log in ``OUT/manifest.jsonl``.

One record per line, each with ``event``:

* ``batch``: a run started (``grader_version``, ``batch_seed``, ``tier``, ``only``, ``jobs``, ``executor``)
* ``started``: a submission was handed to a worker (``key``)
* ``done``: a submission was graded (``key, student_id, source, hash, grader_version, seed, tier, only,
  official, status, score, max_score, error, duration_s, result``); the newest ``done`` of a key is its result
* ``overrides``: the manual adjustments applied to a submission changed (``key, applied``)

Each record is appended with one ``write`` and ``fsync``-ed, by one process (``batch_lock`` keeps a
second batch out of the same folder). A kill can only cut the last line short; reading skips a broken
line and the next append starts on a fresh line, so nothing recorded before is ever lost.

Usage::

    with batch_lock(out):
        manifest = Manifest(out / "manifest.jsonl")
        manifest.append({"event": "done", "key": "12345", ...})
        manifest.latest_done()["12345"]["score"]
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

__all__ = ["Manifest", "BatchLockedError", "batch_lock"]


class BatchLockedError(RuntimeError):
    """Another batch is writing into the same output folder."""


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: list[dict[str, Any]] = []
        self.skipped_lines = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    self.skipped_lines += 1   # a line cut short by a kill
                    continue
                if isinstance(record, dict) and "event" in record:
                    self.records.append(record)

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        record = {"event": record["event"], "at": _now(), **{k: v for k, v in record.items() if k != "event"}}
        line = json.dumps(record, ensure_ascii=True, allow_nan=False, separators=(",", ":")) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as handle:       # a previous run died mid-line?
                    handle.seek(size - 1)
                    if handle.read(1) != b"\n":
                        line = "\n" + line
            os.write(fd, line.encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        self.records.append(record)
        return record

    def events(self, event: str) -> Iterator[dict[str, Any]]:
        return (r for r in self.records if r.get("event") == event)

    def latest_done(self) -> dict[str, dict[str, Any]]:
        """The newest ``done`` record of each key."""
        return {r["key"]: r for r in self.events("done") if "key" in r}

    def latest_overrides(self) -> dict[str, list]:
        return {r["key"]: r.get("applied", []) for r in self.events("overrides") if "key" in r}

    def batch_seed(self) -> int | None:
        """The seed of the newest ``batch`` record (a resumed batch keeps its seeds)."""
        seeds = [r.get("batch_seed") for r in self.events("batch") if isinstance(r.get("batch_seed"), int)]
        return seeds[-1] if seeds else None

    def done_counts(self) -> dict[str, int]:
        """How many times each key was graded, not counting a deliberate second grading alone after a
        timing item was lost in a parallel run (``graded_alone_after``)."""
        counts: dict[str, int] = {}
        for record in self.events("done"):
            if "graded_alone_after" not in record:
                counts[record["key"]] = counts.get(record["key"], 0) + 1
        return counts


@contextlib.contextmanager
def batch_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.batch.lock`` (POSIX ``flock``; elsewhere no lock) for the duration of a batch."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(out / ".batch.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BatchLockedError(f"another batch is already writing into {out}; wait for it to finish "
                                   "or choose another --out folder") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
