"""The student edition: what a student may have at home, and nothing an instructor keeps back.

In: ``student_template/``, the grading runtime and simulators (``grading/``, without the instructor
tools: batch, the Gradescope builder, this module), the checkpoints cut down to their *visible* tests
(hidden and after-due-date test functions are removed from the source, not just skipped), a rubric
that lists only those tests (each checkpoint worth its visible points), ``conftest.py``,
``pyproject.toml``, ``scripts/setup.sh`` and a README for students.
Out: ``reference/``, ``tests/``, ``benchmarks/``, the other scripts, docs, git metadata.

Official grading draws its own random simulator seeds, so numbers fitted to a seed seen at home fail.

Usage::

    info = build_bundle(Path("student-edition"))     # BUNDLE.json's content
"""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

from grading import __version__
from grading.context import REPO_ROOT
from grading.packaging import grader_files, tree_hash
from grading.rubric import DEFAULT_RUBRIC, Rubric, load_rubric

__all__ = ["build_bundle", "BundleError", "strip_tests", "visible_rubric_text", "INSTRUCTOR_ONLY"]

INSTRUCTOR_ONLY = ("grading/batch/", "grading/autograder/", "grading/commands/batch.py",
                   "grading/commands/gradescope_autograder.py", "grading/commands/bundle.py",
                   "grading/bundle.py", "grading/packaging.py", "grading/rubric.toml",
                   "grading/reports/templates/batch_summary.html.j2")
EXTRA_FILES = ("scripts/setup.sh",)

README = """# {title}: student edition (infergrade {version})

This folder lets you check your lab at home exactly as it will be graded, minus the hidden tests.

1. Install (Python 3.10+): `./scripts/setup.sh` (creates `.venv/`), then `. .venv/bin/activate`.
2. Work in `student_template/` (or a copy of it): implement `inference_lab/`, the notebooks, `results/`
   and `REPORT.md`. `student_template/README.md` explains every function.
3. Check: `pytest checkpoints --submission student_template` or
   `python -m grading grade student_template --only auth` for one checkpoint.
4. Practise: `python -m grading run -- jupyter lab` runs your notebooks against the simulated services.

What this edition checks: the visible tests only ({visible:g} of {total:g} points). Official grading
also runs {hidden} hidden test(s) worth {hidden_points:g} points, and it uses its own random simulator
seeds: numbers that only match a seed you saw here will not pass there. Make your code measure,
never copy numbers.

Platforms: Linux gets the full sandbox (bubblewrap, cgroups); macOS and Windows run the `sim` tier
with a process-level sandbox (the report says which isolation was used).
"""


class BundleError(RuntimeError):
    """The bundle cannot be built (the message says what to fix)."""


def strip_tests(source: str, remove: set[str]) -> str:
    """``source`` without the top-level functions named in ``remove`` (decorators included)."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    cut: list[tuple[int, int]] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in remove:
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            cut.append((start - 1, node.end_lineno or node.lineno))
    for start, end in sorted(cut, reverse=True):
        del lines[start:end]
    return "".join(lines)


def visible_rubric_text(text: str, rubric: Rubric) -> str:
    """The rubric's text with non-visible test entries removed and each checkpoint's points re-summed."""
    out, current = [], None
    hidden = {(c.id, t.name) for c in rubric.checkpoints for t in c.tests if t.visibility != "visible"}
    for line in text.splitlines(keepends=True):
        header = re.match(r"^\[checkpoints\.([A-Za-z0-9_]+)\]\s*$", line)
        if header or line.startswith("["):
            current = header[1] if header else None
        entry = re.match(r'^\s*\{\s*name\s*=\s*"([^"]+)"', line)
        if current and entry and (current, entry[1]) in hidden:
            continue
        if current and re.match(r"^points\s*=", line):
            checkpoint = rubric.checkpoint(current)
            if checkpoint.tests:
                line = f"points = {sum(t.points for t in checkpoint.tests if t.visibility == 'visible'):g}\n"
        out.append(line)
    return "".join(out)


def _copy(rel: str, dest: Path, source_root: Path = REPO_ROOT) -> None:
    target = dest / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source_root / rel, target)


def build_bundle(dest: Path, *, rubric_path: Path | None = None) -> dict:
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise BundleError(f"{dest} exists and is not empty; choose a new folder (the bundle is written from scratch)")
    rubric_path = Path(rubric_path or DEFAULT_RUBRIC)
    rubric = load_rubric(rubric_path)
    dest.mkdir(parents=True, exist_ok=True)
    files = [f for f in grader_files(REPO_ROOT, checkpoints=False)
             if not f.startswith(INSTRUCTOR_ONLY) and f != "README.md"]
    for rel in files + [f for f in EXTRA_FILES if (REPO_ROOT / f).is_file()]:
        _copy(rel, dest)
    shutil.copytree(REPO_ROOT / "student_template", dest / "student_template",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc", ".env"))
    removed: list[str] = []
    for module in sorted((REPO_ROOT / "checkpoints").glob("test_*.py")):
        checkpoint_id = module.stem[len("test_"):]
        try:
            checkpoint = rubric.checkpoint(checkpoint_id)
        except KeyError:
            raise BundleError(f"{module.name} has no checkpoint in {rubric_path}") from None
        hide = {t.name for t in checkpoint.tests if t.visibility != "visible"}
        removed += [f"{checkpoint_id}.{name}" for name in sorted(hide)]
        if checkpoint.tests and len(hide) == len(checkpoint.tests):
            continue                              # nothing visible left: the module stays home
        target = dest / "checkpoints" / module.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(strip_tests(module.read_text(encoding="utf-8"), hide), encoding="utf-8")
    (dest / "grading" / "rubric.toml").write_text(
        visible_rubric_text(rubric_path.read_text(encoding="utf-8"), rubric), encoding="utf-8")
    load_rubric(dest / "grading" / "rubric.toml")              # still consistent?
    total = rubric.max_score
    hidden_points = sum(t.points for c in rubric.checkpoints for t in c.tests if t.visibility != "visible")
    (dest / "README.md").write_text(README.format(
        title="Hugging Face Platform and Local Inference", version=__version__, visible=total - hidden_points,
        total=total, hidden=len(removed), hidden_points=hidden_points), encoding="utf-8")
    shipped = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    info = {"grader_version": __version__, "hidden_tests_removed": len(removed), "hidden_points": hidden_points,
            "visible_points": total - hidden_points, "files": len(shipped), "sha256": tree_hash(dest, shipped)}
    (dest / "BUNDLE.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info
