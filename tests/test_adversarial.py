"""The adversarial corpus (tests/adversarial/*.toml) through ONE ``python -m grading batch`` run.

Each corpus file is one attack that has been tried on autograders, kept as data: a patch layered on
``reference/`` (lines appended to a module, files written, symbolic links, folders nested past
PATH_MAX) and/or a zip to hand in instead of a folder. The test builds every attacker's submission from
``reference/`` at run time, adds two honest copies of ``reference/`` (one graded first, one last, so
attackers run beside them), and grades them all in one batch (``--only auth,hardware,analysis``: the
cheap checkpoints, ~7 s a submission here; ``--jobs 2``; bubblewrap required). The two honest copies
are also graded alone, in a batch of their own with the same batch seed, so both gradings use the
same per-submission seeds.

For every attack it asserts:

1. the batch finished, with a row for the attacker;
2. the honest submissions' scores are what they earn alone (per checkpoint, from grades.csv), and
   their report files carry no trace of this attack (``ADV:<attack>``);
3. the attacker scored no more than honest work: no test above what the reference earns alone, the
   items the attack broke (``forfeit``) at 0, the same checkpoints and max score;
4. the report says what happened: one of ``expect`` is in the attacker's feedback (test messages,
   the report's error, its grades.csv status, the batch's notes about it; ``isolation:WORD`` looks
   in the report's ``isolation``),

and that nothing escaped: the listeners this test runs (TCP and UDP, on loopback and on the
machine's outside address) heard nothing from it, no grader secret (the grader's own HF_TOKEN and
login file, an environment secret, the hidden tests' digests, the batch seed, the honest students'
code) is in its report, no file it aimed at outside its folder exists, no process it left is alive.

Corpus file keys: ``attack`` (what it is), ``defence`` (what should stop it), ``expect``,
``forfeit`` (``checkpoint.test`` globs), ``needs`` (grader work in progress the test depends on),
``row_error`` (the submission must be refused: an error row scoring 0), ``folder_name``,
``must_not_exist`` / ``must_exist`` (paths), ``forbidden`` (strings never in its report),
``forbidden_in_outputs`` (never live markup in an HTML or Markdown output), ``csv_cells_inert`` (no
formula a spreadsheet would evaluate in grades.csv/canvas.csv), ``forbid_canary`` (its own canary token
never unmasked in its report files), ``leftover_glob`` (grader scratch copies that must not be left
behind), ``leftover_process`` (argv[0] of a process
that must be gone), ``[[patch]]`` (``path`` or percent-encoded ``path_bytes``; ``append`` | ``write``
| ``symlink`` | ``remove`` | ``fifo`` | ``nest_depth`` + ``nest_name_len`` + ``write``) and ``[zip]`` (``base``:
include the patched tree, ``prefix``; ``[[zip.entry]]`` with ``name`` and ``text`` | ``zeros`` (bytes) |
``symlink_to``, ``count`` for ``{n}`` names). Placeholders ``@@NAME@@`` are filled at run time (see
``_Context.fill``).
"""

from __future__ import annotations

import base64
import csv
import fnmatch
import glob
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import urllib.parse
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from grading.canary import make_canary
from grading.context import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

CORPUS = Path(__file__).parent / "adversarial"
ATTACKS = sorted(p.stem for p in CORPUS.glob("*.toml"))
ONLY = "auth,hardware,analysis"
JOBS = 2
SUBMISSION_TIMEOUT_S = 60           # --timeout of the batch: a hung grading is stopped, the batch goes on
BATCH_DEADLINE_S = 600              # the whole attack batch, after which this test kills it
HONEST = {"10000": "honest_first_10000_lab", "99999": "honest_last_99999_lab"}
FIRST_ATTACK_ID = 20001


def _letters(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters) for _ in range(n))


# -- what must be true before hostile code is run on this machine ------------------------------------
def _unsafe_here() -> str | None:
    from grading.sandbox import isolation
    from grading.sandbox.isolation import bwrap_path, make_plan
    from grading.sandbox.limits import Limits

    if bwrap_path() is None:
        return "bubblewrap is not usable here: the corpus (fork bombs, kills, disk filling) needs its confinement"
    weak = getattr(isolation, "weak_isolation_reason", lambda mode: None)("bwrap")
    if weak:
        return f"official batch grading refuses this machine's isolation: {weak}"
    plan = make_plan(Limits(max_procs=8, memory_mb=64), "bwrap")
    try:
        if not plan.cgroups.pids_dir or not plan.cgroups.memory_dir:
            return "no pids and memory cgroups here: a fork bomb or a memory hog would reach the machine"
    finally:
        plan.cgroups.remove()
    return None


