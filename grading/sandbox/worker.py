"""The worker: the only process that imports and runs student code.

Started by :class:`grading.sandbox.client.Sandbox` as ``python -I -m grading.sandbox.worker``.
``-I`` (isolated mode) ignores PYTHON* variables, the user site and the current folder, so a
``sitecustomize.py``, ``usercustomize.py`` or ``.pth`` file in a submission is never loaded.

Protocol (see :mod:`grading.sandbox.rpc`): requests arrive on ``--rpc-in``, one JSON object per
line; every request gets exactly one reply on ``--rpc-out``::

    {"id": 1, "op": "call", "target": "auth.get_token", "args": [], "kwargs": {},
     "env": {"HF_TOKEN": null}, "in_event_loop": false}
    {"id": 1, "ok": true, "value": "hf_..."}
    {"id": 1, "ok": false, "error": {"type": "KeyError", "mro": [...], "message": "...",
                                      "traceback": "...", "not_implemented": false}}
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from grading.sandbox import rpc

PACKAGE = "inference_lab"
MAX_MESSAGE_CHARS = 2000


def _student_traceback(exc: BaseException, root: Path) -> str:
    """The traceback frames that are in the submission: the student's code, never grader internals."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith(str(root))]
    lines = []
    for frame in frames[-8:]:
        rel = os.path.relpath(frame.filename, root)
        lines.append(f'  File "{rel}", line {frame.lineno}, in {frame.name}')
        if frame.line:
            lines.append(f"    {frame.line}")
    return "\n".join(lines)


def _error(exc: BaseException, root: Path, *, stage: str) -> dict[str, Any]:
    if isinstance(exc, SystemExit):
        message = f"called sys.exit({exc.code!r}); a lab function must return or raise, not exit"
    else:
        message = str(exc)
    return {
        "type": type(exc).__name__,
        "mro": [cls.__name__ for cls in type(exc).__mro__],
        "message": message[:MAX_MESSAGE_CHARS],
        "traceback": _student_traceback(exc, root),
        "not_implemented": isinstance(exc, NotImplementedError) and stage == "call",
        "stage": stage,
    }


class _EnvPatch:
    """Sets and unsets environment variables for one call, then restores them."""

    def __init__(self, changes: dict[str, str | None]) -> None:
        self.changes = changes
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        for key, value in self.changes.items():
            self.saved[key] = os.environ.get(key)
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _resolve(target: str) -> Callable[..., Any]:
    module_name, _, func_name = target.rpartition(".")
    module = importlib.import_module(f"{PACKAGE}.{module_name}")
    func = getattr(module, func_name, None)
    if func is None or not callable(func):
        raise AttributeError(f"{PACKAGE}.{module_name} has no function {func_name!r}")
    return func


def _run_in_event_loop(func: Callable[..., Any], args: list, kwargs: dict) -> Any:
    """Call ``func`` synchronously from inside a running loop, as a Jupyter cell would."""

    async def inside() -> Any:
        return func(*args, **kwargs)

    return asyncio.run(inside())


