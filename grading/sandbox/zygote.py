"""The fork server inside a submission's sandbox: one interpreter that imports the heavy client libraries
once, then forks a fresh worker for each checkpoint (grading/sandbox/forkserver.py is the grader's side).

Started as ``python -I -m grading.sandbox.zygote --control FD --preload openai,httpx`` inside bubblewrap.
It never imports student code: each worker it forks is a clean interpreter as far as the submission is
concerned (none of its modules imported), with the preloaded libraries already in ``sys.modules``.
A fresh interpreter per worker cost ~1 s of CPU where the student's code imports ``openai``.

Control protocol (a SOCK_SEQPACKET unix socket, one JSON object per packet):

* grader -> zygote: ``{"op": "spawn", "tag": 3, "root": ..., "workdir": ..., "env": {...},
  "limits": {...}}`` with four descriptors attached (SCM_RIGHTS): the worker's request pipe, its
  reply pipe, its output pipe and a unix socket on which the new worker says hello, so that the grader
  learns its pid (SO_PASSCRED) and moves it into the checkpoint's cgroups.
* zygote -> grader: ``{"op": "spawned", "tag": 3, "pid": <pid here>}``, and ``{"op": "exited",
  "pid": <pid here>, "status": <as subprocess: -signal or exit code>}`` when a worker ends.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import signal
import socket
import sys
from typing import Any

from grading.sandbox import preload, worker
from grading.sandbox.forking import ended_children, fork_child
from grading.sandbox.isolation import set_limit

MAX_PACKET = 1 << 20


def _become_worker(request: dict[str, Any], fds: list[int], control: socket.socket) -> None:
    """In the forked child: take the worker's descriptors, limits and environment, say hello, serve."""
    rpc_in, rpc_out, output, hello = fds
    control.close()
    os.setsid()
    for number in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    limits = request.get("limits") or {}
    for name, value in limits.items():
        set_limit(getattr(resource, name), int(value))
    preload.use_environment(request.get("env") or {})   # huggingface_hub's paths follow this worker's home
    os.chdir(request["workdir"])
    # The grader reads this pid (translated into its own namespace) from the socket's credentials.
    with socket.socket(fileno=hello) as hello_socket:
        hello_socket.sendall(b"hello")
    worker.run(request["root"], rpc_in, rpc_out)


def _spawn(request: dict[str, Any], fds: list[int], control: socket.socket) -> int:
    pid = fork_child(lambda: _become_worker(request, fds, control))
    for fd in fds:
        os.close(fd)
    return pid


def serve(control: socket.socket, relay_pid: int | None) -> None:
    """Fork workers on request and report their exits, until the grader closes the socket or the
    network relay dies (then this sandbox is no use: the grader starts another)."""

    def send(message: dict[str, Any]) -> None:
        control.send(json.dumps(message).encode())

    while True:
        ready, _, _ = select.select([control], [], [], 0.1)
        for pid, status in ended_children():   # every ended worker, and the relay
            if pid == relay_pid:
                raise SystemExit("the network relay ended")
            send({"op": "exited", "pid": pid, "status": status})
        if not ready:
            continue
        packet, fds, _, _ = socket.recv_fds(control, MAX_PACKET, 8)
        if not packet:
            return
        request = json.loads(packet)
        if request.get("op") != "spawn" or len(fds) != 4:
            for fd in fds:
                os.close(fd)
            send({"op": "error", "tag": request.get("tag"), "message": "bad request"})
            continue
        conflict = preload.env_conflict(os.environ, request.get("env") or {})
        if conflict:   # the grader starts this worker the usual way
            for fd in fds:
                os.close(fd)
            send({"op": "error", "tag": request.get("tag"), "message": f"not forked: {conflict}"})
            continue
        send({"op": "spawned", "tag": request.get("tag"), "pid": _spawn(request, fds, control)})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--control", type=int, required=True, help="the grader's SOCK_SEQPACKET socket")
    parser.add_argument("--preload", default="", help="comma-separated modules to import once")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    control = socket.socket(fileno=args.control)
    control.set_inheritable(False)
    relays = os.environ.pop("INFERGRADE_NET_RELAYS", None)
    relay_pid = worker.start_relays(relays) if relays else None
    for failure in preload.import_modules(filter(None, args.preload.split(","))):
        print(f"zygote: could not preload {failure}", file=sys.stderr)
    control.send(json.dumps({"op": "ready", "pid": os.getpid()}).encode())
    serve(control, relay_pid)


if __name__ == "__main__":
    main()
