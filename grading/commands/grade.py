"""``python -m grading grade PATH``: grade one submission and write the five report files."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grading.context import CHECKPOINTS_DIR, REPO_ROOT, TIERS
from grading.rubric import load_rubric
from grading.sandbox.isolation import HIDDEN_PATHS_ENV
from grading.seal import SealError, make_key_pipe, seal_path, verify
from grading.sims.seeds import resolve_seed

HELP = """Grade one submission folder (shaped like student_template/) against the checkpoints.

Prints a table (checkpoint, score, max, status, first failure) and writes report.json, report.md,
report.html, results.json (Gradescope) and junit.xml into --out. The exit code is 0 whenever grading
ran, whatever the score; it is 2 when grading itself could not run (the reason is printed)."""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("grade", help="grade one submission", description=HELP,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("submission", type=Path, help="submission folder (e.g. reference/)")
    parser.add_argument("--tier", choices=TIERS, default="sim", help="services to grade against (default: sim)")
    parser.add_argument("--out", type=Path, default=Path("grading-out"), help="report folder (default: grading-out/)")
    parser.add_argument("--only", default=None, help="comma-separated checkpoint ids, e.g. auth,hardware")
    parser.add_argument("--seed", type=int, default=None, help="simulator seed (default: random, recorded)")
    parser.add_argument("--isolation", choices=("auto", "bwrap", "process"), default="auto",
                        help="worker confinement (default: the strongest available)")
    parser.add_argument("--official", action="store_true", help="skipped items score 0 with their reason")
    parser.add_argument("--quiet", "-q", action="store_true", help="no live progress, only the table")
    parser.set_defaults(func=main)


def run_checkpoints(submission: Path, *, out_json: Path, tier: str = "sim", seed: int | None = None,
                    only: str | None = None, isolation: str = "auto", official: bool = False,
                    quiet: bool = True, log_path: Path | None = None,
                    timeout_s: float | None = None, hidden_paths: list[Path] | None = None) -> dict[str, Any]:
    """Run ``pytest checkpoints`` on a submission in a child process and return its scored report.

    The child is the grader (trusted); student code runs in workers it starts. Running pytest in a
    child keeps a crash of anything inside it from taking the caller (a batch) down. With
    ``timeout_s``, a run that takes longer is killed with everything it started and raises
    ``RuntimeError`` (a batch or Gradescope then records the reason instead of hanging).
    """
    # --noconftest with the plugins named by -p: no conftest.py is loaded at all, so none in the
    # submission can be (pytest would otherwise take an option's value that is a path as a folder to
    # load conftests from), and every option is "--name=value", one token, for the same reason.
    command = [sys.executable, "-m", "pytest", str(CHECKPOINTS_DIR), "-q", "--noconftest",
               "-p", "grading.plugin", "-p", "grading.fixtures", "-p", "pytest_timeout",
               "-p", "no:cacheprovider", "-p", "no:unraisableexception",
               f"--rootdir={REPO_ROOT}", f"--config-file={REPO_ROOT / 'pyproject.toml'}",
               f"--submission={submission}", f"--tier={tier}", f"--seed={resolve_seed(seed)}",
               f"--isolation={isolation}", f"--report-json={out_json}", "--color=no"]
    if only:
        command.append(f"--only={only}")
    if official:
        command.append("--official")
    # A fresh key per run, through a pipe only the pytest child inherits: the report is sealed with it
    # and checked here, so a report that student code wrote or changed is never scored (grading/seal.py).
    for stale in (out_json, seal_path(out_json)):
        stale.unlink(missing_ok=True)
    key, key_fd = make_key_pipe()
    command.append(f"--seal-fd={key_fd}")
    # Bytecode and pytest's rewritten checkpoints are cached (in grading/ and checkpoints/, never the
    # submission: student code runs only in workers, which do not write any): ~5 s of CPU per run.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    # Only the plugins named above: the others installed (hypothesis, benchmark, anyio, ...) cost
    # a quarter second of imports per run and have no business in grading; pytest's own
    # unraisableexception (disabled above) runs a full collection at the end (~0.1 s) to warn about
    # objects whose __del__ failed, which a grading does not report.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if hidden_paths:   # folders the workers must not see (grading/sandbox/isolation.py)
        env[HIDDEN_PATHS_ENV] = os.pathsep.join(str(Path(p).resolve()) for p in hidden_paths)
    output = None if not quiet else subprocess.PIPE
    try:
        if timeout_s is None:
            proc = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                  text=True, errors="replace", pass_fds=(key_fd,))
        else:
            proc = _run_with_deadline(command, env, output, timeout_s, pass_fds=(key_fd,))
    finally:
        os.close(key_fd)
    if log_path is not None and proc.stdout:
        log_path.write_text(proc.stdout)
    if not out_json.exists():
        tail = (proc.stdout or "")[-3000:]
        raise RuntimeError(f"the checkpoint run produced no report (pytest exit code {proc.returncode})\n{tail}")
    try:
        return json.loads(verify(out_json, key))
    except SealError as exc:
        raise RuntimeError(f"the report failed its integrity check ({exc}); not scored") from None


def _run_with_deadline(command: list[str], env: dict[str, str], output: Any, timeout_s: float,
                       pass_fds: tuple[int, ...] = ()) -> subprocess.CompletedProcess:
    """``subprocess.run`` with a deadline that also kills the child's descendants (workers, kernels)."""
    import psutil

    # errors="replace": pytest's output quotes the submission's file names, which need not be UTF-8
    with subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                          text=True, errors="replace", pass_fds=pass_fds) as child:
        try:
            stdout, _ = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            try:
                root = psutil.Process(child.pid)
                family = [root, *root.children(recursive=True)]
            except psutil.Error:
                family = []
            for proc in family:
                try:
                    proc.kill()
                except psutil.Error:
                    pass
            try:
                child.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # a descendant that escaped still holds the pipe
                pass
            raise RuntimeError(f"grading took longer than {timeout_s:g} s and was stopped; the submission "
                               "probably hangs (an endless loop or a call that never returns)") from None
    return subprocess.CompletedProcess(command, child.returncode, stdout)


