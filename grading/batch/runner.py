"""Run a batch: discover, skip what is done, grade the rest N at a time, write everything.

Resumable and at-most-once: a submission counts as graded when its ``done`` record is in the
manifest, and that record is appended only after its report files are in place. A re-run skips every
submission whose newest ``done`` record matches its content hash, grader version, tier and
checkpoints (``--regrade`` grades all again). A batch killed half-way loses only the submissions in
flight. grades.csv, canvas.csv and summary.html are rebuilt from the per-submission reports at the end,
also after an interruption, so no run ever loses the grades already given.

Usage::

    summary = run_batch(BatchOptions(src=Path("export.zip"), out=Path("grades-lab3"), jobs=8))
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading import __version__
from grading.batch.discovery import Submission, discover
from grading.batch.executors import make_executor
from grading.batch.manifest import Manifest, batch_lock
from grading.batch.outputs import write_outputs
from grading.batch.overrides import apply_overrides, read_overrides
from grading.reports import write_all
from grading.reports.json_report import atomic_write_text, to_json
from grading.rubric import load_rubric
from grading.sandbox.isolation import weak_isolation_reason
from grading.sims.seeds import derive_seed, resolve_seed

__all__ = ["BatchOptions", "run_batch", "default_jobs"]

#: benchmarks/bench_batch.py measured ~770 MiB peak RSS for one submission's grading processes (a sum over
#: processes: the workers forked from one zygote share most of theirs, so this is an upper bound)
WORKER_MEMORY_MB = 800
#: a submission alone keeps one core ~35 % busy (grading mostly waits on paced services): 4 per core
#: keep 2 cores busy (measured: 8 at once grade 24 copies as fast as 12 at once, 4 at once is 25 % slower).
#: Timing items spoiled by that load are graded again alone (``timing = true`` in the rubric).
JOBS_PER_CORE = 4


def default_jobs() -> int:
    """How many submissions to grade at once: 4 per core, as many as memory allows (1 GiB spare), at most 16."""
    import psutil

    cores = os.cpu_count() or 1
    free_mb = psutil.virtual_memory().available / 2**20
    by_memory = int((free_mb - 1024) // WORKER_MEMORY_MB)
    return max(1, min(JOBS_PER_CORE * cores, by_memory, 16))


def _busy_note() -> list[str]:
    try:
        load, cores = os.getloadavg()[0], os.cpu_count() or 1
    except OSError:  # pragma: no cover - Windows
        return []
    if load <= cores:
        return []
    return [f"this machine is busy (load {load:.1f} on {cores} cores): timing checks can fail under CPU "
            "contention; grade with fewer --jobs or on a quieter machine, and compare with a regrade"]


@dataclass
class BatchOptions:
    src: Path
    out: Path
    jobs: int | None = None
    regrade: bool = False
    tier: str = "sim"
    only: str | None = None
    seed: int | None = None
    isolation: str = "auto"
    official: bool = True
    timeout_s: float | None = 1800.0
    overrides: Path | None = None
    executor: str = "local"
    address: str | None = None
    assignment: str = "infergrade"
    quiet: bool = False
    allow_weak_isolation: bool = False
    notes: list[str] = field(default_factory=list)


class WeakIsolationError(RuntimeError):
    """Official grading would run student code without the full sandbox, and that was not allowed."""


def _isolation_notes(opts: BatchOptions) -> list[str]:
    """Refuse weak isolation for an official batch unless allowed; else say it in the notes."""
    reason = weak_isolation_reason(opts.isolation)
    if reason is None:
        return []
    if opts.official and not opts.allow_weak_isolation:
        raise WeakIsolationError(
            f"official grading needs each submission sandboxed by bubblewrap with a network of its own, but {reason}. "
            "Run it on a Linux machine where bubblewrap works, or pass --allow-weak-isolation to grade with the "
            "process-level sandbox (each report records the isolation used).")
    return [f"WEAK ISOLATION: {reason}; student code runs as a plain process with limits (the reports say so)"]


def _same_grading(record: dict, sub: Submission, opts: BatchOptions) -> bool:
    return (record.get("hash") == sub.content_hash and record.get("grader_version") == __version__
            and record.get("tier") == opts.tier and record.get("only") == opts.only
            and record.get("official") == opts.official)


def _task(sub: Submission, opts: BatchOptions, batch_seed: int, work: Path) -> dict[str, Any]:
    return {"key": sub.key, "student_id": sub.student_id, "source": sub.source, "kind": sub.kind,
            "seed": derive_seed(batch_seed, sub.key) % 2**31, "tier": opts.tier, "only": opts.only,
            "isolation": opts.isolation, "official": opts.official, "timeout_s": opts.timeout_s,
            "work": str(work), "hide": _hidden_folders(opts, work)}


def _hidden_folders(opts: BatchOptions, work: Path) -> list[str]:
    """The batch's sources and outputs (classmates' code and reports, the manifest's seeds): hidden from
    every worker (an export zip is replaced by an empty file in the worker's view)."""
    return sorted({str(Path(opts.src).resolve()), str(Path(opts.out).resolve()), str(work.resolve())})


def _timing_items_lost(report: dict[str, Any], rubric: Any) -> list[str]:
    """``checkpoint.test`` of each item the rubric marks ``timing = true`` that failed on its numbers (not
    one that raised "not implemented", errored or skipped: no quieter machine changes those)."""
    lost = []
    for checkpoint in report.get("checkpoints") or []:
        try:
            spec = rubric.checkpoint(checkpoint["id"])
        except KeyError:
            continue
        for test in checkpoint.get("tests") or []:
            item = spec.test(str(test.get("name", "")).split("[")[0])
            message = str(test.get("message") or "")
            if (item is not None and item.timing and test.get("outcome") == "failed"
                    and not message.startswith("not implemented")):
                lost.append(f"{checkpoint['id']}.{item.name}")
    return sorted(set(lost))


def _alone_task(task: dict[str, Any], lost: list[str]) -> dict[str, Any]:
    """The task that grades again, alone, only the checkpoints of the timing items ``lost``."""
    return dict(task, only=",".join(sorted({item.split(".")[0] for item in lost})), alone_after=lost)


def _lost_messages(report: dict[str, Any], checkpoint_ids: list[str]) -> list[str]:
    """``checkpoint.test: message`` (clipped) of each test of ``checkpoint_ids`` that failed in ``report``."""
    return [f"{c['id']}.{t.get('name')}: {str(t.get('message') or '')[:200]}"
            for c in report.get("checkpoints") or [] if c.get("id") in checkpoint_ids
            for t in c.get("tests") or [] if t.get("outcome") == "failed"]


def _merge_regrade(first: dict[str, Any], again: dict[str, Any]) -> dict[str, Any]:
    """``first`` (a result of ``grade_one``) with the checkpoints ``again`` graded alone put in place of
    its own, totals recomputed; ``first`` unchanged when the second grading failed to run."""
    from grading.scoring import totals

    report, second = first["report"], again["report"]
    redone = [c["id"] for c in second.get("checkpoints") or []]
    if second.get("error") or not redone:
        note = f"grading {', '.join(redone) or 'its timing items'} again alone failed ({second.get('error')}); " \
               "this is the first grading's report"
        return dict(first, report=dict(report, notes=[*(report.get("notes") or []), note]))
    new = {c["id"]: c for c in second["checkpoints"]}
    checkpoints = [new.get(c["id"], c) for c in report.get("checkpoints") or []]
    score, max_score = totals(checkpoints)
    note = f"{', '.join(redone)} graded again alone (timing items lost while other submissions were graded: " \
           f"{'; '.join(_lost_messages(report, redone))})"
    merged = dict(report, checkpoints=checkpoints, score=score, max_score=max_score,
                  duration_s=round(float(report.get("duration_s") or 0) + float(second.get("duration_s") or 0), 3),
                  notes=[*(report.get("notes") or []), note])
    log = f"{first.get('log') or ''}\n--- {', '.join(redone)} graded again alone ---\n{again.get('log') or ''}"
    return dict(first, report=merged, log=log, notes=[*first.get("notes", []), *again.get("notes", [])])


def _render(folder: Path, sub: Submission, overrides: list[dict]) -> dict[str, Any]:
    """Write the five report files from ``graded.json`` with the overrides applied; return the report."""
    graded = json.loads((folder / "graded.json").read_text(encoding="utf-8"))
    final = apply_overrides(graded, overrides)
    final["student_id"] = sub.student_id
    write_all(final, folder)
    final["student_name"] = sub.name
    return final


def _install(out: Path, sub: Submission, result: dict[str, Any]) -> Path:
    """Put a finished submission's files in ``out/submissions/<key>`` (replacing an older grading)."""
    subs = out / "submissions"
    staging = subs / f".staging-{sub.key}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    atomic_write_text(staging / "graded.json", to_json(result["report"]))
    atomic_write_text(staging / "pytest.log", result.get("log") or "")
    final = subs / sub.key
    if final.exists():
        trash = subs / f".old-{sub.key}-{os.getpid()}"
        os.replace(final, trash)
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(staging, final)
    return final


class _Progress:
    def __init__(self, total: int, quiet: bool) -> None:
        self.bar = None
        if quiet or total == 0:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.bar = Progress(TextColumn("[bold]grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.description}"),
                            transient=False)
        self.task = self.bar.add_task("", total=total)
        self.bar.start()

    def advance(self, text: str) -> None:
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=text)

    def extend(self, more: int) -> None:
        """``more`` steps added to the total (submissions graded a second time)."""
        if self.bar is not None:
            self.bar.update(self.task, total=(self.bar.tasks[0].total or 0) + more)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _kill_own_children() -> None:
    """After an interruption: stop the grading children this process started (and theirs)."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            child.kill()
        except psutil.Error:
            pass


def _clean_leftovers(out: Path, work: Path) -> None:
    """Remove what a killed run left half-done (scratch folders, staged reports); we hold the lock."""
    for stale in list((out / "submissions").glob(".staging-*")) + list((out / "submissions").glob(".old-*")):
        shutil.rmtree(stale, ignore_errors=True)
    if work.is_dir():
        for stale in work.iterdir():
            if not stale.name.startswith("export-"):
                shutil.rmtree(stale, ignore_errors=True)


def run_batch(opts: BatchOptions) -> dict[str, Any]:
    out = Path(opts.out).resolve()
    rubric = load_rubric()
    only_list = [p.strip() for p in opts.only.split(",") if p.strip()] if opts.only else None
    checkpoint_ids = [c.id for c in rubric.select(only_list)]          # KeyError: unknown id
    overrides = read_overrides(opts.overrides, rubric) if opts.overrides else {}
    jobs = opts.jobs or default_jobs()
    isolation_notes = _isolation_notes(opts)
    with batch_lock(out):
        manifest = Manifest(out / "manifest.jsonl")
        work = out / ".work"
        _clean_leftovers(out, work)
        subs, notes = discover(Path(opts.src), work=work)
        notes = opts.notes + isolation_notes + _busy_note() + notes
        unknown = sorted(set(overrides) - {s.student_id for s in subs})
        if unknown:
            notes.append(f"overrides for students not in this batch were not applied: {', '.join(unknown[:10])}")
        batch_seed = opts.seed if opts.seed is not None else (manifest.batch_seed() or resolve_seed(None))
        done = manifest.latest_done()
        todo = [s for s in subs if opts.regrade or s.key not in done or not _same_grading(done[s.key], s, opts)
                or not (out / "submissions" / s.key / "graded.json").is_file()]
        by_key = {s.key: s for s in subs}
        manifest.append({"event": "batch", "grader_version": __version__, "batch_seed": batch_seed,
                         "tier": opts.tier, "only": opts.only, "official": opts.official, "jobs": jobs,
                         "executor": opts.executor, "src": str(Path(opts.src).resolve()),
                         "submissions": len(subs), "to_grade": len(todo)})
        finals: dict[str, dict] = {}
        applied_before = manifest.latest_overrides()

        def finish(sub: Submission, folder: Path) -> None:
            mine = overrides.get(sub.student_id, [])
            finals[sub.key] = _render(folder, sub, mine)
            applied = finals[sub.key].get("overrides", [])
            if applied != applied_before.get(sub.key, []):
                manifest.append({"event": "overrides", "key": sub.key, "student_id": sub.student_id,
                                 "applied": applied})
                applied_before[sub.key] = applied

        def on_start(task: dict) -> None:
            manifest.append({"event": "started", "key": task["key"], "seed": task["seed"]})

        timing_lost: dict[str, list[str]] = {}     # key -> timing items lost while others were graded too
        first_results: dict[str, dict] = {}        # key -> its first grading, while some is graded again

        def on_result(task: dict, result: dict) -> None:
            sub = by_key[task["key"]]
            if task.get("alone_after") is not None and sub.key in first_results:
                result = _merge_regrade(first_results.pop(sub.key), result)
            folder = _install(out, sub, result)
            finish(sub, folder)
            report = result["report"]
            lost = _timing_items_lost(report, rubric)
            again = task.get("alone_after")
            if lost and jobs > 1 and again is None:
                timing_lost[sub.key] = lost
                first_results[sub.key] = result
            manifest.append({"event": "done", "key": sub.key, "student_id": sub.student_id, "source": sub.source,
                             "hash": sub.content_hash, "grader_version": report.get("grader_version", __version__),
                             "seed": task["seed"], "tier": opts.tier, "only": opts.only, "official": opts.official,
                             "status": "error" if report.get("error") else "ok", "score": report.get("score"),
                             "max_score": report.get("max_score"), "error": report.get("error"),
                             "notes": result.get("notes", []), "duration_s": report.get("duration_s"),
                             "result": f"submissions/{sub.key}/report.json",
                             **({"graded_alone_after": again} if again is not None else {})})
            progress.advance(f"{sub.key}: {report.get('score', 0):g}" + (" (error)" if report.get("error") else "")
                             + (" (graded again alone)" if again is not None else ""))

        started = time.monotonic()
        progress = _Progress(len(todo), opts.quiet)
        previous = signal.signal(signal.SIGTERM, signal.default_int_handler)   # a kill runs the finally below
        interrupted = False
        executor = make_executor(opts.executor, jobs, opts.address) if todo else None
        try:
            if executor is not None:
                executor.run([_task(s, opts, batch_seed, work) for s in todo], on_start, on_result)
            if timing_lost:
                # Measured times spoiled by the batch's own load must not cost correct work points: grade
                # the checkpoints of those items again once the batch is done, with nothing else graded, at
                # most one submission per core at once (one keeps a core ~35 % busy), and keep that result
                # for them (only those checkpoints: a whole regrade took 30 s alone). One at a time made
                # ten such regrades a quarter of a 50-copy batch's time on 2 cores.
                quiet_jobs = max(1, min(jobs, os.cpu_count() or 1))
                notes.append(f"{len(timing_lost)} submission(s) lost timing items while {jobs} were graded at "
                             "once; the checkpoints of those items were graded again alone (nothing else "
                             f"graded, at most {quiet_jobs} at once on {os.cpu_count()} cores) and their "
                             "reports hold the second grading's result")
                progress.extend(len(timing_lost))
                alone = make_executor("local", quiet_jobs, None)     # on this machine, nothing else graded
                try:
                    alone.run([_alone_task(_task(by_key[k], opts, batch_seed, work), lost)
                               for k, lost in timing_lost.items()], on_start, on_result)
                finally:
                    alone.close()
        except KeyboardInterrupt:
            interrupted = True
            _kill_own_children()
        finally:
            signal.signal(signal.SIGTERM, previous)
            progress.stop()
            if executor is not None:
                executor.close()
            graded = manifest.latest_done()
            for sub in subs:                 # everything graded so far, with the current overrides
                folder = out / "submissions" / sub.key
                if sub.key not in finals and sub.key in graded and (folder / "graded.json").is_file():
                    finish(sub, folder)
            rows = [finals[s.key] for s in subs if s.key in finals]
            paths = write_outputs(out, rows, checkpoint_ids, assignment=opts.assignment, notes=notes)
        return {"submissions": len(subs), "graded_now": sum(1 for s in todo if s.key in finals),
                "skipped": len(subs) - len(todo), "interrupted": interrupted, "jobs": jobs, "notes": notes,
                "elapsed_s": time.monotonic() - started, "paths": paths, "rows": rows,
                "errors": sum(1 for r in rows if r.get("error"))}