class Worker:
    def __init__(self, root: Path, rpc_in: int, rpc_out: int) -> None:
        self.root = root
        self.reader = rpc.LineReader(rpc_in, max_bytes=64 * 2**20)
        self.rpc_out = rpc_out

    def reply(self, message: dict[str, Any]) -> None:
        rpc.write_message(self.rpc_out, message)

    def handle_call(self, request: dict[str, Any]) -> dict[str, Any]:
        target = request["target"]
        try:
            func = _resolve(target)
        except BaseException as exc:  # noqa: BLE001 - any import failure is the student's
            return {"ok": False, "error": _error(exc, self.root, stage="import")}
        args, kwargs = request.get("args", []), request.get("kwargs", {})
        try:
            with _EnvPatch(request.get("env") or {}):
                if request.get("in_event_loop"):
                    value = _run_in_event_loop(func, args, kwargs)
                else:
                    value = func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt included
            return {"ok": False, "error": _error(exc, self.root, stage="call")}
        try:
            rpc.encode(value)
        except (TypeError, ValueError) as exc:
            return {"ok": False, "error": {"type": "BadResult", "mro": ["BadResult"], "stage": "result",
                                           "message": f"returned {type(value).__name__} that is not plain "
                                                      f"JSON data ({exc})", "traceback": "",
                                           "not_implemented": False}}
        return {"ok": True, "value": value}

    def handle_notebook(self, request: dict[str, Any]) -> dict[str, Any]:
        """Execute notebooks of the submission headless (grading/sandbox/notebooks.py)."""
        try:
            from grading.sandbox import notebooks

            return {"ok": True, "value": notebooks.run_request(self.root, request)}
        except BaseException as exc:  # noqa: BLE001 - reported, never fatal to the worker
            return {"ok": False, "error": _error(exc, self.root, stage="notebook")}

    def serve(self) -> None:
        self.reply({"op": "ready", "pid": os.getpid(), "python": sys.version.split()[0]})
        while True:
            try:
                request = self.reader.read(timeout_s=None)
            except rpc.RpcClosed:
                return
            op = request.get("op")
            if op == "call":
                answer = self.handle_call(request)
            elif op == "notebook":
                answer = self.handle_notebook(request)
            elif op == "ping":
                answer = {"ok": True, "value": "pong"}
            elif op == "exit":
                self.reply({"id": request.get("id"), "ok": True, "value": None})
                return
            else:
                answer = {"ok": False, "error": {"type": "UnknownOp", "mro": [], "message": str(op),
                                                 "traceback": "", "not_implemented": False}}
            answer["id"] = request.get("id")
            sys.stdout.flush()
            sys.stderr.flush()
            self.reply(answer)


def start_relays(spec: str, timeout_s: float = 10.0) -> int:
    """Start the loopback relays of this worker's network namespace (grading/sandbox/netrelay.py), wait
    until they listen, so that the first request of student code finds its service; return the relay's pid.

    The relay is a fork of this worker taken before the submission is on ``sys.path`` (a new
    interpreter cost ~30 ms of CPU per worker); it keeps no file descriptor of the worker's but its
    stdout and stderr, so the grader still sees the RPC pipes close when the worker dies.
    """
    import resource
    import select
    import traceback

    from grading.sandbox import netrelay

    mapping = netrelay.parse_map(spec)
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:   # the relay
        code = 1
        try:
            os.close(ready_r)
            highest = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
            os.closerange(3, ready_w)
            os.closerange(ready_w + 1, highest if highest != resource.RLIM_INFINITY else 65536)

            def ready() -> None:
                os.write(ready_w, b"ready\n")
                os.close(ready_w)

            netrelay.run(mapping, ready)
            code = 0
        except BaseException:  # noqa: BLE001 - said on stderr; the worker reports that the relays did not start
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(ready_w)
    ready, _, _ = select.select([ready_r], [], [], timeout_s)
    line = os.read(ready_r, 64) if ready else b""
    os.close(ready_r)
    if line.strip() != b"ready":
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        raise SystemExit("the network relays of the worker did not start")
    return pid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rpc-in", type=int, required=True)
    parser.add_argument("--rpc-out", type=int, required=True)
    parser.add_argument("--root", type=Path, required=True, help="the submission copy to import from")
    args = parser.parse_args(argv)
    # A write past RLIMIT_FSIZE should raise OSError in the student's code, not kill the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    relays = os.environ.pop("INFERGRADE_NET_RELAYS", None)
    if relays:   # first: before anything of the submission can be imported
        start_relays(relays)
    run(args.root, args.rpc_in, args.rpc_out)


def run(root: Path | str, rpc_in: int, rpc_out: int) -> None:
    """Serve requests for the submission at ``root`` (a fresh process, or one forked by the zygote)."""
    os.set_inheritable(rpc_in, False)
    os.set_inheritable(rpc_out, False)
    root = Path(root).resolve()
    os.chdir(root)
    sys.path.insert(0, str(root))
    # Stand-in modules the grader's tier provides (sim: a `vllm` that records what it is asked), after the
    # submission itself; set by the services (grading/sims/openai_server), never by the submission.
    for extra in filter(None, os.environ.get("INFERGRADE_EXTRA_SYSPATH", "").split(os.pathsep)):
        sys.path.insert(1, extra)
    redirects = os.environ.get("INFERGRADE_REDIRECTS")
    if redirects and json.loads(redirects):
        from grading.sandbox import redirect

        redirect.install_from_env()
    Worker(root, rpc_in, rpc_out).serve()


if __name__ == "__main__":
    main()
