"""Prints the time to execute the three reference notebooks in one sandboxed worker (run by hand).

    .venv/bin/python benchmarks/bench_notebooks.py [--repeat 3]

Per notebook: the kernel's start (a fresh ipykernel, ready to execute), the first code cell (the
imports: huggingface_hub, openai, PIL...) and the whole notebook; then the op's wall time.
"""

from __future__ import annotations

import argparse
import statistics
import time

from grading.canary import make_canary
from grading.context import REPO_ROOT
from grading.rubric import load_rubric
from grading.sandbox import notebooks
from grading.sandbox.client import Sandbox
from grading.services import start_services

NAMES = ["image_generation_practice.ipynb", "chat_inference_practice.ipynb", "ollama_practice.ipynb"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    limits = load_rubric().checkpoint("notebooks").limits
    walls: list[float] = []
    with start_services("sim", seed=11, names=["hf", "ollama"]) as services:
        canary = make_canary(11)
        services.services["hf"].expected_token = canary
        for _ in range(args.repeat):
            with Sandbox(REPO_ROOT / "reference", limits=limits, env=services.env(canary)) as lab:
                lab.ping()
                started = time.monotonic()
                summary = notebooks.run_in_sandbox(lab, NAMES, cell_timeout_s=30)
                walls.append(time.monotonic() - started)
            for nb in summary["notebooks"]:
                code = [c for c in nb["cells"] if c["t_start"] is not None]
                first = code[0]["t_end"] - code[0]["t_start"] if code else float("nan")
                print(f"  {nb['name']:<34} {nb['status']:<6} kernel {nb['kernel_start_s']:.2f} s, "
                      f"first cell {first:.2f} s, notebook {nb['duration_s']:.2f} s")
            print(f"three notebooks: {walls[-1]:.2f} s ({lab.isolation})")
    print(f"median of {len(walls)}: {statistics.median(walls):.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
