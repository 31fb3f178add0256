"""The git repository of a submission (``root/.git``): every object in it — blobs of every version of
every file, commit and tag messages, dangling objects left by an amend or a reset — plus the text
files of ``.git`` itself (``config`` with a remote URL like ``https://user:hf_…@huggingface.co``, logs).

Why ``git cat-file --batch-all-objects --batch`` and nothing else: it reads objects, byte for byte,
from the object store. It has no textconv, no clean/smudge filters, no diff drivers, no pager, no
hooks and no fsmonitor, and it never touches the work tree or the index — so nothing a submission
configured (``.git/config``, ``.gitattributes``, ``.git/hooks``) can run. ``git log -p`` or
``git diff`` would apply textconv/diff drivers from the submission's own config; ``git status``
would run its ``core.fsmonitor`` command. As defence in depth git runs with ``GIT_CONFIG_NOSYSTEM=1``,
``GIT_CONFIG_GLOBAL=/dev/null``, ``-c core.hooksPath=/dev/null -c core.fsmonitor=false``, every
remote protocol refused, a timeout and an output cap — and it does not even open the submission's
repository: the object files are copied (plain files only, no symlinks, no ``info/alternates``) into
a fresh bare repository of the grader's own, so the submission's ``.git/config`` is never read by git
at all (it is scanned as text, as data).

If git is not installed (or fails, or times out) the result says so in ``result.incomplete``: the
history was not checked, which is never reported as "no leak".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from grading.leaks.files import MAX_FILE_BYTES, _decode, _read_capped, _read_or_note, _uncovered
from grading.leaks.matcher import _Matcher
from grading.leaks.model import Leak, ScanResult
from grading.leaks.stream import ByteScanner
from grading.leaks.text import scan_text
from grading.safe_read import RefusedFile, open_regular

MAX_GIT_COPY_BYTES = 512 * 2**20    # size of .git/objects the grader will copy and read
MAX_GIT_OUTPUT_BYTES = 1024 * 2**20  # bytes read from git cat-file
GIT_TIMEOUT_S = 120.0


# -- git -------------------------------------------------------------------------------------------
def _git_env(home: Path) -> dict[str, str]:
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
    env.update({
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "HOME": str(home),                 # no ~/.gitconfig of the grader's either
        "XDG_CONFIG_HOME": str(home),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "true",
        "GIT_PROTOCOL_FROM_USER": "0",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_NO_LAZY_FETCH": "1",          # git >= 2.44; the protocol settings below cover older ones
        "GIT_OPTIONAL_LOCKS": "0",
        "GIT_PAGER": "cat",
        "PAGER": "cat",
        "GIT_ATTR_NOSYSTEM": "1",
    })
    return env


GIT_SAFE_CONFIG = ("-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
                   "-c", "protocol.allow=never", "-c", "protocol.file.allow=never",
                   "-c", "protocol.ext.allow=never", "-c", "core.pager=cat",
                   "-c", "core.attributesFile=/dev/null")


def _object_format(git_dir: Path) -> str:
    """sha1 or sha256, read from the submission's config as data (never handed to git)."""
    got = _read_capped(git_dir / "config", 256 * 1024)
    if got and re.search(rb"(?im)^\s*objectformat\s*=\s*sha256\s*$", got[0]):
        return "sha256"
    return "sha1"