def _outside_address() -> str | None:
    """This machine's first non-loopback IPv4 address: 'outside' as seen from a worker."""
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and not addr.address.startswith("127."):
                return addr.address
    return None


# -- listeners that must hear nothing ----------------------------------------------------------------
class Listeners:
    """TCP and UDP listeners on loopback and on the outside address; every byte received is kept."""

    def __init__(self, outside: str | None) -> None:
        self.hits: list[tuple[str, str, bytes]] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.socks: list[socket.socket] = []
        self.ports: dict[str, int] = {}
        self.ports["LOOP_PORT"] = self._tcp("127.0.0.1", "tcp 127.0.0.1")
        self.ports["UDP_LOOP_PORT"] = self._udp("127.0.0.1", "udp 127.0.0.1")
        if outside:
            self.ports["OUT_PORT"] = self._tcp(outside, f"tcp {outside}")
            self.ports["UDP_OUT_PORT"] = self._udp(outside, f"udp {outside}")
        else:                                   # nothing listens there: the checks below are weaker
            self.ports["OUT_PORT"], self.ports["UDP_OUT_PORT"] = 9, 9

    def _record(self, where: str, peer: Any, data: bytes) -> None:
        with self.lock:
            self.hits.append((where, str(peer), data))

    def _tcp(self, host: str, where: str) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((host, 0))
        sock.listen(32)
        sock.settimeout(0.2)
        self.socks.append(sock)

        def serve() -> None:
            while not self.stopping.is_set():
                try:
                    conn, peer = sock.accept()
                except (socket.timeout, OSError):
                    continue
                with conn:
                    conn.settimeout(1.0)
                    data = b""
                    try:
                        while len(data) < 65536:
                            piece = conn.recv(4096)
                            if not piece:
                                break
                            data += piece
                            if data.startswith(b"GET") and b"\r\n\r\n" in data:
                                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                                break
                    except OSError:
                        pass
                    self._record(where, peer, data)

        self._start(serve)
        return sock.getsockname()[1]

    def _udp(self, host: str, where: str) -> int:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        sock.settimeout(0.2)
        self.socks.append(sock)

        def serve() -> None:
            while not self.stopping.is_set():
                try:
                    data, peer = sock.recvfrom(65536)
                except (socket.timeout, OSError):
                    continue
                self._record(where, peer, data)

        self._start(serve)
        return sock.getsockname()[1]

    def _start(self, target: Any) -> None:
        thread = threading.Thread(target=target, daemon=True)
        thread.start()
        self.threads.append(thread)

    def close(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=2)
        for sock in self.socks:
            sock.close()


