"""Notebook kernels forked from a process that imported ipykernel and the client libraries once.

A Jupyter kernel is a new Python that imports ipykernel, IPython, and then whatever the notebook's
code imports (``openai``, ``huggingface_hub``, ``ollama``): ~1.2 s of CPU per kernel, three kernels per
graded submission. Inside the notebooks worker, :func:`start` forks a *forker* (before nbclient starts
any thread, and only while no module of the submission is imported, so every kernel is fresh as far as
the notebook goes) that imports :data:`PRELOAD`, then forks one kernel per request.

jupyter_client still launches and manages a process per kernel, as always: a small stub,
``python -I -m grading.sandbox.kernel_forker STUB SOCKET -f CONNECTION_FILE``, which hands its
environment, folder and standard streams to the forker, forwards the signals it gets (interrupt,
terminate) to the kernel and exits with the kernel's status. If the stub dies (nbclient kills it), the
kernel notices (its lifeline pipe closes) and exits. Where the forker is unavailable, or the kernel's
environment differs from the worker's where a preloaded library read it at import
(grading/sandbox/preload.py), the stub becomes a normal kernel (``exec`` of ``python -m
ipykernel_launcher``).
"""

from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
from typing import Any

from grading.sandbox import preload
from grading.sandbox.forking import ended_children, fork_child

#: imported by the forker where its parent has not (the worker's zygote preloads them: see
#: grading/sandbox/forkserver.py); a library only one notebook uses gains nothing here
PRELOAD = ("ipykernel.kernelapp", "ipykernel.ipkernel")
#: what a kernel's environment adds to the worker's, none of it read by a preloaded library at import
KERNEL_ENV = ("PYTHONPATH", "MPLBACKEND", "PYDEVD_DISABLE_FILE_VALIDATION", "JPY_PARENT_PID", "JPY_SESSION_NAME")
MAX_PACKET = 1 << 20


def usable() -> bool:
    """Whether this process may fork the forker now: one thread, and no module of the submission loaded."""
    return (hasattr(os, "fork") and threading.active_count() == 1
            and not any(name == "inference_lab" or name.startswith("inference_lab.") for name in sys.modules))


def start() -> tuple[str, int]:
    """Fork the forker; return the path of its socket and its pid. It ends when this process does."""
    folder = tempfile.mkdtemp(prefix="infergrade-kernels-")
    path = os.path.join(folder, "forker.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(path)
    listener.listen(8)
    parent = os.getpid()
    pid = fork_child(lambda: _serve(listener, parent))
    listener.close()
    return path, pid


def stop(pid: int, socket_path: str) -> None:
    """End the forker (its kernels end with their stubs) and remove its socket."""
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    shutil.rmtree(os.path.dirname(socket_path), ignore_errors=True)


def stub_argv(socket_path: str) -> list[str]:
    """The kernel command jupyter_client runs (its ``{connection_file}`` filled in by jupyter_client)."""
    return [sys.executable, "-I", "-m", "grading.sandbox.kernel_forker", "stub", socket_path,
            "-f", "{connection_file}"]


# -- the forker ------------------------------------------------------------------------------------
def _serve(listener: socket.socket, parent: int) -> None:
    # Nothing of the worker's but its output: a kernel must never reach the worker's RPC pipes (a reply
    # written there would be taken for the worker's). An exec'd kernel lost them by O_CLOEXEC.
    keep = listener.fileno()
    highest = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    os.closerange(3, keep)
    os.closerange(keep + 1, highest if highest != resource.RLIM_INFINITY else 65536)
    preload.import_modules(PRELOAD)   # a failure: the kernel imports it itself, and says what is wrong
    stubs: dict[int, socket.socket] = {}   # kernel pid -> its stub's connection
    while os.getppid() == parent:
        ready, _, _ = select.select([listener], [], [], 0.1)
        for pid, status in ended_children() if stubs else ():
            conn = stubs.pop(pid, None)
            if conn is not None:
                try:
                    conn.send(json.dumps({"status": status}).encode())
                except OSError:
                    pass
                conn.close()
        if not ready:
            continue
        conn, _ = listener.accept()
        try:
            packet, fds, _, _ = socket.recv_fds(conn, MAX_PACKET, 4)
            request = json.loads(packet)
        except (OSError, ValueError):
            conn.close()
            continue
        conflict = preload.env_conflict(os.environ, request.get("env") or {}, ignore=KERNEL_ENV)
        if len(fds) != 4 or conflict:
            for fd in fds:
                os.close(fd)
            if conflict:   # the stub starts a kernel the usual way
                conn.send(json.dumps({"refused": conflict}).encode())
            conn.close()
            continue

        def kernel(conn: socket.socket = conn, request: dict[str, Any] = request, fds: list[int] = fds) -> None:
            listener.close()
            conn.close()
            for other in stubs.values():
                other.close()
            _become_kernel(request, fds)

        pid = fork_child(kernel)
        for fd in fds:
            os.close(fd)
        stubs[pid] = conn
        conn.send(json.dumps({"pid": pid}).encode())


def _become_kernel(request: dict[str, Any], fds: list[int]) -> None:
    stdin, stdout, stderr, lifeline = fds
    os.setsid()
    for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
    for fd, target in ((stdin, 0), (stdout, 1), (stderr, 2)):
        os.dup2(fd, target)
        os.close(fd)
    preload.use_environment(request["env"])
    os.chdir(request["cwd"])

    def watch_lifeline() -> None:   # the stub is gone (killed by jupyter_client): so is this kernel
        try:
            while os.read(lifeline, 64):
                pass
        finally:
            os._exit(1)

    threading.Thread(target=watch_lifeline, daemon=True, name="infergrade-lifeline").start()
    sys.argv = ["ipykernel_launcher", *request["args"]]
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=list(request["args"]))


# -- the stub jupyter_client runs --------------------------------------------------------------------
def _stub(socket_path: str, args: list[str]) -> None:
    def start_kernel() -> None:   # no fork: a normal kernel (PYTHONPATH as jupyter_client set it honoured)
        os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *args])

    try:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.connect(socket_path)
    except OSError:
        start_kernel()
    lifeline_r, lifeline_w = os.pipe()
    request = {"env": dict(os.environ), "cwd": os.getcwd(), "args": args}
    socket.send_fds(conn, [json.dumps(request).encode()], [0, 1, 2, lifeline_r])
    os.close(lifeline_r)
    answer = json.loads(conn.recv(MAX_PACKET) or b"{}")
    kernel = answer.get("pid")
    if not kernel and answer.get("refused"):
        conn.close()
        os.close(lifeline_w)
        start_kernel()
    if not kernel:
        sys.exit("the kernel forker did not start a kernel")

    def forward(signum: int, _frame: Any) -> None:
        try:
            os.kill(kernel, signum)
        except ProcessLookupError:
            pass

    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(number, forward)
    while True:
        try:
            reply = conn.recv(MAX_PACKET)
            break
        except InterruptedError:
            continue
    status = json.loads(reply or b'{"status": 1}').get("status", 1)
    os.close(lifeline_w)
    if status < 0:
        signal.signal(-status, signal.SIG_DFL)
        os.kill(os.getpid(), -status)
    sys.exit(status)


if __name__ == "__main__" and len(sys.argv) > 2 and sys.argv[1] == "stub":
    _stub(sys.argv[2], sys.argv[3:])
