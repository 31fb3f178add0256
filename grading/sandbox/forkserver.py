"""One sandbox per submission whose workers are forked, not started: the grader's side of the zygote.

Every checkpoint gets a fresh worker (grading/sandbox/worker.py), and most workers import the same
heavy client libraries (``openai`` alone is ~1 s of CPU). A :class:`ForkServer` starts one confined
interpreter per graded submission (grading/sandbox/zygote.py: bubblewrap with the worker's view and
network namespace) that imports :data:`PRELOAD` once; each :class:`~grading.sandbox.client.Sandbox`
then asks it for a worker and gets a fork: a clean interpreter as far as the submission goes (no module
of it imported), in its own cgroups, with its own rlimits, environment, folder and pipes.

>>> with ForkServer(limits, env, relays) as server:          # doctest: +SKIP
...     proc = server.spawn(root, workdir, env, plan.rlimits(), [req_r, rep_w, out_w])
...     cgroups.adopt(proc.pid)                               # the grader's pid of the new worker

If the zygote dies (student code may kill anything in its sandbox), the next spawn starts a new one.
``INFERGRADE_FORKSERVER=0`` turns it off (each worker is then its own bubblewrap, as before).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from grading.sandbox.isolation import Plan, make_plan
from grading.sandbox.limits import Limits

#: Imported once per submission by the zygote: the client libraries student code uses (openai ~1 s of
#: CPU, huggingface_hub's InferenceClient ~0.3 s, ollama ~0.1 s on top of them, per worker otherwise).
#: huggingface_hub and ollama read the environment at import: a worker whose environment differs from
#: the zygote's in more than its home is not forked, and a forked one re-reads its home
#: (grading/sandbox/preload.py). ipykernel: for the notebook kernels, forked in the notebooks worker
#: (grading/sandbox/kernel_forker.py).
PRELOAD = ("openai", "httpx", "numpy", "huggingface_hub", "huggingface_hub.inference._client", "ollama",
           "ipykernel.kernelapp", "ipykernel.ipkernel")
ENV_SWITCH = "INFERGRADE_FORKSERVER"


class ForkServerError(RuntimeError):
    """The zygote could not be started or did not answer (the caller starts a worker the old way)."""


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") not in ("0", "false", "no")


class ForkedProcess:
    """A worker forked by the zygote, with the parts of ``subprocess.Popen`` the sandbox uses."""

    def __init__(self, server: "ForkServer", pid: int, inner_pid: int, zygote: subprocess.Popen) -> None:
        self.server = server
        self.pid = pid            # in the grader's pid namespace: for signals and cgroups
        self.inner_pid = inner_pid
        self.zygote = zygote      # the one that forked it (a later zygote is another pid namespace)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_status(self.inner_pid, self.zygote)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"forked worker {self.pid}", timeout or 0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ForkServer:
    """The zygote of one graded submission; its folder holds the workers' folders (``mkdtemp(dir=...)``)."""

    def __init__(self, limits: Limits, env: dict[str, str], relays: dict[int, str] | None,
                 isolation: str = "auto", preload: tuple[str, ...] = PRELOAD) -> None:
        self.limits = limits
        self.env = dict(env)
        self.relays = relays
        self.isolation = isolation
        self.preload = preload
        self.folder = Path(tempfile.mkdtemp(prefix="infergrade-zygote-"))
        self.home = self.folder / "home"
        self.home.mkdir()
        self.starts = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition()
        self._proc: subprocess.Popen | None = None
        self._plan: Plan | None = None
        self._control: socket.socket | None = None
        self._replies: dict[int, dict[str, Any]] = {}
        self._exits: dict[int, int] = {}
        self._next_tag = 0
        self._log = bytearray()

    def __enter__(self) -> "ForkServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the zygote ----------------------------------------------------------------------------
    def _start(self) -> None:
        from grading.sandbox.client import scrubbed_env

        self._stop()
        plan = make_plan(self.limits, self.isolation, self.relays)
        if not plan.use_bwrap:
            plan.cgroups.remove()
            raise ForkServerError("the fork server needs bubblewrap")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        out_r, out_w = os.pipe()
        argv = [sys.executable, "-I", "-m", "grading.sandbox.zygote", "--control", str(theirs.fileno()),
                "--preload", ",".join(self.preload)]
        try:
            proc = plan.launch(argv, self.folder, [theirs.fileno()], output=out_w,
                               env=scrubbed_env({**self.env, **plan.worker_env()}, self.home))
        except OSError as exc:
            for closing in (ours, theirs):
                closing.close()
            os.close(out_r)
            os.close(out_w)
            plan.cgroups.remove()
            raise ForkServerError(f"could not start the zygote: {exc}") from exc
        theirs.close()
        os.close(out_w)
        threading.Thread(target=self._drain, args=(out_r,), daemon=True).start()
        self._proc, self._plan, self._control = proc, plan, ours
        self.starts += 1
        ours.settimeout(self.limits.startup_timeout_s)
        try:
            hello = json.loads(ours.recv(1 << 16) or b"{}")
        except (OSError, ValueError) as exc:
            self._stop()
            raise ForkServerError(f"the zygote did not start ({exc}): {self.log_tail()}") from None
        if hello.get("op") != "ready":
            self._stop()
            raise ForkServerError(f"the zygote did not start: {self.log_tail()}")
        ours.settimeout(None)
        threading.Thread(target=self._read, args=(ours,), daemon=True).start()

    def _drain(self, fd: int) -> None:
        """The zygote's own output (a failed preload, a traceback): kept short, for error messages."""
        while chunk := os.read(fd, 1 << 16):
            self._log += chunk
            del self._log[:-4096]
        os.close(fd)

    def log_tail(self) -> str:
        return self._log.decode("utf-8", "replace")[-1500:]

    def _read(self, control: socket.socket) -> None:
        while True:
            try:
                packet = control.recv(1 << 16)
            except OSError:
                packet = b""
            with self._changed:
                if not packet:
                    self._changed.notify_all()
                    return
                message = json.loads(packet)
                if message.get("op") == "exited":
                    self._exits[int(message["pid"])] = int(message["status"])
                elif "tag" in message:
                    self._replies[int(message["tag"])] = message
                self._changed.notify_all()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if self._control is not None:
            self._control.close()
            self._control = None
        if proc is not None and self._plan is not None:
            self._plan.stop(proc)
        if self._plan is not None:
            self._plan.cgroups.remove()
            self._plan = None
        with self._changed:
            self._replies.clear()
            self._exits.clear()

    def close(self) -> None:
        with self._lock:
            self._stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- workers -------------------------------------------------------------------------------
    def exit_status(self, inner_pid: int, zygote: subprocess.Popen | None) -> int | None:
        """A forked worker's status once it ended; -9 if its zygote is gone (the pid namespace with it)."""
        with self._changed:
            if inner_pid in self._exits:
                return self._exits.pop(inner_pid)
        if zygote is None or zygote.poll() is not None:
            return -9
        return None

    def spawn(self, root: Path, workdir: Path, env: dict[str, str], rlimits: dict[str, int],
              fds: list[int]) -> ForkedProcess:
        """Fork a worker serving ``root`` on the pipes ``fds`` (request in, reply out, output), with
        ``env`` as its whole environment and ``rlimits`` (by ``resource`` name); return it once its pid
        in this namespace is known."""
        with self._lock:
            if not self.alive():
                self._start()
            assert self._control is not None and self._proc is not None
            self._next_tag += 1
            tag = self._next_tag
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            ours.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            request = {"op": "spawn", "tag": tag, "root": str(root), "workdir": str(workdir),
                       "env": env, "limits": rlimits}
            try:
                socket.send_fds(self._control, [json.dumps(request).encode()], [*fds, theirs.fileno()])
            except OSError as exc:
                ours.close()
                theirs.close()
                self._stop()
                raise ForkServerError(f"the zygote is gone ({exc})") from None
            theirs.close()
            proc = self._proc
        try:
            pid = _peer_pid(ours, self.limits.startup_timeout_s)
        finally:
            ours.close()
        with self._changed:
            self._changed.wait_for(lambda: tag in self._replies or not self.alive(), timeout=5)
            reply = self._replies.pop(tag, None)
        if pid is None or reply is None or "pid" not in reply:
            why = reply.get("message") if reply and reply.get("message") else self.log_tail()
            raise ForkServerError(f"the zygote did not fork a worker: {why}")
        return ForkedProcess(self, pid, int(reply["pid"]), proc)


def _peer_pid(sock: socket.socket, timeout_s: float) -> int | None:
    """The pid (in this namespace) of the process that wrote the hello on ``sock``."""
    sock.settimeout(timeout_s)
    try:
        data, ancillary, _, _ = sock.recvmsg(16, socket.CMSG_SPACE(struct.calcsize("3i")))
    except OSError:
        return None
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and data:
            pid, _, _ = struct.unpack("3i", payload[:struct.calcsize("3i")])
            return pid
    return None