def _copy_objects(src: Path, dst: Path, result: ScanResult, label: str) -> bool:
    """Copy the object store as plain files: no symlinks, no alternates, within a size cap."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(src)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()]
        (dst / rel_dir).mkdir(parents=True, exist_ok=True)
        for name in filenames:
            rel = rel_dir / name
            if rel.parts[:1] == ("info",) and name in ("alternates", "http-alternates"):
                result.notes.append(f"{label}: objects/info/{name} ignored (it points outside the submission)")
                continue
            try:   # a regular file, not a link nor a pipe (not even one swapped in after the walk saw it)
                with open_regular(here / name, root=src) as handle:
                    total += os.fstat(handle.fileno()).st_size
                    if total > MAX_GIT_COPY_BYTES:
                        result.incomplete.append(f"{label}: the repository is larger than "
                                                 f"{MAX_GIT_COPY_BYTES // 2**20} MiB; its history was not checked")
                        return False
                    with open(dst / rel, "xb") as out:
                        shutil.copyfileobj(handle, out)
            except (RefusedFile, OSError):
                continue
    return True


def _parse_tree(data: bytes, hash_len: int) -> list[tuple[str, str, str]]:
    """(mode, name, object id) of each entry of a raw tree object."""
    entries, pos = [], 0
    while pos < len(data):
        space = data.find(b" ", pos)
        nul = data.find(b"\x00", space)
        if space < 0 or nul < 0 or nul + 1 + hash_len > len(data):
            break
        mode = data[pos:space].decode("ascii", "replace")
        name = data[space + 1:nul].decode("utf-8", "replace")
        oid = data[nul + 1:nul + 1 + hash_len].hex()
        entries.append((mode, name, oid))
        pos = nul + 1 + hash_len
    return entries


def _read_batch(proc: subprocess.Popen, on_object, result: ScanResult, label: str, new_scanner=None) -> bool:
    """Parse ``cat-file --batch`` output: '<oid> <type> <size>\\n<content>\\n' per object.

    ``on_object(oid, kind, data, truncated, byte_hits)`` gets each object's first MAX_FILE_BYTES; every
    byte of it goes through ``new_scanner(kind)`` (a :class:`ByteScanner`, or None for that kind).
    """
    assert proc.stdout is not None
    stream, total = proc.stdout, 0
    while True:
        header = stream.readline(512)
        if not header:
            return True
        total += len(header)
        parts = header.decode("ascii", "replace").split()
        if len(parts) != 3 or not parts[2].isdigit():
            if len(parts) == 2 and parts[1] == "missing":
                continue
            result.incomplete.append(f"{label}: unexpected output from git cat-file ({header[:80]!r})")
            return False
        oid, kind, size = parts[0], parts[1], int(parts[2])
        if total + size > MAX_GIT_OUTPUT_BYTES:
            result.incomplete.append(f"{label}: more than {MAX_GIT_OUTPUT_BYTES // 2**20} MiB of git "
                                     "objects; the rest of the history was not checked")
            return False
        keep = min(size, MAX_FILE_BYTES)
        data = stream.read(keep)
        scanner = new_scanner(kind) if new_scanner is not None else None
        if scanner is not None:
            scanner.feed(data)
        remaining = size - len(data)
        while remaining > 0:  # past the per-object cap: searched for tokens, not kept
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                break
            if scanner is not None:
                scanner.feed(chunk)
            remaining -= len(chunk)
        stream.read(1)  # the newline after the content
        total += size + 1
        if len(data) < keep or remaining > 0:
            result.incomplete.append(f"{label}: git cat-file output ended early")
            return False
        on_object(oid, kind, data, size > keep, scanner.finish() if scanner is not None else [])


def _scan_git(root: Path, git_dir: Path, matcher: _Matcher, result: ScanResult) -> bool:
    """Scan every object of one repository; True when all of them were read."""
    rel_prefix = git_dir.parent.relative_to(root).as_posix()
    label = "git" if rel_prefix == "." else f"git ({rel_prefix})"
    tag = "git:" if rel_prefix == "." else f"git[{rel_prefix}]:"
    git = shutil.which("git")
    if git is None:
        result.incomplete.append(f"{label}: git is not installed on the grading machine, so the "
                                 "history in .git was not checked for tokens")
        return False
    objects = git_dir / "objects"
    if objects.is_symlink():
        result.notes.append(f"{label}: .git/objects is a symbolic link (out of the submission), not followed")
        return True
    if not objects.is_dir():
        result.notes.append(f"{label}: .git has no object store; no history to check")
        return True
    with tempfile.TemporaryDirectory(prefix="infergrade-git-") as tmp:
        tmp_path = Path(tmp)
        home = tmp_path / "home"
        home.mkdir()
        repo = tmp_path / "repo.git"
        env = _git_env(home)
        fmt = _object_format(git_dir)
        try:
            init = subprocess.run([git, *GIT_SAFE_CONFIG, "init", "-q", "--bare", "--template=",
                                   f"--object-format={fmt}", str(repo)],
                                  env=env, cwd=tmp, capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            result.incomplete.append(f"{label}: git could not run ({exc}); the history was not checked")
            return False
        if init.returncode != 0:
            result.incomplete.append(f"{label}: git init failed ({init.stderr.decode(errors='replace')[-200:]}); "
                                     "the history was not checked")
            return False
        shutil.rmtree(repo / "objects", ignore_errors=True)
        if not _copy_objects(objects, repo / "objects", result, label):
            return False
        for sub in ("info", "pack"):
            (repo / "objects" / sub).mkdir(exist_ok=True)

        hash_len = 32 if fmt == "sha256" else 20
        trees: dict[str, list[tuple[str, str, str]]] = {}
        commits: dict[str, str] = {}          # commit id -> root tree id
        hits: dict[str, list[Leak]] = {}      # blob id -> leaks (where filled in later)

        def new_scanner(kind: str) -> ByteScanner | None:
            return ByteScanner(matcher) if kind in ("blob", "commit", "tag") else None

        def on_object(oid: str, kind: str, data: bytes, truncated: bool, byte_hits: list) -> None:
            result.git_objects_scanned += 1
            if kind == "tree":
                trees[oid] = _parse_tree(data, hash_len)
                return
            if kind == "commit":
                first = data.split(b"\n", 1)[0]
                if first.startswith(b"tree "):
                    commits[oid] = first[5:].decode("ascii", "replace").strip()
            if kind not in ("blob", "commit", "tag"):
                return
            text = _decode(data)
            where = f"{tag}{oid[:12]}" if kind == "blob" else f"{tag}{kind} {oid[:12]}"
            found = []
            if text is not None:
                if truncated:
                    result.notes.append(f"{label}: object {oid[:12]} is larger than {MAX_FILE_BYTES // 2**20} "
                                        "MiB; its start was read as text, all of it was searched for Hugging "
                                        "Face tokens")
                found = scan_text(text, where=where, kind="git-history", matcher=matcher)
            # binary objects, and what is past the start read as text: every byte was searched for tokens
            found += [Leak(where=where, line=hit.line, kind="git-history", excerpt=hit.excerpt)
                      for hit in _uncovered(byte_hits, text, matcher)]
            if found:
                hits.setdefault(oid if kind == "blob" else f"{kind}:{oid}", []).extend(found)

        command = [git, *GIT_SAFE_CONFIG, f"--git-dir={repo}", "cat-file", "--batch-all-objects", "--batch"]
        try:
            proc = subprocess.Popen(command, env=env, cwd=tmp, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            result.incomplete.append(f"{label}: git could not run ({exc}); the history was not checked")
            return False
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            proc.kill()

        timer = threading.Timer(GIT_TIMEOUT_S, kill)
        timer.start()
        stderr_tail = b""
        try:
            complete = _read_batch(proc, on_object, result, label, new_scanner)
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=10)
                stderr_tail = proc.stderr.read()[-300:] if proc.stderr else b""
            except subprocess.TimeoutExpired:
                pass
            for handle in (proc.stdout, proc.stderr):
                if handle is not None:
                    handle.close()
        if timed_out.is_set():
            complete = False
            result.incomplete.append(f"{label}: reading the history took longer than {GIT_TIMEOUT_S:.0f} s; "
                                     "it was not fully checked")
        elif complete and proc.returncode not in (0, None):
            complete = False
            result.incomplete.append(f"{label}: git cat-file failed "
                                     f"({stderr_tail.decode(errors='replace').strip()}); the history was "
                                     "not fully checked")

        # Name each leaking blob by a commit and path that hold it (when a commit reaches it).
        paths = _blob_paths({oid for oid in hits if ":" not in oid}, commits, trees)
        for key, leaks in hits.items():
            place = paths.get(key)
            for leak in leaks:
                where = f"{tag}{place[0][:12]}:{place[1]}" if place else leak.where
                if place is None and ":" not in key:
                    where += " (a blob no commit here reaches)"
                result.append(Leak(where=where, line=leak.line, kind="git-history", excerpt=leak.excerpt))
    return complete


def _blob_paths(wanted: set[str], commits: dict[str, str], trees: dict[str, list]) -> dict[str, tuple[str, str]]:
    """blob id -> (a commit, the path of the blob in it), for as many wanted blobs as can be named."""
    found: dict[str, tuple[str, str]] = {}
    if not wanted:
        return found
    visited_trees: set[str] = set()
    for commit, root_tree in sorted(commits.items()):
        stack = [(root_tree, "")]
        while stack:
            tree, prefix = stack.pop()
            if tree in visited_trees:
                continue
            visited_trees.add(tree)
            for mode, name, oid in trees.get(tree, []):
                path = f"{prefix}{name}"
                if mode.startswith("4"):  # 40000: a subtree
                    stack.append((oid, path + "/"))
                elif oid in wanted and oid not in found:
                    found[oid] = (commit, path)
        if len(found) == len(wanted):
            break
    return found


def _scan_git_dir_files(root: Path, git_dir: Path, matcher: _Matcher, result: ScanResult) -> None:
    """The text files of .git itself (config, logs, hooks, FETCH_HEAD …), objects excluded."""
    for dirpath, dirnames, filenames in os.walk(git_dir, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not (here / d).is_symlink()
                       and not (here == git_dir and d in ("objects", "lfs"))]
        for name in filenames:
            full = here / name
            if full.is_symlink() or name == "index":
                continue
            where = full.relative_to(root).as_posix()
            scanner = ByteScanner(matcher)
            data = _read_or_note(full, root, where, MAX_FILE_BYTES, scanner, result)
            if data is None:
                continue
            text = _decode(data)
            if text is not None:
                result.extend(scan_text(text, where=where, kind="file", matcher=matcher))
            result.extend(Leak(where=where, line=hit.line, kind="file", excerpt=hit.excerpt)
                          for hit in _uncovered(scanner.hits, text, matcher))