def main(args: argparse.Namespace) -> int:
    from grading.reports import write_all
    from grading.reports.gradescope import failure_results
    from grading.reports.terminal import print_summary

    from grading.sandbox.isolation import weak_isolation_reason

    started = time.monotonic()
    weak = weak_isolation_reason(args.isolation)
    if weak:
        print(f"warning: weak isolation: {weak}; the submission's code runs as a plain process with limits "
              "(report.json records the isolation used)", file=sys.stderr)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    submission = args.submission.resolve()
    try:
        if not submission.is_dir():
            raise RuntimeError(f"{args.submission} is not a folder; give the path of a submission folder")
        if args.only:
            load_rubric().select([p.strip() for p in args.only.split(",") if p.strip()])
        with tempfile.TemporaryDirectory(prefix="infergrade-grade-") as tmp:
            report = run_checkpoints(submission, out_json=Path(tmp) / "report.json", tier=args.tier,
                                     seed=args.seed, only=args.only, isolation=args.isolation,
                                     official=args.official, quiet=args.quiet, log_path=out / "pytest.log")
    except (RuntimeError, KeyError, OSError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) else str(exc)
        results = failure_results(f"grading could not run: {reason}", execution_time=time.monotonic() - started)
        (out / "results.json").write_text(json.dumps(results, indent=2))
        print(f"error: grading could not run: {reason}", file=sys.stderr)
        return 2
    report["submission"] = args.submission.name or submission.name
    report["duration_s"] = round(time.monotonic() - started, 3)
    paths = write_all(report, out)
    print_summary(report)
    print(f"reports: {', '.join(str(p) for p in paths.values())}")
    return 0
