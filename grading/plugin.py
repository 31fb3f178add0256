"""The pytest plugin that turns checkpoint test outcomes into scores.

Registered by the root ``conftest.py``. Adds ``--submission``, ``--tier``, ``--seed``, ``--only``,
``--official``, ``--isolation`` and ``--report-json``; records each checkpoint test's outcome with a
student-facing message (``report.user_properties`` carries the checkpoint and points, as pytest's own
junitxml reads them), and at the end scores everything against the rubric (``grading.scoring``).
"""

from __future__ import annotations

import gc
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from grading import __version__
from grading.context import REPO_ROOT, TIERS, GradingContext, checkpoint_id_of, library_versions
from grading.rubric import load_rubric
from grading.sandbox.errors import StudentCodeError
from grading.scoring import Outcome, build_checkpoints, totals
from grading.seal import read_key, write_sealed
from grading.selection import NOT_SELECTED, asked_for, mark_not_selected
from grading.sims.seeds import resolve_seed

CONTEXT_KEY = pytest.StashKey[GradingContext]()
OUTCOMES_KEY = pytest.StashKey[list]()
STARTED_KEY = pytest.StashKey[float]()
SEAL_KEY = pytest.StashKey[bytes]()
MAX_MESSAGE = 1500


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("infergrade", "infergrade grading")
    group.addoption("--submission", default=str(REPO_ROOT / "student_template"),
                    help="the submission folder to grade (default: student_template/)")
    group.addoption("--tier", default="sim", choices=TIERS,
                    help="services to grade against: sim (built-in simulators), local (real engines), "
                         "live (your own Ollama/vLLM/Hugging Face)")
    group.addoption("--seed", type=int, default=None, help="simulator seed (default: random, recorded)")
    group.addoption("--only", default=None, help="grade only these checkpoint ids, comma-separated")
    group.addoption("--official", action="store_true",
                    help="official grading: a skipped item scores 0 with its reason, like a failure")
    group.addoption("--isolation", default="auto", choices=("auto", "bwrap", "process"),
                    help="worker confinement (auto: the strongest this machine allows)")
    group.addoption("--rubric", default=None, help="rubric file (default: grading/rubric.toml)")
    group.addoption("--report-json", default=None, help="write the scored report (report.json schema) here")
    group.addoption("--seal-fd", type=int, default=None,
                    help="read the seal key from this inherited pipe and sign --report-json (grading/seal.py)")


def _only(config: pytest.Config) -> list[str] | None:
    raw = config.getoption("--only")
    return [part.strip() for part in raw.split(",") if part.strip()] if raw else None


def pytest_configure(config: pytest.Config) -> None:
    rubric = load_rubric(config.getoption("--rubric"))
    if config.getoption("--official") and os.environ.get("INFERGRADE_FAKE_NVML"):
        raise pytest.UsageError("INFERGRADE_FAKE_NVML is set (a fake GPU for the grader's own tests): official "
                                "grading must see the real machine; unset it")
    only = _only(config)
    if only:
        try:
            rubric.select(only)
        except KeyError as exc:
            raise pytest.UsageError(str(exc.args[0])) from None
    config.stash[CONTEXT_KEY] = GradingContext(
        submission=Path(config.getoption("--submission")).resolve(), tier=config.getoption("--tier"),
        seed=resolve_seed(config.getoption("--seed")), rubric=rubric, official=config.getoption("--official"),
        isolation_mode=config.getoption("--isolation"), only=only)
    config.stash[OUTCOMES_KEY] = []
    config.stash[STARTED_KEY] = time.monotonic()
    config.addinivalue_line("markers", "runs_last: a checkpoint test that judges what every worker of the "
                                       "session did; it runs after all the others")
    if _grading_session(config) and config.getoption("tbstyle", "auto") == "auto":
        # long tracebacks list each frame's arguments, the canary among them: a grading's log keeps it out
        config.option.tbstyle = "short"
    seal_fd = config.getoption("--seal-fd")
    if seal_fd is not None:  # now, before any worker exists: the key never reaches student code
        config.stash[SEAL_KEY] = read_key(seal_fd)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Everything imported so far (pytest, the grader, the checkpoints, the simulators) lives until the
    # end: out of the collector's sight, its collections no longer walk it (0.37 -> 0.14 s per grading).
    if _grading_session(session.config):
        gc.freeze()


