"""``python -m grading gradescope-autograder --out autograder.zip``: the zip Gradescope runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from grading.context import TIERS

HELP = """Build the autograder zip to upload in Gradescope (Configure Autograder > Zip file upload).

It holds setup.sh (installs this exact infergrade version from the source shipped in the zip),
run_autograder (grades /autograder/submission with these checkpoints, official mode, a fresh random
seed, and writes /autograder/results/results.json once, also when grading cannot run) and
autograder.json (version, checkpoints, tier, deadline, a hash of every shipped file).

Set Gradescope's timeout above --timeout (default 540 s, under Gradescope's default 10 minutes), so a
hanging submission gets a results.json that says why instead of Gradescope's silent 0. Give the image
at least 2 GB of memory and Ubuntu 22.04 or later (Python 3.10+)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("gradescope-autograder", help="build the Gradescope autograder zip",
                                   description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("autograder.zip"), help="zip to write (default: autograder.zip)")
    parser.add_argument("--tier", choices=TIERS, default="sim", help="services to grade against (default: sim)")
    parser.add_argument("--only", default=None, help="grade only these checkpoint ids, comma-separated")
    parser.add_argument("--timeout", type=float, default=540.0,
                        help="seconds grading may take before it stops and reports why (default 540)")
    parser.add_argument("--isolation", choices=("auto", "bwrap", "process"), default="auto",
                        help="worker confinement on Gradescope (default: the strongest available)")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from grading.autograder.build import build_zip

    if args.timeout < 60:
        print("error: --timeout must be at least 60 seconds", file=sys.stderr)
        return 2
    try:
        config = build_zip(args.out, tier=args.tier, only=args.only, timeout_s=args.timeout,
                           isolation=args.isolation)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: infergrade {config['grader_version']}, checkpoints {', '.join(config['checkpoints'])}, "
          f"tier {config['tier']}, {len(config['files'])} grader files, deadline {config['timeout_s']:g} s")
    return 0
