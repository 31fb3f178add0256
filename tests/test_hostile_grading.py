"""Hostile code inside an otherwise correct submission costs only its own item, through the whole grader.

Each case is the reference with ``hardware.fits`` replaced by one misbehaviour; grading ``--only
hardware`` must still give the other four items their points, give ``test_fits`` none, say why, and
leave the grader and the machine as they were.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT

OUTSIDE = REPO_ROOT / "PWNED_BY_SUBMISSION"

HOSTILE_FITS = {
    "infinite_loop": ("while True:\n    pass", "did not return within"),
    "fork_bomb": ("import os, time\ntry:\n    while True:\n        if os.fork() == 0:\n"
                  "            time.sleep(60)\n            os._exit(0)\nexcept OSError:\n    return True", ""),
    "allocate_1gb": ("block = bytearray(1024**3)\nreturn len(block) > 0", "memory"),
    "print_100mb": ("for _ in range(100):\n    print('x' * 1_000_000)\nreturn True", "printed"),
    "os_exit": ("import os\nos._exit(3)", "exited with code 3"),
    "sys_exit": ("import sys\nsys.exit(0)", "sys.exit"),
    "non_json": ("return {True}", "not plain JSON"),
    "write_outside": (f"open({str(OUTSIDE)!r}, 'w').write('x')\nreturn True", "Read-only file system"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_FITS))
def test_hostile_fits_costs_only_its_item(kind: str, tmp_path: Path) -> None:
    body, expected_message = HOSTILE_FITS[kind]
    sub = tmp_path / "sub"
    shutil.copytree(REPO_ROOT / "reference", sub)
    hardware = sub / "inference_lab" / "hardware.py"
    hardware.write_text(hardware.read_text() + "\n\ndef fits(*args, **kwargs):\n"
                        + textwrap.indent(body, "    ") + "\n")
    report = run_checkpoints(sub, out_json=tmp_path / "r.json", seed=11, only="hardware")
    (checkpoint,) = report["checkpoints"]
    fits_tests = [t for t in checkpoint["tests"] if t["name"].startswith("test_fits")]
    others = [t for t in checkpoint["tests"] if not t["name"].startswith("test_fits")]
    assert all(t["score"] == 0 for t in fits_tests), fits_tests
    assert all(t["outcome"] == "passed" for t in others), others
    assert checkpoint["score"] == checkpoint["max_score"] - sum(t["max_score"] for t in fits_tests)
    if expected_message:
        assert any(expected_message in t["message"] for t in fits_tests), fits_tests
    assert not OUTSIDE.exists()
