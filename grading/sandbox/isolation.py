"""How a worker is confined: bubblewrap namespaces, cgroups and rlimits, whichever this machine allows.

The strongest available layer is used and described in words (the report's ``isolation`` field):

* ``bwrap``: user, pid, ipc and uts namespaces; the file system read-only except the worker's own
  folder and a private ``/tmp``; the grader's home (its Hugging Face token), ``reference/``,
  ``checkpoints/`` and ``tests/`` hidden, and the machine's other homes, logs, service state and
  password files (:data:`MACHINE_SECRET_DIRS`, :data:`MACHINE_SECRET_FILES`). Given relays (port -> the grader's unix socket of a
  service), also a network namespace of its own with loopback only: the services are reached through
  :mod:`grading.sandbox.netrelay` on their usual ports, and no other address answers.
* cgroups (v2, else v1): ``pids.max`` stops fork bombs (root ignores RLIMIT_NPROC), a memory limit
  OOM-kills a runaway allocation, and every process of the worker can be killed at once.
* rlimits: CPU seconds, file size, open files, no core dumps; RLIMIT_AS stands in for the memory
  cgroup where there is none.
"""

from __future__ import annotations

import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from grading.sandbox.limits import Limits

REPO_ROOT = Path(__file__).resolve().parents[2]
# Folders of the grader that student code must not read (the solution, the hidden tests).
HIDDEN_REPO_DIRS = ("reference", "checkpoints", "tests", ".git")
CGROUP_ROOT = Path("/sys/fs/cgroup")
# The machine's own secrets, hidden as the grader's home is: the worker runs as the real root (in a user
# namespace, capabilities dropped), and root owns these; what student code reads can come back to it in
# its report. Folders get an empty tmpfs (what Python needs under one is bound back), files /dev/null.
MACHINE_SECRET_DIRS = ("/home", "/root", "/srv", "/mnt", "/media", "/var/lib", "/var/log", "/var/mail",
                       "/var/spool", "/var/backups", "/var/cache", "/etc/ssh", "/etc/ssl/private")
MACHINE_SECRET_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers",
                        "/etc/security/opasswd")


@functools.lru_cache(maxsize=1)
def bwrap_path() -> str | None:
    """The bubblewrap binary, if present and able to create a user namespace here."""
    path = shutil.which("bwrap")
    if not path or sys.platform != "linux":
        return None
    return path if _bwrap_runs(path, "--unshare-pid") else None


