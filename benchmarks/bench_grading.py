"""Prints the worker's start-up time and the wall time of grading reference/ (run by hand, not in CI).

    .venv/bin/python benchmarks/bench_grading.py [--repeat 5]

Target on a 2-core machine: a worker ready in <= 1.5 s.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.sandbox.client import Sandbox
from grading.sandbox.limits import Limits
from grading.services import start_services


def worker_startup(repeat: int) -> list[float]:
    """Seconds from Popen to the worker's ready message, and to its first answered call."""
    times = []
    with start_services("sim", seed=1) as services:
        env = services.env("hf_" + "x" * 34)
        for _ in range(repeat):
            with Sandbox(REPO_ROOT / "reference", limits=Limits(), env=env) as box:
                started = time.monotonic()
                box.start()
                box.call("hardware.estimate_memory_gb", 7, 16)
                times.append(time.monotonic() - started)
                isolation = box.isolation
    print(f"isolation: {isolation}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--only", default=None,
                        help="time grading only these checkpoints, e.g. the five Hugging Face ones: "
                             "auth,hf_chat,hf_image,provider_strategies,failover")
    args = parser.parse_args()
    startup = worker_startup(args.repeat)
    print(f"worker ready + first call: median {statistics.median(startup):.3f} s, "
          f"max {max(startup):.3f} s over {len(startup)} starts")
    walls = []
    for _ in range(max(1, args.repeat // 2)):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.monotonic()
            report = run_checkpoints(REPO_ROOT / "reference", out_json=Path(tmp) / "r.json", seed=1,
                                     only=args.only)
            walls.append(time.monotonic() - started)
    what = f" --only {args.only}" if args.only else ""
    print(f"grading reference/{what}: median {statistics.median(walls):.2f} s over {len(walls)} runs "
          f"(score {report['score']}/{report['max_score']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
