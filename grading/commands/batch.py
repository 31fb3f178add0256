"""``python -m grading batch SRC --out DIR``: grade a class, N submissions at a time, resumably."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from grading.context import TIERS

HELP = """Grade every submission in SRC: a folder of submission folders, a folder of zips, or an LMS export
zip (Canvas, Moodle, Gradescope: one folder or zip per student; the student id is read from the names,
or from Gradescope's submission_metadata.yml).

Each submission is graded in its own child process with its own services, --jobs at a time. Into
--out go submissions/<student>/ (the five report files, graded.json, pytest.log), grades.csv,
canvas.csv (a gradebook column), summary.html (+ histogram.png, pass_rates.png) and manifest.jsonl.

Resumable: run the same command again after an interruption and only what is missing is graded
(--regrade grades everything again). A submission that cannot be graded (bad or unsafe zip, no
inference_lab/ package, a hang past --timeout) is a row with 0 and the reason; the batch goes on.

--overrides CSV (columns student_id, target, points, reason): target is CHECKPOINT.TEST, CHECKPOINT or
total; points 7 sets the score, +2 or -1.5 adjusts it. Re-running with a changed file re-applies it
without grading again.

Exit code: 0 when every submission was graded, 1 when some could not be (see grades.csv), 2 when the
batch itself could not run, 130 when interrupted (run it again to continue).

Isolation: official grading (the default) refuses to run unless each worker can be sandboxed by
bubblewrap with a loopback-only network of its own (Linux); --allow-weak-isolation grades with the
process-level sandbox instead, and every report records which isolation was used."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("batch", help="grade a folder or export of submissions", description=HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="folder of submissions (folders or zips), or an export zip")
    parser.add_argument("--out", type=Path, required=True, help="output folder (created; reused on re-runs)")
    parser.add_argument("--jobs", "-j", type=int, default=None,
                        help="submissions graded at once (default: 4 per core, as free memory allows, at most 16)")
    parser.add_argument("--regrade", action="store_true", help="grade again what the manifest says is done")
    parser.add_argument("--tier", choices=TIERS, default="sim", help="services to grade against (default: sim)")
    parser.add_argument("--only", default=None, help="comma-separated checkpoint ids, e.g. auth,hardware")
    parser.add_argument("--seed", type=int, default=None,
                        help="batch seed; each submission's simulator seed derives from it (default: random, "
                             "kept in the manifest so a resumed batch uses the same seeds)")
    parser.add_argument("--isolation", choices=("auto", "bwrap", "process"), default="auto",
                        help="worker confinement (default: the strongest available)")
    parser.add_argument("--allow-weak-isolation", action="store_true",
                        help="grade officially even where bubblewrap (with its own network per worker) is not "
                             "usable: the process-level sandbox only (refused by default)")
    parser.add_argument("--practice", action="store_true",
                        help="not official: skipped items are left out instead of scoring 0")
    parser.add_argument("--timeout", type=float, default=1800.0,
                        help="seconds one submission may take before it is stopped and scored 0 (default 1800)")
    parser.add_argument("--overrides", type=Path, default=None, help="CSV of manual adjustments (see above)")
    parser.add_argument("--executor", choices=("local", "ray"), default="local",
                        help="local process pool (default) or Ray tasks")
    parser.add_argument("--address", default=None, help="Ray cluster address (--executor ray; default: a local Ray)")
    parser.add_argument("--assignment", default="infergrade", help="column name in canvas.csv")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from grading.batch.discovery import BatchSourceError
    from grading.batch.executors import ExecutorError
    from grading.batch.manifest import BatchLockedError
    from grading.batch.overrides import OverrideError
    from grading.batch.runner import BatchOptions, WeakIsolationError, run_batch

    if args.jobs is not None and args.jobs < 1:
        print("error: --jobs must be 1 or more", file=sys.stderr)
        return 2
    options = BatchOptions(src=args.src, out=args.out, jobs=args.jobs, regrade=args.regrade, tier=args.tier,
                           only=args.only, seed=args.seed, isolation=args.isolation, official=not args.practice,
                           timeout_s=args.timeout if args.timeout > 0 else None, overrides=args.overrides,
                           executor=args.executor, address=args.address, assignment=args.assignment,
                           quiet=args.quiet, allow_weak_isolation=args.allow_weak_isolation)
    try:
        summary = run_batch(options)
    except (BatchSourceError, ExecutorError, BatchLockedError, OverrideError, WeakIsolationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    for note in summary["notes"]:
        print(f"note: {note}")
    print(f"{summary['submissions']} submissions: {summary['graded_now']} graded now, "
          f"{summary['skipped']} already graded, {summary['errors']} could not be graded; "
          f"{summary['jobs']} at a time, {summary['elapsed_s']:.1f} s")
    print("outputs: " + ", ".join(str(p) for p in summary["paths"].values()))
    if summary["interrupted"]:
        print("interrupted: run the same command again to grade the rest", file=sys.stderr)
        return 130
    return 1 if summary["errors"] else 0
