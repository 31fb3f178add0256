"""The grader's side of a worker: start it confined, call student functions, survive anything.

>>> with Sandbox(Path("reference"), limits=Limits(), env={"HF_TOKEN": canary}) as lab:
...     lab.call("auth.get_token")
'hf_...'

A hang, crash, ``os._exit``, segfault, memory blow-up, megabytes of output or a non-JSON result
raises a :class:`~grading.sandbox.errors.StudentCodeError` that says what happened; the next call
gets a fresh worker. Nothing the student does can raise anything else here.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grading.sandbox import errors, rpc
from grading.sandbox.isolation import Plan, make_plan
from grading.sandbox.diskwatch import DiskWatch
from grading.sandbox.forkserver import ForkedProcess, ForkServer, ForkServerError
from grading.sandbox.limits import Limits
from grading.sandbox.output import OutputDrain
from grading.sandbox.submission_copy import copy_submission

BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL", "TZ", "TERM", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def scrubbed_env(extra: dict[str, str], home: Path) -> dict[str, str]:
    """A minimal environment: no proxies, no grader secrets, an empty HOME and HF_HOME of its own."""
    env = {key: os.environ[key] for key in BASE_ENV_KEYS if key in os.environ}
    env.update({
        "HOME": str(home),
        "HF_HOME": str(home / ".cache" / "huggingface"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "NO_PROXY": "127.0.0.1,localhost,::1",
        "no_proxy": "127.0.0.1,localhost,::1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "MPLBACKEND": "Agg",
    })
    env.update(extra)
    return env


class Sandbox:
    """One confined worker over a private copy of a submission.

    ``env`` holds the service URLs and the canary token; ``limits`` come from the rubric.
    ``isolation`` is ``auto`` (the strongest available), ``bwrap`` (required) or ``process``.
    ``forkserver``: the submission's zygote (grading/sandbox/forkserver.py), which forks workers
    instead of starting a new interpreter each; where it fails, a worker is started the usual way.
    """

    def __init__(self, submission: Path, *, limits: Limits | None = None,
                 env: dict[str, str] | None = None, isolation: str = "auto",
                 watch_output: tuple[str, ...] = (), relays: dict[int, str] | None = None,
                 forkserver: ForkServer | None = None) -> None:
        self.source = Path(submission).resolve()
        if not (self.source / "inference_lab").is_dir():
            raise errors.SandboxUnavailable(f"{self.source} has no inference_lab/ package")
        self.limits = limits or Limits()
        self.extra_env = dict(env or {})
        self.isolation_mode = isolation
        self.relays = None if relays is None else dict(relays)
        self.watch_output = tuple(watch_output)
        self._output_hits: list[tuple[int, str]] = []
        self._output_base = 0   # bytes printed by earlier workers of this sandbox
        self.forkserver = forkserver
        # under the zygote's folder, the one its sandbox can write to
        self._tmp = Path(tempfile.mkdtemp(prefix="infergrade-", dir=forkserver.folder if forkserver else None))
        self.workdir = self._tmp / "work"
        self.root = self.workdir / "submission"
        self.home = self.workdir / "home"
        try:
            #: what the copy left out (special files, links out of the submission), with the reason
            self.dropped = copy_submission(self.source, self.root)
        except errors.SandboxUnavailable:
            shutil.rmtree(self._tmp, ignore_errors=True)
            raise
        self.home.mkdir(parents=True)
        self.plan: Plan | None = None
        self.proc: subprocess.Popen | ForkedProcess | None = None
        self.reader: rpc.LineReader | None = None
        self.drain: OutputDrain | None = None
        self.disk: DiskWatch | None = None
        self._rpc_out_fd = -1
        self._next_id = 0
        self.used_s = 0.0
        self.startup_s: float | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def isolation(self) -> str:
        """The isolation in words, for the report."""
        if self.plan is None:
            self.plan = make_plan(self.limits, self.isolation_mode, self.relays)
        return self.plan.describe()

    @property
    def own_network(self) -> bool:
        """Whether the worker has a loopback-only network of its own (where only the relays answer)."""
        if self.plan is None:
            self.plan = make_plan(self.limits, self.isolation_mode, self.relays)
        return self.plan.own_network

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self._stop_process()
        if self.plan is None:
            self.plan = make_plan(self.limits, self.isolation_mode, self.relays)
        started = time.monotonic()
        req_r, req_w = os.pipe()   # grader -> worker
        rep_r, rep_w = os.pipe()   # worker -> grader
        out_r, out_w = os.pipe()   # worker's stdout and stderr
        self.proc = self._fork(req_r, rep_w, out_w) if self.forkserver is not None else None
        if self.proc is None:
            argv = [sys.executable, "-I", "-m", "grading.sandbox.worker",
                    "--rpc-in", str(req_r), "--rpc-out", str(rep_w), "--root", str(self.root)]
            try:
                self.proc = self.plan.launch(argv, self.workdir, [req_r, rep_w], output=out_w,
                                             env=scrubbed_env({**self.extra_env, **self.plan.worker_env()}, self.home))
            except OSError as exc:
                for fd in (req_r, req_w, rep_r, rep_w, out_r, out_w):
                    os.close(fd)
                raise errors.SandboxUnavailable(f"could not start the worker: {exc}") from exc
        for fd in (req_r, rep_w, out_w):
            os.close(fd)
        self._rpc_out_fd = req_w
        self.reader = rpc.LineReader(rep_r, self.limits.reply_bytes)
        self.drain = OutputDrain(out_r, base_offset=self._output_base, watch=self.watch_output,
                                  hits=self._output_hits)
        self.drain.start()
        try:
            hello = self.reader.read(self.limits.startup_timeout_s)
        except rpc.RpcError as exc:
            _, tail = self.drain.snapshot()
            self._stop_process()
            raise errors.SandboxUnavailable(f"the worker did not start ({exc}); its output:\n{tail[-1500:]}")
        if hello.get("op") != "ready":
            self._stop_process()
            raise errors.SandboxUnavailable(f"unexpected first message from the worker: {hello!r}")
        self.plan.cgroups.mark_oom_baseline()
        # a forked worker can write anywhere in the zygote's folder: watch all of it
        watched = self.forkserver.folder if isinstance(self.proc, ForkedProcess) else self.workdir
        self.disk = DiskWatch(watched, self.limits.disk_mb, on_exceeded=self._kill_now).start()
        self.startup_s = time.monotonic() - started

    def _fork(self, req_r: int, rep_w: int, out_w: int) -> ForkedProcess | None:
        """A worker forked by the submission's zygote, in this sandbox's cgroups; None where the zygote
        cannot give one (then this sandbox starts its workers the usual way from now on)."""
        assert self.plan is not None and self.forkserver is not None
        if not self.plan.use_bwrap:
            self.forkserver = None
            return None
        try:
            proc = self.forkserver.spawn(self.root, self.workdir, scrubbed_env(self.extra_env, self.home),
                                         self.plan.rlimits(), [req_r, rep_w, out_w])
        except ForkServerError:
            self.forkserver = None
            return None
        try:
            self.plan.cgroups.adopt(proc.pid)
        except OSError:   # it ended already: the hello read below reports how
            pass
        return proc

    def close(self) -> None:
        self._stop_process()
        if self.plan is not None:
            self.plan.cgroups.remove()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _kill_now(self, proc: subprocess.Popen | None = None) -> None:
        """Kill the worker and all it started (its process group and its cgroup), from any thread; the
        pending call then reports why."""
        proc = proc or self.proc
        if proc is not None and self.plan is not None:
            self.plan.kill(proc)

    def _stop_process(self) -> None:
        if self.disk is not None:
            # wait for a kill it may be doing: it empties the cgroup, where the next worker will run
            self.disk.stop()
            self.disk.join(timeout=10)
            self.disk = None
        proc, self.proc = self.proc, None
        if proc is not None and self.plan is not None:
            self.plan.stop(proc)
        if self._rpc_out_fd >= 0:
            os.close(self._rpc_out_fd)
            self._rpc_out_fd = -1
        if self.reader is not None:
            os.close(self.reader.fd)
            self.reader = None
        if self.drain is not None:
            self.drain.join(timeout=2)
            self._output_base += self.drain.snapshot()[0]
            self.drain = None

    # -- calls ---------------------------------------------------------------------------------
    def call(self, target: str, *args: Any, timeout_s: float | None = None,
             env: dict[str, str | None] | None = None, in_event_loop: bool = False,
             **kwargs: Any) -> Any:
        """Call ``inference_lab.<target>(*args, **kwargs)`` in the worker and return its JSON result.

        ``env`` sets (or, with None, unsets) environment variables for this call only.
        """
        return self.op("call", {"target": target, "args": list(args), "kwargs": kwargs, "env": env or {},
                                "in_event_loop": in_event_loop}, label=f"inference_lab.{target}", timeout_s=timeout_s)

    def op(self, op: str, payload: dict[str, Any], *, label: str, timeout_s: float | None = None) -> Any:
        """Send one request of kind ``op`` (``call``, ``notebook``) to the worker; its value or an error."""
        remaining = self.limits.submission_timeout_s - self.used_s
        if remaining <= 0:
            raise errors.SubmissionBudgetExceeded(
                f"{label} was not run: this checkpoint's time budget of "
                f"{self.limits.submission_timeout_s:.0f} s is used up", target=label)
        self.start()
        assert self.reader is not None and self.drain is not None and self.proc is not None
        timeout = min(timeout_s or self.limits.call_timeout_s, remaining)
        self._next_id += 1
        request = {**payload, "id": self._next_id, "op": op}
        output_before, _ = self.drain.snapshot()
        started = time.monotonic()
        try:
            rpc.write_message(self._rpc_out_fd, request)
            reply = self._await_reply(timeout, output_before, label)
        finally:
            self.used_s += time.monotonic() - started
        if reply.get("id") != request["id"]:
            self._stop_process()
            raise errors.BadResult(f"{label}: the worker's reply was out of order (did the code write "
                                   "to the grader's pipe?)", target=label)
        if reply.get("ok"):
            return reply.get("value")
        error = dict(reply.get("error") or {})
        if error.get("stage") == "import" and self.dropped:   # e.g. a module that was a link out
            error["message"] = (f"{error.get('message', '')} (left out of the copy graded: "
                                f"{'; '.join(self.dropped[:5])})")
        raise self._error_from_reply(error, label)

    def _await_reply(self, timeout: float, output_before: int, label: str) -> dict[str, Any]:
        assert self.reader is not None and self.drain is not None
        deadline = time.monotonic() + timeout
        while True:
            # Wake up regularly to enforce the output cap while the call runs.
            step = min(0.25, max(0.0, deadline - time.monotonic()))
            try:
                reply = self.reader.read(step)
            except rpc.RpcTimeout:
                printed = self.drain.snapshot()[0] - output_before
                if printed > self.limits.output_bytes:
                    self._stop_process()
                    raise errors.OutputLimitExceeded(
                        f"{label} printed more than {self.limits.output_bytes:,} bytes "
                        f"({printed:,} so far); it was stopped. Print less (log a summary).", target=label)
                if time.monotonic() >= deadline:
                    self._stop_process()
                    raise errors.CallTimeout(
                        f"{label} did not return within {timeout:.1f} s and was stopped "
                        "(an endless loop, a missing timeout, or waiting on a service that never answers?)",
                        target=label) from None
                # Processes the worker forked may hold its reply pipe open after it died (a forked
                # worker's pid namespace outlives it): its end is the crash, not their silence.
                if self.proc is not None and self.proc.poll() is not None:
                    raise self._crash_error(label, rpc.RpcClosed("the worker ended")) from None
                continue
            except rpc.RpcTooLarge:
                self._stop_process()
                raise errors.BadResult(f"{label} returned more than {self.limits.reply_bytes:,} bytes of "
                                       "data", target=label) from None
            except rpc.RpcError as exc:
                raise self._crash_error(label, exc) from None
            printed = self.drain.snapshot()[0] - output_before
            if printed > self.limits.output_bytes:
                self._stop_process()
                raise errors.OutputLimitExceeded(
                    f"{label} printed {printed:,} bytes (the limit is {self.limits.output_bytes:,}). "
                    "Print less (log a summary).", target=label)
            return reply

    def _redacted(self, text: str) -> str:
        """``text`` with every watched secret (the canary) masked: output quoted in a report must not
        carry it there (that it was printed is reported on its own)."""
        for secret in sorted(self.watch_output, key=len, reverse=True):
            if secret:
                text = text.replace(secret, "[token hidden]")
        return text

    def _crash_error(self, label: str, cause: Exception) -> errors.StudentCodeError:
        proc = self.proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = None
        oom = self.plan is not None and self.plan.cgroups.oom_killed()
        disk_full = self.disk is not None and self.disk.exceeded
        _, tail = self.drain.snapshot() if self.drain else (0, "")
        self._stop_process()
        if disk_full:
            return errors.DiskLimitExceeded(
                f"{label} used more than {self.limits.disk_mb} MiB of disk in its folder (or too many files) "
                "and was stopped; write less, and delete temporary files", target=label)
        if oom:
            return errors.MemoryLimitExceeded(
                f"{label} used more than {self.limits.memory_mb} MiB of memory and was stopped", target=label)
        if (code is not None and code > 128 and self.plan is not None and self.plan.use_bwrap
                and not isinstance(proc, ForkedProcess)):
            code = 128 - code  # bwrap reports a signal death of its child as 128 + signal number
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            how = f"was killed by {name}"
            if -code == signal.SIGXCPU:
                how += f" (more than {self.limits.cpu_s} s of CPU time)"
        elif code is not None:
            how = f"exited with code {code} (os._exit or a crash in native code?)"
        else:
            how = f"stopped answering ({cause})"
        text = f"{label}: the process running your code {how}"
        if tail.strip():
            text += f"; its last output:\n{self._redacted(tail[-800:])}"
        return errors.WorkerCrashed(text, target=label)

    @staticmethod
    def _error_from_reply(error: dict[str, Any], label: str) -> errors.StudentCodeError:
        if error.get("not_implemented"):
            return errors.NotImplementedByStudent(label)
        if error.get("type") == "BadResult":
            return errors.BadResult(f"{label} {error.get('message', '')}", target=label)
        cls = errors.ImportFailed if error.get("stage") == "import" else errors.StudentRaised
        return cls(label, str(error.get("type", "Exception")), str(error.get("message", "")),
                   list(error.get("mro", [])), str(error.get("traceback", "")))

    def output_mark(self, settle_s: float = 0.5) -> int:
        """Bytes the code has printed so far (all workers of this sandbox), once the output is quiet.

        The worker flushes before it answers, but the reader thread may still be catching up: wait
        until nothing new arrives for 40 ms (at most ``settle_s``).
        """
        if self.drain is None:
            return self._output_base
        deadline = time.monotonic() + settle_s
        last = self.drain.snapshot()[0]
        while time.monotonic() < deadline:
            time.sleep(0.04)
            now = self.drain.snapshot()[0]
            if now == last:
                break
            last = now
        return self._output_base + last

    def watched_lines(self, since: int = 0) -> list[str]:
        """Lines printed at or after byte ``since`` that hold a ``watch_output`` string (raw: redact them)."""
        self.output_mark()  # let the reader thread catch up with what was printed
        return [line for offset, line in list(self._output_hits) if offset >= since]

    def ping(self) -> float:
        """Start the worker if needed and return the round-trip time of one empty request."""
        self.start()
        assert self.reader is not None
        started = time.monotonic()
        self._next_id += 1
        rpc.write_message(self._rpc_out_fd, {"id": self._next_id, "op": "ping"})
        self.reader.read(self.limits.startup_timeout_s)
        return time.monotonic() - started