def _bwrap_runs(path: str, *namespaces: str) -> bool:
    """Whether ``bwrap`` with a user namespace, all capabilities dropped and ``namespaces`` runs here."""
    probe = [path, "--unshare-user", *namespaces, "--cap-drop", "ALL", "--die-with-parent",
             "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--", "/bin/true"]
    try:
        return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _own_cgroup_v1(controller: str) -> str:
    """This process's cgroup path for a v1 controller (nest under it, never beside it)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return "/"


@dataclass
class Cgroups:
    """One worker's cgroups: created with limits, joined in the child before exec, removed after."""

    pids_dir: Path | None = None
    memory_dir: Path | None = None
    version: int = 0
    _oom_baseline: int = 0

    @classmethod
    def create(cls, limits: Limits) -> "Cgroups":
        name = f"infergrade-{uuid.uuid4().hex[:12]}"
        unified = CGROUP_ROOT / "unified" if (CGROUP_ROOT / "unified").is_dir() else CGROUP_ROOT
        controllers_file = unified / "cgroup.controllers"
        if controllers_file.exists() and {"pids", "memory"} <= set(controllers_file.read_text().split()):
            return cls._create_v2(unified, name, limits)
        return cls._create_v1(name, limits)

    @classmethod
    def _create_v2(cls, root: Path, name: str, limits: Limits) -> "Cgroups":
        group = root / name
        try:
            group.mkdir()
            (group / "pids.max").write_text(str(limits.max_procs))
            (group / "memory.max").write_text(str(limits.memory_mb * 2**20))
            if (group / "memory.swap.max").exists():
                (group / "memory.swap.max").write_text("0")
        except OSError:
            _rmdir(group)
            return cls()
        return cls(pids_dir=group, memory_dir=group, version=2)

    @classmethod
    def _create_v1(cls, name: str, limits: Limits) -> "Cgroups":
        made = cls(version=1)
        pids_parent = CGROUP_ROOT / "pids" / _own_cgroup_v1("pids").lstrip("/")
        memory_parent = CGROUP_ROOT / "memory" / _own_cgroup_v1("memory").lstrip("/")
        try:
            if pids_parent.is_dir():
                (pids_parent / name).mkdir()
                made.pids_dir = pids_parent / name
                (made.pids_dir / "pids.max").write_text(str(limits.max_procs))
            if memory_parent.is_dir():
                (memory_parent / name).mkdir()
                made.memory_dir = memory_parent / name
                (made.memory_dir / "memory.limit_in_bytes").write_text(str(limits.memory_mb * 2**20))
                swap = made.memory_dir / "memory.memsw.limit_in_bytes"
                if swap.exists():
                    try:
                        swap.write_text(str(limits.memory_mb * 2**20))
                    except OSError:
                        pass
        except OSError:
            made.remove()
            return cls()
        made._oom_baseline = made.oom_kills()
        return made

    @property
    def controllers(self) -> list[str]:
        return [name for name, d in (("pids", self.pids_dir), ("memory", self.memory_dir)) if d]

    def join_paths(self) -> list[str]:
        """cgroup.procs files the child writes its pid into (precomputed: preexec must not allocate much)."""
        dirs = {d for d in (self.pids_dir, self.memory_dir) if d}
        return [str(d / "cgroup.procs") for d in dirs]

    def adopt(self, pid: int) -> None:
        """Move a running process (a worker forked by the zygote) into these groups."""
        for path in self.join_paths():
            with open(path, "w") as handle:
                handle.write(str(pid))

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in (self.pids_dir, self.memory_dir):
            if d:
                try:
                    found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
                except OSError:
                    pass
        return sorted(found)

    def kill_all(self, timeout_s: float = 5.0) -> None:
        """SIGKILL every process in the group, including ones that left the process group."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def oom_kills(self) -> int:
        if not self.memory_dir:
            return 0
        for name in ("memory.events", "memory.oom_control"):
            path = self.memory_dir / name
            if path.exists():
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        failcnt = self.memory_dir / "memory.failcnt"
        return int(failcnt.read_text()) if failcnt.exists() else 0

    def oom_killed(self) -> bool:
        return self.oom_kills() > self._oom_baseline

    def mark_oom_baseline(self) -> None:
        self._oom_baseline = self.oom_kills()

    def remove(self) -> None:
        self.kill_all(timeout_s=2.0)
        for d in {self.pids_dir, self.memory_dir} - {None}:
            _rmdir(d)


def _rmdir(path: Path | None) -> None:
    if path is None:
        return
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)


@functools.lru_cache(maxsize=1)
def bwrap_can_unshare_net() -> bool:
    """Whether bubblewrap can give a worker a network namespace of its own here."""
    path = bwrap_path()
    return path is not None and _bwrap_runs(path, "--unshare-net")


@dataclass
class Plan:
    """How to launch one worker: the command prefix, the preexec hook and the words for the report.

    ``relays`` (port -> unix socket of a service), when given and bubblewrap can, puts the worker in
    a network namespace of its own where only those ports answer (through the relay).
    """

    use_bwrap: bool
    cgroups: Cgroups = field(default_factory=Cgroups)
    limits: Limits = field(default_factory=Limits)
    relays: dict[int, str] | None = None

    @property
    def own_network(self) -> bool:
        return self.use_bwrap and self.relays is not None and bwrap_can_unshare_net()

    def describe(self) -> str:
        if self.use_bwrap:
            namespaces = "user,pid,ipc,mount" + (",net" if self.own_network else "")
            parts = [f"bwrap({namespaces}; read-only fs{'; loopback-only network' if self.own_network else ''})"]
        else:
            parts = ["process(subprocess)"]
        if self.cgroups.controllers:
            parts.append(f"cgroup-v{self.cgroups.version}({','.join(self.cgroups.controllers)})")
        parts.append("rlimits")
        return "+".join(parts)

    def command(self, argv: list[str], workdir: Path, keep_fds: list[int]) -> list[str]:
        if not self.use_bwrap:
            return argv
        prefix = bwrap_argv(workdir, keep_fds)
        if self.own_network:
            prefix.insert(1, "--unshare-net")
            # The services' sockets (in the grader's /tmp, which the sandbox replaces with its own).
            for folder in sorted({str(Path(path).parent) for path in (self.relays or {}).values()}):
                prefix += ["--ro-bind", folder, folder]
        return prefix + ["--"] + argv

    def worker_env(self) -> dict[str, str]:
        """What the worker needs to know about its network: the relays to start, in its namespace."""
        if not self.own_network:
            return {}
        return {"INFERGRADE_NET_RELAYS": json.dumps({str(port): path for port, path in (self.relays or {}).items()})}

    def rlimits(self) -> dict[str, int]:
        """The worker's rlimits by ``resource`` name (also sent to a forked worker, which sets them)."""
        limits = self.limits
        found = {"RLIMIT_CPU": limits.cpu_s, "RLIMIT_FSIZE": limits.file_size_mb * 2**20, "RLIMIT_CORE": 0,
                 "RLIMIT_NOFILE": 1024,
                 "RLIMIT_NPROC": limits.max_procs}  # holds for non-root users
        if not self.cgroups.memory_dir:  # address space is a coarse stand-in: Python maps more than it uses
            found["RLIMIT_AS"] = (limits.memory_mb + 1024) * 2**20
        return {name: int(value) for name, value in found.items() if hasattr(resource, name)}

    def launch(self, argv: list[str], workdir: Path, keep_fds: list[int], *, env: dict[str, str],
               output: int) -> subprocess.Popen:
        """Start ``argv`` as this plan confines it (in ``workdir``, only ``keep_fds`` inherited, stdout and
        stderr on ``output``); OSError if it cannot start."""
        return subprocess.Popen(self.command(argv, workdir, keep_fds), stdin=subprocess.DEVNULL, stdout=output,
                                stderr=output, pass_fds=tuple(keep_fds), cwd=workdir, env=env,
                                preexec_fn=self.preexec(), close_fds=True)

    def kill(self, proc: subprocess.Popen) -> None:
        """Kill ``proc`` and all it started (its process group and this plan's cgroup), from any thread."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.cgroups.kill_all()

    def stop(self, proc: subprocess.Popen) -> None:
        """:meth:`kill` and reap ``proc``."""
        self.kill(proc)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()

    def preexec(self) -> Callable[[], None]:
        join_paths = self.cgroups.join_paths()
        rlimits = [(getattr(resource, name), value) for name, value in self.rlimits().items()]

        def setup_child() -> None:  # runs in the child between fork and exec
            os.setsid()
            pid = str(os.getpid())
            for path in join_paths:
                with open(path, "w") as handle:
                    handle.write(pid)
            for which, value in rlimits:
                set_limit(which, value)

        return setup_child


def set_limit(which: int, value: int) -> None:
    """Set soft and hard limit ``which`` to ``value`` (or the hard limit already there, if lower)."""
    try:
        soft, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass


def _under(path: Path, parent: Path) -> bool:
    try:
        path.relative_to(parent)
        return True
    except ValueError:
        return False


#: folders the grader names for hiding too (a batch's sources and outputs: classmates' code, reports and
#: the manifest's seeds), as an os.pathsep-separated list in the grader's environment
HIDDEN_PATHS_ENV = "INFERGRADE_HIDDEN_PATHS"


def extra_hidden_paths() -> list[Path]:
    return [Path(p).resolve() for p in os.environ.get(HIDDEN_PATHS_ENV, "").split(os.pathsep) if p]


def bwrap_argv(workdir: Path, keep_fds: list[int]) -> list[str]:
    """bubblewrap arguments: everything read-only, the grader's and the machine's secrets hidden
    (:data:`MACHINE_SECRET_DIRS`), ``workdir`` writable."""
    home = Path(os.path.expanduser("~")).resolve()
    # --cap-drop ALL: started by root, bwrap maps uid 0 to the real root and would keep every capability
    # inside, enough to unmount the tmpfs over the grader's secrets or remount / read-write.
    argv = [bwrap_path() or "bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL", "--die-with-parent",
            "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"]
    # --dev gives a minimal /dev; GPUs stay visible so detect() and vLLM see what the grader sees.
    for device in sorted(Path("/dev").glob("nvidia*")) + sorted(Path("/dev").glob("dri/*")):
        argv += ["--dev-bind-try", str(device), str(device)]
    # Hide the grader's home (its ~/.cache/huggingface/token) - /tmp is already private - then bring back
    # what Python needs from either (a virtual environment or a checkout may live in /tmp or the home).
    covered = [Path("/tmp")]
    for folder in [home, *map(Path, MACHINE_SECRET_DIRS)]:
        if (folder != Path("/") and folder.is_dir() and not folder.is_symlink()
                and not any(_under(folder, c) for c in covered)):
            argv += ["--tmpfs", str(folder)]
            covered.append(folder)
    for secret in map(Path, MACHINE_SECRET_FILES):
        if secret.is_file() and not secret.is_symlink():
            argv += ["--ro-bind", "/dev/null", str(secret)]
    needed = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
              Path(sys.executable).resolve().parent.parent, REPO_ROOT / "grading"}
    needed |= {Path(p).resolve() for p in sys.path if p and Path(p).is_dir()}
    for path in sorted(p for p in needed if any(_under(p, c) and p != c for c in covered)):
        argv += ["--ro-bind", str(path), str(path)]
    for hidden in [REPO_ROOT / name for name in HIDDEN_REPO_DIRS]:
        if hidden.is_dir() and not _under(workdir, hidden):
            argv += ["--tmpfs", str(hidden)]
    # Never a folder that holds what the worker needs (the grader, Python, its own folder).
    must_see = [REPO_ROOT, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), workdir]
    for hidden in extra_hidden_paths():
        if hidden.is_file():
            argv += ["--ro-bind", "/dev/null", str(hidden)]       # e.g. an LMS export zip
        elif hidden.is_dir() and not any(_under(needed, hidden) for needed in must_see):
            argv += ["--tmpfs", str(hidden)]
    argv += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    return argv


def weak_isolation_reason(mode: str = "auto") -> str | None:
    """Why workers would run with less than the full isolation here (None: bubblewrap with a network
    namespace of their own): official batch grading refuses that unless told otherwise."""
    if mode == "process":
        return "--isolation process was asked for"
    if bwrap_path() is None:
        return ("bubblewrap is not usable here (not installed, not Linux, or user namespaces are not "
                "permitted); install the 'bubblewrap' package (scripts/setup.sh does, as root)")
    if not bwrap_can_unshare_net():
        return "bubblewrap cannot create a network namespace here: student code could reach the network"
    return None


def make_plan(limits: Limits, mode: str = "auto", relays: dict[int, str] | None = None) -> Plan:
    """Choose the isolation for one worker. ``mode``: auto | bwrap | process. ``relays``: see Plan."""
    if mode not in ("auto", "bwrap", "process"):
        raise ValueError(f"unknown isolation mode {mode!r}")
    use_bwrap = mode != "process" and bwrap_path() is not None
    if mode == "bwrap" and not use_bwrap:
        raise RuntimeError("isolation 'bwrap' was asked for but bubblewrap is not usable here "
                           "(install the 'bubblewrap' package; see scripts/install-system-deps.sh)")
    cgroups = Cgroups.create(limits) if sys.platform == "linux" and os.geteuid() == 0 else Cgroups()
    return Plan(use_bwrap=use_bwrap, cgroups=cgroups, limits=limits, relays=relays)
