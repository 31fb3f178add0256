"""``python -m grading run -- CMD...``: run a command against the tier's services.

For practice (``jupyter lab``, a script): the command gets the environment
the grading worker gets — the canary ``HF_TOKEN``, the service URLs, no
proxies — and every Python process it starts redirects the real HF hosts
to the simulator at the transport level, without touching the student's
code: a temporary folder with a ``sitecustomize.py`` is put first on
``PYTHONPATH``; it loads ``grading/sandbox/redirect.py`` by path (the
grader never lands on the student's ``sys.path``) and then runs any
``sitecustomize`` that was there before.

Usage::

    python -m grading run -- python my_script.py
    python -m grading run --seed 7 -- jupyter lab

    # from code or tests, with services of your own:
    rc = run_with_services(["python", "x.py"], ServiceSet(redirects={...}), canary=make_canary(1))
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

from grading.canary import make_canary
from grading.services import PROXY_VARS, ServiceSet, start_services
from grading.sims.seeds import resolve_seed

__all__ = ["register", "main", "build_child_env", "write_sitecustomize", "run_with_services"]

REDIRECT_PY = Path(__file__).resolve().parent.parent / "sandbox" / "redirect.py"

DESCRIPTION = """\
Start the services of a tier and run CMD with the environment a grading
worker gets: HF_TOKEN set to a fake (canary) token, HF_ENDPOINT,
OPENAI_BASE_URL, OLLAMA_HOST pointing at the services, no proxies, and
requests to huggingface.co / router.huggingface.co redirected to the
simulator inside every Python process CMD starts. Prints the services and
their URLs to stderr, forwards CMD's exit status, stops the services after.

example:  python -m grading run -- jupyter lab
"""

_SITECUSTOMIZE = '''\
# Written by `python -m grading run`: install infergrade's host redirection,
# then run the sitecustomize this one shadows (if any).
def _infergrade_setup():
    import importlib.machinery
    import importlib.util
    import os
    import sys

    try:
        spec = importlib.util.spec_from_file_location("_infergrade_redirect", {redirect_py!r})
        module = importlib.util.module_from_spec(spec)
        sys.modules["_infergrade_redirect"] = module
        spec.loader.exec_module(module)
        module.install_from_env()
    except Exception as exc:
        sys.stderr.write("infergrade: host redirection not installed: %r\\n" % (exc,))
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    try:
        spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
    except Exception as exc:
        sys.stderr.write("Error in sitecustomize; set PYTHONVERBOSE for traceback:\\n%r\\n" % (exc,))


_infergrade_setup()
del _infergrade_setup
'''


def register(subparsers: Any) -> None:
    """Add the ``run`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "run",
        help="run a command with the services redirected and the canary token set",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--tier", choices=("sim", "local"), default="sim", help="sim (default) or local")
    parser.add_argument("--seed", type=int, default=None, help="simulator seed (default: random, printed)")
    parser.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command to run, after --")
    parser.set_defaults(func=main)


def write_sitecustomize(folder: str | os.PathLike[str], redirect_py: Path = REDIRECT_PY) -> Path:
    """Write the redirecting ``sitecustomize.py`` into ``folder``; return its path."""
    path = Path(folder) / "sitecustomize.py"
    path.write_text(_SITECUSTOMIZE.format(redirect_py=str(redirect_py)), encoding="utf-8")
    return path


def build_child_env(
    services: ServiceSet,
    canary: str,
    sitecustomize_dir: str | os.PathLike[str],
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The child's environment: ``base`` (default os.environ) minus proxies,
    plus the services' variables, with ``sitecustomize_dir`` first on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    for name in PROXY_VARS:
        env.pop(name, None)
    env.update(services.env(canary))
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = os.fspath(sitecustomize_dir) + (os.pathsep + old if old else "")
    return env


def run_with_services(
    cmd: Sequence[str],
    services: ServiceSet,
    *,
    canary: str,
    base_env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``cmd`` against ``services``; return its exit status (128+N if killed by signal N).

    Ctrl-C reaches the child through the terminal; here it is ignored
    until the child exits, and SIGTERM is passed on to the child.
    """
    with tempfile.TemporaryDirectory(prefix="infergrade-run-") as tmp:
        write_sitecustomize(tmp)
        env = build_child_env(services, canary, tmp, base_env)
        try:
            child = subprocess.Popen(list(cmd), env=env, cwd=cwd)
        except OSError as exc:
            print(f"cannot run {cmd[0]!r}: {exc}", file=sys.stderr)
            return 127
        restore = _forward_signals(child)
        try:
            rc = child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            rc = child.wait()
        finally:
            restore()
    return 128 - rc if rc < 0 else rc


def _forward_signals(child: subprocess.Popen[Any]) -> Any:
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child got it from the tty
    old_term = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))

    def restore() -> None:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)

    return restore


def main(args: argparse.Namespace) -> int:
    """Start the services, run the command, stop the services; return its status."""
    cmd = list(args.cmd or [])
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        print("run: give the command to run after --, e.g. `run -- python script.py`", file=sys.stderr)
        return 2
    seed = resolve_seed(args.seed)
    with start_services(args.tier, seed) as services:
        print(f"infergrade run: tier {args.tier}, seed {seed}", file=sys.stderr)
        for line in services.describe():
            print(f"  {line}", file=sys.stderr)
        sys.stderr.flush()
        return run_with_services(cmd, services, canary=make_canary(seed))


if __name__ == "__main__":  # handy before the main CLI wires it in
    _parser = argparse.ArgumentParser(prog="python -m grading.commands.run")
    _sub = _parser.add_subparsers(dest="command", required=True)
    register(_sub)
    _args = _parser.parse_args(["run", *sys.argv[1:]])
    sys.exit(_args.func(_args))