def _base_name(item: pytest.Item) -> str:
    return getattr(item, "originalname", None) or item.name.split("[")[0]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    context = config.stash[CONTEXT_KEY]
    keep, drop = [], []
    for item in items:
        checkpoint_id = checkpoint_id_of(item.path)
        if checkpoint_id is None:
            keep.append(item)
            continue
        if context.only and checkpoint_id not in context.only:
            drop.append(item)
            continue
        try:
            checkpoint = context.rubric.checkpoint(checkpoint_id)
        except KeyError:
            raise pytest.UsageError(f"{item.path.name} has no checkpoint in {context.rubric.path}") from None
        if checkpoint.test(_base_name(item)) is None:
            raise pytest.UsageError(f"{item.nodeid} has no entry in {context.rubric.path} "
                                    f"(checkpoint {checkpoint_id!r}); every test must carry points there")
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    # A test marked runs_last (auth's check of printed output) judges what every checkpoint's workers
    # did, so it runs after all of them, whatever its module.
    last = [item for item in items if item.get_closest_marker("runs_last") is not None]
    if last:
        items[:] = [item for item in items if item.get_closest_marker("runs_last") is None] + last


def pytest_deselected(items: list[pytest.Item]) -> None:
    """In an unofficial run, a test -k/-m left out is an outcome: "not run" (0 points). Each parametrized
    case counts, so a case that ran earns only its share. Official runs record nothing here: what did not
    run has no result and scores 0 as such."""
    for item in items:
        checkpoint_id = checkpoint_id_of(item.path)
        context = item.config.stash.get(CONTEXT_KEY, None)
        if checkpoint_id is None or context is None or context.official:
            continue
        if context.only and checkpoint_id not in context.only:
            continue  # --only's own deselection: not in the report at all
        item.config.stash[OUTCOMES_KEY].append(Outcome(
            checkpoint=checkpoint_id, test=_base_name(item), name=item.name, outcome="skipped",
            message=NOT_SELECTED))


def student_message(excinfo: pytest.ExceptionInfo[BaseException]) -> tuple[str, str]:
    """(outcome, message) for a failed call: what failed, in words a student can act on."""
    exc = excinfo.value
    if isinstance(exc, StudentCodeError):
        return "failed", str(exc)
    if isinstance(exc, AssertionError):
        text = str(exc).split("\nassert ")[0].strip() or "assertion failed"
        return "failed", text
    if isinstance(exc, pytest.fail.Exception):
        return "failed", str(exc)
    return "error", f"grader error in this test ({type(exc).__name__}: {exc}); scored 0"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    checkpoint_id = checkpoint_id_of(item.path)
    if checkpoint_id is None:
        return report
    record = None
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.passed:
            record = ("passed", "")
        elif report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            record = ("skipped", reason.removeprefix("Skipped: "))
        elif call.excinfo is not None:
            outcome, message = student_message(call.excinfo)
            if report.when == "setup" and outcome == "failed":
                outcome = "error"
            record = (outcome, message)
        else:
            record = ("failed", "failed")
    if record is not None:
        outcome, message = record
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + " …[truncated]"
        item.config.stash[OUTCOMES_KEY].append(Outcome(
            checkpoint=checkpoint_id, test=_base_name(item), name=item.name, outcome=outcome,
            message=message, duration_s=report.duration))
        report.user_properties.append(("checkpoint", checkpoint_id))
    return report


def build_report(config: pytest.Config) -> dict[str, Any]:
    context = config.stash[CONTEXT_KEY]
    checkpoints = build_checkpoints(context.rubric, config.stash[OUTCOMES_KEY], context.only)
    if not context.official:  # a student's narrowed run: report what it ran (official runs fail closed)
        checkpoints = mark_not_selected(checkpoints, asked_for(config.args, config.invocation_params.dir))
    score, max_score = totals(checkpoints)
    if not context.hardware:
        from grading.hardware import detect_hardware

        context.hardware = detect_hardware()
    return {
        "submission": context.submission.name, "tier": context.tier, "score": score, "max_score": max_score,
        "duration_s": round(time.monotonic() - config.stash[STARTED_KEY], 3),
        "hardware": context.hardware, "isolation": context.isolation or "none (no student code was run)",
        "notes": list(context.notes),
        "seed": context.seed, "grader_version": __version__, "libraries": library_versions(),
        "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "error": None,
        "checkpoints": checkpoints,
    }


def _grading_session(config: pytest.Config) -> bool:
    return any(checkpoint_id_of(Path(str(arg).split("::")[0])) is not None or
               Path(str(arg)).resolve() == REPO_ROOT / "checkpoints" for arg in config.args)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if not _grading_session(config):
        return
    report = build_report(config)
    config.stash[CONTEXT_KEY].hardware = report["hardware"]
    config._infergrade_report = report  # type: ignore[attr-defined]
    path = config.getoption("--report-json")
    if path:
        key = config.stash.get(SEAL_KEY, None)
        if key is None:
            Path(path).write_text(json.dumps(report, indent=2))
        else:
            write_sealed(Path(path), json.dumps(report, indent=2), key)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    report = getattr(config, "_infergrade_report", None)
    if report is None:
        return
    from grading.reports.terminal import print_summary

    terminalreporter.write_line("")
    print_summary(report)