# -- building the submissions ------------------------------------------------------------------------
@dataclass
class _Context:
    values: dict[str, str]

    _SPECIAL = re.compile(r"@@(PAD|REPEAT|RANDOM_B64)_(?:(.)_)?(\d+)@@")

    def fill(self, text: str) -> str:
        def special(match: re.Match) -> str:
            kind, char, count = match[1], match[2], int(match[3])
            if kind == "PAD":
                return "x" * count
            if kind == "REPEAT":
                return (char or "x") * count
            return base64.b64encode(random.Random(count).randbytes(count * 3 // 4)).decode()[:count]

        text = self._SPECIAL.sub(special, text)
        text = text.replace("@@NUL@@", "\x00")
        for key, value in self.values.items():
            text = text.replace(f"@@{key}@@", value)
        leftover = re.findall(r"@@[A-Z_0-9]+@@", text)
        assert not leftover, f"unknown placeholder(s) {leftover} in the corpus"
        return text


def _nest(base: str, depth: int, name_len: int, text: str) -> None:
    """``depth`` folders of ``name_len`` characters under ``base`` and deep.py at the bottom, built with
    dir_fd (the whole path is longer than PATH_MAX)."""
    os.makedirs(base, exist_ok=True)
    fd = os.open(base, os.O_RDONLY)
    try:
        for _ in range(depth):
            name = "d" * name_len
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = child
        out = os.open("deep.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(out, text.encode())
        os.close(out)
    finally:
        os.close(fd)


def _apply_patch(root: Path, patch: dict[str, Any], ctx: _Context) -> None:
    if "path_bytes" in patch:
        rel = os.fsdecode(urllib.parse.unquote_to_bytes(ctx.fill(patch["path_bytes"])))
    else:
        rel = ctx.fill(patch["path"])
    target = os.path.join(root, rel)
    if patch.get("remove"):
        os.unlink(target)
        return
    if "symlink" in patch:
        if os.path.lexists(target):
            os.unlink(target)
        os.symlink(ctx.fill(patch["symlink"]), target)
        return
    if patch.get("fifo"):
        os.mkfifo(target)
        return
    if "nest_depth" in patch:
        _nest(target, patch["nest_depth"], patch["nest_name_len"], ctx.fill(patch.get("write", "")))
        return
    os.makedirs(os.path.dirname(target), exist_ok=True)
    if "append" in patch:
        with open(target, "a", encoding="utf-8", newline="") as handle:
            handle.write(ctx.fill(patch["append"]))
    else:
        with open(target, "w", encoding="utf-8", newline="") as handle:
            handle.write(ctx.fill(patch["write"]))


def _copy_reference(dest: Path) -> None:
    shutil.copytree(REPO_ROOT / "reference", dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def _build_zip(spec: dict[str, Any], tree: Path, target: Path, ctx: _Context) -> None:
    plan = spec["zip"]
    prefix = ctx.fill(plan.get("prefix", ""))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        if plan.get("base"):
            for path in sorted(tree.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    archive.write(path, prefix + path.relative_to(tree).as_posix())
        for entry in plan.get("entry", []):
            count = entry.get("count")
            names = ([ctx.fill(entry["name"]).replace("{n}", str(i)) for i in range(count)] if count
                     else [ctx.fill(entry["name"])])
            for name in names:
                if "symlink_to" in entry:
                    info = zipfile.ZipInfo(name)
                    info.create_system, info.external_attr = 3, (0o120777 << 16)
                    archive.writestr(info, ctx.fill(entry["symlink_to"]))
                elif "zeros" in entry:
                    block = b"\0" * 2**20
                    with archive.open(name, "w", force_zip64=True) as handle:
                        for _ in range(entry["zeros"] // len(block)):
                            handle.write(block)
                else:
                    with warnings.catch_warnings():      # a name given twice is the point of some attacks
                        warnings.simplefilter("ignore", UserWarning)
                        archive.writestr(name, ctx.fill(entry.get("text", "")))


# -- one run of the whole corpus ---------------------------------------------------------------------
@dataclass
class Batch:
    out: Path
    returncode: int | None
    stdout: str
    stderr: str
    elapsed_s: float
    rows: dict[str, dict[str, str]] = field(default_factory=dict)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return self.returncode in (0, 1) and (self.out / "grades.csv").is_file()

    def describe(self) -> str:
        return (f"batch exit code {self.returncode} after {self.elapsed_s:.0f} s\nstdout: {self.stdout[-1500:]}\n"
                f"stderr: {self.stderr[-3000:]}")


@dataclass
class CorpusRun:
    base: Path
    src: Path
    ctx: _Context
    specs: dict[str, dict[str, Any]]
    ids: dict[str, str]
    alone: Batch
    batch: Batch
    listeners: Listeners
    secrets: dict[str, str]          # what no attacker may hand back: description -> value
    honest_markers: dict[str, str]
    started: float                   # time.time() when the submissions were built


def _run_batch(src: Path, out: Path, env: dict[str, str], seed: int) -> Batch:
    command = [sys.executable, "-m", "grading", "batch", str(src), "--out", str(out), "--only", ONLY,
               "--jobs", str(JOBS), "--seed", str(seed), "--isolation", "bwrap",
               "--timeout", str(SUBMISSION_TIMEOUT_S), "-q"]
    started = time.monotonic()
    # its own session: an attack that signals the grader's process group cannot reach this test
    proc = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=BATCH_DEADLINE_S)
        returncode: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        returncode, stderr = None, stderr + f"\n[killed by the test after {BATCH_DEADLINE_S} s]"
    batch = Batch(out=out, returncode=returncode, stdout=stdout, stderr=stderr,
                  elapsed_s=time.monotonic() - started)
    if (out / "grades.csv").is_file():
        with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
            batch.rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    for folder in sorted((out / "submissions").glob("*")) if (out / "submissions").is_dir() else []:
        report = folder / "report.json"
        if report.is_file():
            batch.reports[folder.name] = json.loads(report.read_text(encoding="utf-8"))
    manifest = out / "manifest.jsonl"
    if manifest.is_file():
        for line in manifest.read_text(encoding="utf-8").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == "done":
                batch.notes[event["key"]] = list(event.get("notes") or [])
            if event.get("event") == "started":
                batch.seeds[event["key"]] = int(event["seed"])
    return batch


@pytest.fixture(scope="module")
def corpus_run() -> Iterator[CorpusRun]:
    why = _unsafe_here()
    if why:
        pytest.skip(why)
    parent = "/var/tmp" if os.path.isdir("/var/tmp") else None   # a folder the worker sees (read-only)
    base = Path(tempfile.mkdtemp(prefix="infergrade-adv-", dir=parent)).resolve()
    listeners = Listeners(_outside_address())
    started = time.time()
    try:
        run_id = secrets.token_hex(4)
        grader_home = base / "grader-home"
        grader_token = "hf_" + _letters(34)
        (grader_home / ".cache" / "huggingface").mkdir(parents=True)
        (grader_home / ".cache" / "huggingface" / "token").write_text(grader_token)
        src, src_alone = base / "src", base / "src-alone"
        out, out_alone = base / "out", base / "out-alone"
        batch_seed = random.randrange(10**8, 10**9)
        honest_markers = {}
        for sid, folder in HONEST.items():
            honest_markers[sid] = f"honest work of student {sid}: {_letters(24)}"
            for where in (src, src_alone):
                _copy_reference(where / folder)
                with open(where / folder / "inference_lab" / "hardware.py", "a") as handle:
                    handle.write(f"\n# {honest_markers[sid]}\n")
        ids = {name: str(FIRST_ATTACK_ID + i) for i, name in enumerate(ATTACKS)}
        values = {"RUN": run_id, "BASE": str(base), "SRC": str(src), "OUT": str(out), "REPO": str(REPO_ROOT),
                  "GRADER_HOME": str(grader_home), "HONEST": str(src / HONEST["10000"]), "HONEST_KEY": "10000",
                  "OUT_HOST": _outside_address() or "192.0.2.1", "FAKE_TOKEN": "hf_" + _letters(34),
                  **{k: str(v) for k, v in listeners.ports.items()}}
        specs: dict[str, dict[str, Any]] = {}
        staging = base / "staging"
        for name in ATTACKS:
            specs[name] = tomllib.loads((CORPUS / f"{name}.toml").read_text(encoding="utf-8"))
            ctx = _Context({**values, "KEY": ids[name], "ID": ids[name], "NAME": name})
            folder = ctx.fill(specs[name].get("folder_name", f"adv_{name}_@@ID@@_lab"))
            tree = staging / name if "zip" in specs[name] else src / folder
            _copy_reference(tree)
            for patch in specs[name].get("patch", []):
                _apply_patch(tree, patch, ctx)
            if "zip" in specs[name]:
                _build_zip(specs[name], tree, src / f"{folder}.zip", ctx)
        shutil.rmtree(staging, ignore_errors=True)

        adv_secret = secrets.token_hex(16)
        env = dict(os.environ, HOME=str(grader_home), HF_TOKEN=grader_token, INFERGRADE_ADV_SECRET=adv_secret,
                   PYTHONDONTWRITEBYTECODE="1")
        hidden = {f"digest of {p}": hashlib.sha256((REPO_ROOT / p).read_bytes()).hexdigest()
                  for p in ("checkpoints/test_hardware.py", "tests/test_sandbox.py")}
        alone = _run_batch(src_alone, out_alone, env, batch_seed)
        batch = _run_batch(src, out, env, batch_seed)
        secret_values = {"the grader's HF_TOKEN / login file": grader_token,
                         "the grader's environment secret": adv_secret,
                         "the batch seed": str(batch_seed), **hidden,
                         **{f"student {sid}'s code": marker.split(": ")[1] for sid, marker in honest_markers.items()}}
        yield CorpusRun(base=base, src=src, ctx=_Context(values), specs=specs, ids=ids, alone=alone, batch=batch,
                        listeners=listeners, secrets=secret_values, honest_markers=honest_markers,
                        started=started)
    finally:
        listeners.close()
        if os.environ.get("INFERGRADE_KEEP_ADVERSARIAL"):
            print(f"\nadversarial corpus run kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


# -- reading a report ---------------------------------------------------------------------------------
def _test_scores(report: dict[str, Any]) -> dict[str, float]:
    return {f"{cp['id']}.{t['name']}": float(t.get("score") or 0.0)
            for cp in report.get("checkpoints", []) for t in cp.get("tests", [])}


def _feedback(report: dict[str, Any], row: dict[str, str] | None, notes: list[str]) -> str:
    parts = [str(report.get("error") or "")]
    parts += [str(t.get("message") or "") for cp in report.get("checkpoints", []) for t in cp.get("tests", [])]
    parts += [(row or {}).get("status", "")] + notes
    return "\n".join(parts)


def _failed_lines(report: dict[str, Any], limit: int = 8) -> str:
    """The report's error and its tests that lost points, one line each (at most ``limit``)."""
    lines = [f"  error: {report.get('error')}"] if report.get("error") else []
    lost = [(cp["id"], t) for cp in report.get("checkpoints", []) for t in cp.get("tests", [])
            if t.get("outcome") != "passed" or (t.get("score") or 0) < (t.get("max_score") or 0)]
    for cp_id, t in lost[:limit]:
        lines.append(f"  {cp_id}.{t['name']}: {t.get('outcome')} {t.get('score')}/{t.get('max_score')}: "
                     f"{str(t.get('message') or '')[:300]}")
    if len(lost) > limit:
        lines.append(f"  ... and {len(lost) - limit} more")
    return "\n".join(lines) or "  (every test earned its points)"


def _honest_columns(row: dict[str, str]) -> dict[str, str]:
    return {k: row.get(k, "") for k in ("score", "max_score", *ONLY.split(","), "status")}


def _files_under(folder: Path) -> Iterator[Path]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield path


def _unescaped(raw: str, text: str) -> bool:
    """``raw`` occurs in ``text`` without a Markdown backslash escape in front of it."""
    at = text.find(raw)
    while at >= 0:
        if at == 0 or text[at - 1] != "\\":
            return True
        at = text.find(raw, at + 1)
    return False


def _rendered_raw(out: Path, raw: str) -> list[str]:
    """Output files a browser or Markdown renderer shows, holding ``raw`` as live markup: HTML files,
    Markdown files (unless backslash-escaped) and Gradescope's Markdown ``output`` fields."""
    found = []
    for path in _files_under(out):
        rel = path.relative_to(out)
        if ".work" in rel.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if path.suffix == ".html" and raw in text:
            found.append(str(rel))
        elif path.suffix == ".md" and _unescaped(raw, text):
            found.append(str(rel))
        elif path.name == "results.json":
            data = json.loads(text)
            outputs = [data.get("output", "")] + [t.get("output", "") for t in data.get("tests", [])]
            if any(_unescaped(raw, str(o)) for o in outputs):
                found.append(str(rel))
    return found


def _live_formulas(out: Path) -> list[str]:
    """Cells of the batch's csv files that a spreadsheet would evaluate (=, +, @, tab, CR first)."""
    live = []
    for name in ("grades.csv", "canvas.csv"):
        path = out / name
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as handle:
                live += [f"{name}: {cell[:40]!r}" for row in csv.reader(handle) for cell in row
                         if cell[:1] in ("=", "+", "@", "\t", "\r")]
    return live


# -- the batch as a whole ------------------------------------------------------------------------------
def test_batch_finishes_with_a_row_for_every_submission(corpus_run: CorpusRun) -> None:
    run = corpus_run
    assert run.alone.finished, "the honest-only batch did not finish:\n" + run.alone.describe()
    assert run.batch.finished, "the batch with the attacks did not finish:\n" + run.batch.describe()
    missing = sorted((set(run.ids.values()) | set(HONEST)) - set(run.batch.rows))
    assert not missing, f"no grades.csv row for {missing}\n" + run.batch.describe()
    print(f"\nalone: {run.alone.elapsed_s:.0f} s; with the attacks: {run.batch.elapsed_s:.0f} s")


def test_honest_reports_match_grading_them_alone(corpus_run: CorpusRun) -> None:
    run = corpus_run
    for sid in HONEST:
        alone, beside = run.alone.reports.get(sid), run.batch.reports.get(sid)
        assert alone and beside, f"student {sid} has no report.json (alone: {bool(alone)}, batch: {bool(beside)})"
        assert alone["max_score"] == beside["max_score"] and not beside.get("error"), beside.get("error")
        assert _test_scores(beside) == _test_scores(alone), (
            f"honest student {sid}'s report.json in the attacked batch differs from grading it alone:\n"
            f"alone:\n{_failed_lines(alone)}\nbeside the attacks:\n{_failed_lines(beside)}\n"
            f"fields added: {sorted(set(beside) - set(alone) - {'student_name'})}")
        automatic = [t for cp in alone["checkpoints"] for t in cp["tests"] if t.get("outcome") != "pending"]
        assert automatic and all(t["score"] == t["max_score"] for t in automatic), (
            f"the reference did not earn every automatic point alone, so the ceiling is off:\n{_failed_lines(alone)}")


def test_no_listener_heard_anything(corpus_run: CorpusRun) -> None:
    hits = corpus_run.listeners.hits
    assert not hits, "code in the batch reached the test's listeners (network exfiltration):\n" + "\n".join(
        f"  {where} from {peer}: {data[:160]!r}" for where, peer, data in hits[:20])


def test_no_grader_secret_in_any_output(corpus_run: CorpusRun) -> None:
    run = corpus_run
    found = []
    for path in _files_under(run.batch.out):
        if ".work" in path.relative_to(run.batch.out).parts:
            continue
        data = path.read_bytes()
        found += [f"{what} in {path.relative_to(run.batch.out)}" for what, value in run.secrets.items()
                  if what != "the batch seed" and value.encode() in data]
    assert not found, "grader secrets in the batch's output:\n  " + "\n  ".join(found)


# -- one attack ------------------------------------------------------------------------------------------
def _traffic_of(run: CorpusRun, name: str, key: str) -> list[str]:
    canary = make_canary(run.batch.seeds[key]) if key in run.batch.seeds else None
    tags = [f"ADV:{name}".encode(), f"adv-{name.replace('_', '-')}".encode()]
    if canary:
        tags += [canary.encode(), canary[3:].encode()]
    return [f"{where} from {peer}: {data[:160]!r}" for where, peer, data in run.listeners.hits
            if any(tag in data for tag in tags)]


def _alive(argv0: str) -> list[int]:
    import psutil

    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info.get("cmdline") or []
        if cmdline and cmdline[0] == argv0:
            pids.append(proc.pid)
    return pids


@pytest.mark.parametrize("name", ATTACKS)
def test_attack_is_contained(name: str, corpus_run: CorpusRun) -> None:
    run = corpus_run
    spec, key = run.specs[name], run.ids[name]
    ctx = _Context({**run.ctx.values, "KEY": key, "ID": key, "NAME": name})
    needs = f"\n(this check depends on grader work in progress: {spec['needs']})" if spec.get("needs") else ""
    title = f"attack {name}: {' '.join(spec['attack'].split())}\nexpected defence: {spec['defence']}{needs}\n"

    # 1. the batch finished, with a row for the attacker
    assert run.batch.finished, title + "the batch did not finish:\n" + run.batch.describe()
    row, report = run.batch.rows.get(key), run.batch.reports.get(key)
    assert row is not None and report is not None, title + f"no row/report for {key}\n" + run.batch.describe()
    problems: list[str] = []

    # 2. the honest submissions earned what they earn alone, and carry no trace of this attack
    marker = f"ADV:{name}".encode()
    for sid in HONEST:
        alone_row, beside_row = run.alone.rows.get(sid, {}), run.batch.rows.get(sid, {})
        if _honest_columns(beside_row) != _honest_columns(alone_row):
            problems.append(f"honest student {sid}'s grades.csv row: {_honest_columns(beside_row)} beside the "
                            f"attacks, {_honest_columns(alone_row)} alone")
        traces = [str(p.relative_to(run.batch.out)) for p in _files_under(run.batch.out / "submissions" / sid)
                  if marker in p.read_bytes()]
        if traces:
            problems.append(f"it changed honest student {sid}'s files: {traces}")

    # 3. no more than honest work earns: the reference graded alone is the ceiling
    ceiling_report = run.alone.reports["10000"]
    ceiling = _test_scores(ceiling_report)
    scores = _test_scores(report)
    if float(row["score"]) != float(report.get("score", 0)):
        problems.append(f"grades.csv says {row['score']}, its report.json {report.get('score')}")
    if float(report.get("score", 0)) > float(ceiling_report["score"]):
        problems.append(f"it scored above the reference ({ceiling_report['score']})")
    if report.get("max_score") != ceiling_report["max_score"]:
        problems.append(f"its max score is {report.get('max_score')}, not {ceiling_report['max_score']} (forged?)")
    if not {cp["id"] for cp in report.get("checkpoints", [])} <= set(ONLY.split(",")):
        problems.append("its report has checkpoints that were not graded (forged?)")
    above = {t: s for t, s in scores.items() if s > ceiling.get(t, 0.0)}
    if above:
        problems.append(f"items scored above the reference: {above}")
    if spec.get("row_error") and not (report.get("error") and float(report.get("score", 0)) == 0.0):
        problems.append("it should have been refused (an error row scoring 0)")
    forfeit = spec.get("forfeit", [])
    kept = {t: s for t, s in scores.items() if s > 0 and any(fnmatch.fnmatchcase(t, g) for g in forfeit)}
    if kept:
        problems.append(f"the attack went unnoticed: these items still earned points: {kept}")

    # 4. the report says what happened
    feedback = _feedback(report, row, run.batch.notes.get(key, []))
    said = [e for e in spec["expect"] if (e.split(":", 1)[1] in str(report.get("isolation", ""))
                                           if e.startswith("isolation:") else e.lower() in feedback.lower())]
    if not said:
        problems.append(f"its feedback names none of {spec['expect']}")

    # nothing escaped
    heard = _traffic_of(run, name, key)
    if heard:
        problems.append("the test's listeners received its traffic: " + "; ".join(heard))
    text = json.dumps(report, ensure_ascii=False) + feedback
    stolen = [what for what, value in run.secrets.items()
              if value in (text if what != "the batch seed" else feedback)]
    stolen += [f"{s!r}" for s in spec.get("forbidden", []) if s in text]
    if stolen:
        problems.append(f"its report hands back: {stolen}")
    if spec.get("forbid_canary") and key in run.batch.seeds:
        canary = make_canary(run.batch.seeds[key])
        raw = [str(p.relative_to(run.batch.out)) for p in _files_under(run.batch.out / "submissions" / key)
               if canary[3:].encode() in p.read_bytes()]
        if raw:
            problems.append(f"its canary token is written unmasked into {raw}")
    present = [p for p in map(ctx.fill, spec.get("must_not_exist", [])) if os.path.lexists(p)]
    if present:
        problems.append(f"it wrote outside its folder: {present}")
    gone = [p for p in map(ctx.fill, spec.get("must_exist", [])) if not os.path.lexists(p)]
    if gone:
        problems.append(f"it deleted: {gone}")
    if spec.get("leftover_process"):
        alive = _alive(ctx.fill(spec["leftover_process"]))
        for pid in alive:                                    # do not leave it running on this machine
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if alive:
            problems.append(f"its processes outlived the grading: {alive}")
    if spec.get("leftover_glob"):
        left = [p for p in glob.glob(ctx.fill(spec["leftover_glob"])) if os.path.getmtime(p) >= run.started]
        for path in left:                                    # the grader's leak: clean up after it
            shutil.rmtree(Path(path).parents[3], ignore_errors=True)
        if left:
            copies = [str(Path(p).parents[3]) for p in left]
            problems.append(f"the grader left {len(left)} copies of it behind: {copies}")
    for raw_text in spec.get("forbidden_in_outputs", []):
        leaked = _rendered_raw(run.batch.out, raw_text)
        if leaked:
            problems.append(f"{raw_text!r} is live markup (not escaped) in {leaked}")
    if spec.get("csv_cells_inert"):
        live = _live_formulas(run.batch.out)
        if live:
            problems.append(f"spreadsheet formulas in the batch's csv files: {live}")

    assert not problems, (
        title + f"its report: {report.get('score')} / {report.get('max_score')} ({report.get('isolation')})\n"
        + _failed_lines(report) + "\nPROBLEMS:\n" + "\n".join(f"  - {p}" for p in problems))
