#!/usr/bin/env python3
"""Gradescope's ``run_autograder``, shipped verbatim in the zip that ``gradescope-autograder`` builds.

Grades ``/autograder/submission`` with the checkpoints shipped beside it (``source/infergrade``, the
exact grader the zip was built from) and writes ``/autograder/results/results.json`` exactly once, in
a ``finally``: a grading that cannot run still produces a valid file (score 0, a visible
"Autograder failed" test saying why) instead of Gradescope's bare failure. Grading stops at the
deadline in ``autograder.json`` (before Gradescope's own timeout, which would score 0 without a word).

``INFERGRADE_AUTOGRADER_ROOT`` replaces ``/autograder`` (to run this locally against a fake tree).
It needs only the standard library until the grader is imported, so even a broken install is reported.
"""

import hashlib
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(os.environ.get("INFERGRADE_AUTOGRADER_ROOT", "/autograder"))
SOURCE = ROOT / "source"
GRADER = SOURCE / "infergrade"
RESULTS = ROOT / "results" / "results.json"
HINT = "The autograder could not grade this submission. Please tell your instructor."


def fallback_results(reason, elapsed):
    """``failure_results`` without importing the grader (it may be what is broken)."""
    return {"score": 0.0, "execution_time": round(elapsed, 3), "output": f"Autograder failed: {reason}",
            "output_format": "text", "visibility": "visible", "stdout_visibility": "hidden",
            "tests": [{"name": "Autograder failed", "score": 0.0, "max_score": 0.0, "status": "failed",
                       "output": f"{HINT}\n\nReason: {reason}", "output_format": "text", "visibility": "visible"}]}


def write_once(results):
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=2, allow_nan=False)
    tmp = RESULTS.with_name(f".{RESULTS.name}.tmp")
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, RESULTS)


def tree_hash(root, files):
    digest = hashlib.sha256()
    for rel in files:
        digest.update(rel.encode("utf-8") + b"\x00" + (root / rel).read_bytes() + b"\x01")
    return "sha256:" + digest.hexdigest()


def load_config():
    config = json.loads((SOURCE / "autograder.json").read_text(encoding="utf-8"))
    actual = tree_hash(GRADER, config["files"])
    if actual != config["source_sha256"]:
        raise RuntimeError("the grader in source/infergrade differs from the one this zip was built with; "
                           "rebuild the zip with 'python -m grading gradescope-autograder' and upload it again")
    sys.path.insert(0, str(GRADER))
    os.environ["PYTHONPATH"] = os.pathsep.join([str(GRADER), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    import grading

    if grading.__version__ != config["grader_version"] or Path(grading.__file__).resolve().parent != GRADER / "grading":
        raise RuntimeError(f"imported infergrade {grading.__version__} from {grading.__file__}, but this zip "
                           f"ships {config['grader_version']} in {GRADER}; re-run setup.sh")
    return config


def grade(config, started):
    from grading.batch.discovery import BatchSourceError, find_submission_root
    from grading.commands.grade import run_checkpoints
    from grading.reports.gradescope import failure_results, to_gradescope

    try:
        submission = find_submission_root(ROOT / "submission")
    except (BatchSourceError, OSError) as exc:
        return failure_results(f"{exc}. Upload the files of your submission folder (or a zip of it).",
                               execution_time=time.monotonic() - started)
    remaining = config["timeout_s"] - (time.monotonic() - started)
    with tempfile.TemporaryDirectory(prefix="infergrade-gs-") as tmp:
        try:
            report = run_checkpoints(submission, out_json=Path(tmp) / "report.json", tier=config["tier"],
                                     seed=None, only=config.get("only"), isolation=config.get("isolation", "auto"),
                                     official=True, quiet=True, log_path=Path(tmp) / "pytest.log",
                                     timeout_s=max(remaining, 30.0))
        except RuntimeError as exc:
            log = Path(tmp) / "pytest.log"
            print(log.read_text(errors="replace")[-20000:] if log.exists() else "")
            return failure_results(str(exc).split("\n")[0], execution_time=time.monotonic() - started)
        print(Path(tmp, "pytest.log").read_text(errors="replace")[-20000:])
    report["submission"] = "submission"
    report["duration_s"] = round(time.monotonic() - started, 3)
    results = to_gradescope(report)
    results["extra_data"]["autograder_built_at"] = config.get("built_at")
    return results


def main():
    started = time.monotonic()
    results = None
    try:
        config = load_config()
        results = grade(config, started)
    except BaseException as exc:  # noqa: BLE001 - whatever happened, Gradescope gets a results.json
        traceback.print_exc()
        reason = f"{type(exc).__name__}: {exc}" if not isinstance(exc, RuntimeError) else str(exc)
        results = fallback_results(reason, time.monotonic() - started)
    finally:
        if results is None:
            results = fallback_results("grading was interrupted", time.monotonic() - started)
        write_once(results)
        print(f"results.json written: score {results.get('score')}")
    return 0


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGTERM, signal.default_int_handler)   # a stop still writes results.json
    sys.exit(main())
