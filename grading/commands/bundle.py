"""``python -m grading bundle --out DIR``: the student edition of the grader."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

HELP = """Write the student edition into DIR (a new or empty folder): student_template/, the visible
checkpoints (hidden and after-due-date tests are cut out of the source), the grading runtime and
simulators, a rubric of the visible tests, scripts/setup.sh and a README for students.
Never in it: reference/, tests/, benchmarks/, hidden tests, the instructor commands (batch,
gradescope-autograder, bundle). BUNDLE.json records what was left out."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("bundle", help="build the student edition", description=HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder to write (new or empty)")
    parser.add_argument("--rubric", type=Path, default=None,
                        help="rubric whose visibility decides what ships (default: grading/rubric.toml)")
    parser.add_argument("--zip", action="store_true", help="also write DIR.zip")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    import shutil

    from grading.bundle import BundleError, build_bundle
    from grading.rubric import RubricError

    try:
        info = build_bundle(args.out, rubric_path=args.rubric)
    except (BundleError, RubricError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {info['files']} files, {info['visible_points']:g} visible points; "
          f"{info['hidden_tests_removed']} hidden test(s) ({info['hidden_points']:g} points) left out")
    if args.zip:
        archive = shutil.make_archive(str(args.out), "zip", root_dir=args.out)
        print(f"wrote {archive}")
    return 0
