"""Find Hugging Face tokens in a submission — reading it as data, running nothing from it.

``scan_submission(root)`` looks everywhere a token must never be (the ``auth`` checkpoint):

* every text file under ``root`` (size-capped; binary files skipped; symlinks are not followed, so
  nothing outside ``root`` is ever read);
* notebooks, parsed with nbformat: cell sources and cell outputs are reported separately (an output
  that shows a token is a leak even when the code that printed it looks harmless); a notebook that
  does not parse is scanned as plain text, and anything in a notebook outside its cells (metadata)
  is still found by a plain-text pass;
* ``.env`` files (``.env``, ``.env.local``, ``.env.example``, ``*.env``, ``.envrc``): handing one in
  with a token is a leak; a placeholder such as ``hf_your_token_here`` is not a token;
* the git repository (``root/.git``): every object in it — blobs of every version of every file,
  commit and tag messages, dangling objects left by an amend or a reset — plus the text files of
  ``.git`` itself (``config`` with a remote URL like ``https://user:hf_…@huggingface.co``, logs).

A *token* is anything matching ``hf_[A-Za-z0-9]{30,}`` (the shape of real user access tokens) or one
of ``extra_secrets`` (the grader's canary). Excerpts are masked (``hf_…w9Qz``): a full token is never
put in a result, a message or a log.

Other secrets (cloud keys, API tokens of other services, private keys, passwords in URLs) are found
by Yelp's maintained scanner `detect-secrets <https://github.com/Yelp/detect-secrets>`_, run on the
same text (files, notebook cells, git objects) with its format-specific plugins and its default
false-positive filters — not its entropy or keyword heuristics, which flag image data in notebook
outputs and hashes in results files. Its findings carry ``rule`` = the detect-secrets type (e.g.
"AWS Access Key"); the Hugging Face rule's carry ``rule = "hf-token"``. The secret itself is
masked in the excerpt just the same.

``scan_tree_for_secrets(root, secrets)`` is the runtime counterpart: the exact secrets (the canary)
in every file under ``root``, text or binary — for the files student code wrote while it ran.

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

import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

__all__ = ["Leak", "ScanResult", "TOKEN_RE", "HF_RULE", "scan_submission", "scan_text", "scan_tree_for_secrets",
           "mask_secret", "redact"]

# The shape of a real Hugging Face user access token. Placeholders ("hf_your_token_here",
# "hf_xxx", masked forms like "hf_…w9Qz") do not match: "_" and "…" are not in the class.
TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{30,}")

MAX_FILE_BYTES = 5 * 2**20          # only the first 5 MiB of a file (or git blob) is scanned
MAX_FILES = 20_000                  # files read from the work tree (and from .git, not objects)
MAX_TOTAL_BYTES = 200 * 2**20       # bytes read from the work tree
MAX_GIT_COPY_BYTES = 512 * 2**20    # size of .git/objects the grader will copy and read
MAX_GIT_OUTPUT_BYTES = 1024 * 2**20  # bytes read from git cat-file
GIT_TIMEOUT_S = 120.0
MAX_LEAKS = 200                     # more than this is noise; the result says it stopped
MIN_EXTRA_SECRET_LEN = 8            # shorter "secrets" would match everywhere
EXCERPT_CHARS = 160
HF_RULE = "hf-token"
# A value detect-secrets reports that is a placeholder, not a secret.
PLACEHOLDER_RE = re.compile(r"…|\*{3}|x{4}|X{4}|[<>{}$]|your|example|placeholder|changeme|redacted",
                            re.IGNORECASE)

# detect-secrets plugins for secrets with a recognisable format. Left out on purpose: the entropy
# detectors (Base64HighEntropyString, HexHighEntropyString: every PNG in a notebook output and every
# sha256 in a results file would be a "secret"), KeywordDetector (any `password = ...` line, including
# placeholders in teaching text) and IPPublicDetector (not a secret).
DETECT_SECRETS_PLUGINS = (
    "ArtifactoryDetector", "AWSKeyDetector", "AzureStorageKeyDetector", "BasicAuthDetector",
    "CloudantDetector", "DiscordBotTokenDetector", "GitHubTokenDetector", "GitLabTokenDetector",
    "IbmCloudIamDetector", "IbmCosHmacDetector", "JwtTokenDetector", "MailchimpDetector", "NpmDetector",
    "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector", "SlackDetector",
    "SoftlayerDetector", "SquareOAuthDetector", "StripeDetector", "TelegramBotTokenDetector",
    "TwilioKeyDetector",
)

DOTENV_NAMES = {".env", ".envrc"}
SOURCE_SUFFIXES = {".py", ".pyw", ".pyi", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd",
                   ".js", ".mjs", ".cjs", ".ts", ".r", ".jl", ".rb", ".go", ".rs", ".java", ".c",
                   ".cc", ".cpp", ".h", ".hpp", ".sql"}
SOURCE_NAMES = {"Dockerfile", "Makefile", "Procfile", "Containerfile"}
# Third-party code and caches, not the student's own: a virtual environment (any folder holding a
# pyvenv.cfg) is skipped too. Notebook checkpoints (.ipynb_checkpoints) are scanned: they keep outputs.
SKIPPED_DIRS = {"node_modules", "site-packages", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
                ".tox", ".nox"}


@dataclass(frozen=True)
class Leak:
    """One token found somewhere it must not be.

    ``where``: a path relative to the submission (``inference_lab/auth.py``), or ``git:<commit>:<path>``
    / ``git:<object>`` for something found in the repository's objects. ``line``: 1-based line within
    the file, the cell's source or output, or the git object (None when not meaningful). ``cell``:
    the notebook cell's index (0-based), for notebook kinds. ``excerpt``: the line with every token
    masked.
    """

    where: str
    line: int | None
    kind: str  # source | notebook-source | notebook-output | dotenv | git-history | file
    excerpt: str
    cell: int | None = None
    rule: str = HF_RULE  # "hf-token", or the detect-secrets type ("AWS Access Key", ...)

    def describe(self) -> str:
        """One line for a student: where, what kind, and the masked excerpt."""
        place = self.where
        if self.cell is not None:
            place += f", cell {self.cell + 1}"
        if self.line is not None:
            place += f", line {self.line}"
        what = {
            "source": "in source code",
            "notebook-source": "in a notebook cell's source",
            "notebook-output": "in a notebook cell's saved output",
            "dotenv": "in a .env file handed in",
            "git-history": "in git history",
            "file": "in a file",
        }.get(self.kind, self.kind)
        if self.rule != HF_RULE:
            what = f"{self.rule}, {what}"
        return f"{place} ({what}): {self.excerpt}"


class ScanResult(list):
    """``list[Leak]`` plus what could not be checked.

    ``incomplete``: reasons something was not (fully) scanned — git missing or failing, a size cap
    reached. A scan with ``incomplete`` reasons and no leaks has *not* shown the absence of leaks.
    ``notes``: facts worth knowing that do not weaken the result (files skipped as binary, …).
    """

    def __init__(self, leaks: Iterable[Leak] = ()) -> None:
        super().__init__(leaks)
        self.incomplete: list[str] = []
        self.notes: list[str] = []
        self.git_checked: bool = False   # a repository was found and every object of it was read
        self.files_scanned: int = 0
        self.git_objects_scanned: int = 0


# -- masking ---------------------------------------------------------------------------------------
def mask_secret(secret: str) -> str:
    """``hf_…w9Qz``: the ``hf_`` prefix (if any) and at most the last 4 characters."""
    prefix = "hf_" if secret.startswith("hf_") else ""
    tail = secret[-4:] if len(secret) >= 16 else ""
    return f"{prefix}…{tail}"


class _DetectSecrets:
    """detect-secrets with :data:`DETECT_SECRETS_PLUGINS`, one line at a time.

    Its settings are process-global, so every use holds a lock and its own transient settings. A
    whole text is first checked against the plugins' own patterns (one C regex pass each), so the
    per-line scan only runs on the few texts that may hold such a secret.
    """

    _lock = threading.Lock()
    _patterns: list | None = None

    @staticmethod
    def _settings() -> dict:
        return {"plugins_used": [{"name": name} for name in DETECT_SECRETS_PLUGINS]}

    @classmethod
    def _prefilter(cls) -> list:
        if cls._patterns is None:
            from detect_secrets.core.scan import get_plugins
            from detect_secrets.settings import transient_settings

            patterns = []
            with cls._lock, transient_settings(cls._settings()):
                for plugin in get_plugins():
                    patterns.extend(getattr(plugin, "denylist", ()) or ())
            cls._patterns = patterns
        return cls._patterns

    @classmethod
    def findings(cls, text: str) -> list[tuple[int, str, str]]:
        """(1-based line, secret type, secret value) for every secret detect-secrets finds in text."""
        patterns = cls._prefilter()
        if patterns and not any(p.search(text) for p in patterns):
            return []
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import transient_settings

        found = []
        with cls._lock, transient_settings(cls._settings()):
            for number, line in enumerate(text.splitlines(), start=1):
                if patterns and not any(p.search(line) for p in patterns):
                    continue
                for secret in scan_line(line):
                    if secret.secret_value:
                        found.append((number, str(secret.type), str(secret.secret_value)))
        return found


class _Matcher:
    def __init__(self, extra_secrets: Iterable[str], other_secrets: bool = False) -> None:
        extras = sorted({s for s in (extra_secrets or ()) if isinstance(s, str)
                         and len(s) >= MIN_EXTRA_SECRET_LEN}, key=len, reverse=True)
        self.extras = extras
        self.extras_bytes = [s.encode("utf-8") for s in extras]
        self.other_secrets = other_secrets

    def spans(self, text: str) -> list[tuple[int, int]]:
        found = [(m.start(), m.end()) for m in TOKEN_RE.finditer(text)]
        for secret in self.extras:
            start = text.find(secret)
            while start != -1:
                found.append((start, start + len(secret)))
                start = text.find(secret, start + 1)
        found.sort()
        merged: list[tuple[int, int]] = []
        for start, end in found:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
            else:
                merged.append((start, end))
        return merged

    def quick_check(self, text: str) -> bool:
        return "hf_" in text or any(secret in text for secret in self.extras)


def _masked_excerpt(line: str, spans: list[tuple[int, int]]) -> str:
    """The line with every span replaced by its masked form, shortened around the first one."""
    pieces: list[str] = []
    last, first_at = 0, 0
    for number, (start, end) in enumerate(spans):
        pieces.append(line[last:start])
        if number == 0:
            first_at = len("".join(pieces))
        pieces.append(mask_secret(line[start:end]))
        last = end
    pieces.append(line[last:])
    masked = "".join(ch if ch.isprintable() else " " for ch in "".join(pieces))
    leading = len(masked) - len(masked.lstrip())
    masked = masked.strip()
    first_at = max(0, first_at - leading)
    if len(masked) > EXCERPT_CHARS:
        start = max(0, min(first_at - EXCERPT_CHARS // 3, len(masked) - EXCERPT_CHARS))
        end = start + EXCERPT_CHARS
        masked = ("…" if start else "") + masked[start:end] + ("…" if end < len(masked) else "")
    return masked


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """``text`` with every token (and every ``extra_secrets`` value) masked, for messages and logs."""
    text = str(text)
    matcher = _Matcher(extra_secrets)
    if not matcher.quick_check(text):
        return text
    pieces, last = [], 0
    for start, end in matcher.spans(text):
        pieces += [text[last:start], mask_secret(text[start:end])]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def scan_text(text: str, *, where: str, kind: str, matcher: "_Matcher | None" = None,
              extra_secrets: Iterable[str] = (), cell: int | None = None,
              line_offset: int = 0, other_secrets: bool = False) -> list[Leak]:
    """Every line of ``text`` holding a token, as masked leaks (one per line).

    With ``other_secrets`` (or a matcher made with it), detect-secrets' findings too: one leak per
    line and secret type, unless the secret is (part of) a token the Hugging Face rule found.
    """
    matcher = matcher or _Matcher(extra_secrets, other_secrets)
    leaks = []
    if matcher.quick_check(text):
        for number, line in enumerate(text.splitlines(), start=1):
            spans = matcher.spans(line)
            if spans:
                leaks.append(Leak(where=where, line=number + line_offset, kind=kind,
                                  excerpt=_masked_excerpt(line, spans), cell=cell))
    if matcher.other_secrets:
        leaks.extend(_other_secrets(text, where=where, kind=kind, matcher=matcher, cell=cell,
                                    line_offset=line_offset))
    return leaks


def _other_secrets(text: str, *, where: str, kind: str, matcher: "_Matcher", cell: int | None,
                   line_offset: int) -> list[Leak]:
    found = _DetectSecrets.findings(text)
    if not found:
        return []
    lines = text.splitlines()
    by_line: dict[tuple[int, str], list[str]] = {}
    for number, secret_type, value in found:
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        secret = _whole_secret(line, value)
        if PLACEHOLDER_RE.search(secret):
            continue  # "https://user:hf_…@host", "<password>", "your-key-here": teaching text
        hf_spans = matcher.spans(line)
        if matcher.spans(secret) or any(secret in line[a:b] for a, b in hf_spans):
            continue  # a Hugging Face token (e.g. the password of a URL): reported by the HF rule
        by_line.setdefault((number, secret_type), []).append(secret)
    leaks = []
    for (number, secret_type), secrets in sorted(by_line.items()):
        line = lines[number - 1] if 0 < number <= len(lines) else ""
        spans = []
        for secret in secrets:
            start = line.find(secret)
            while start != -1:
                spans.append((start, start + len(secret)))
                start = line.find(secret, start + 1)
        spans = _merged(spans)
        excerpt = _masked_excerpt(line, spans) if spans else "(the secret is not shown)"
        leaks.append(Leak(where=where, line=number + line_offset, kind=kind, excerpt=excerpt, cell=cell,
                          rule=secret_type))
    return leaks


def _whole_secret(line: str, value: str) -> str:
    """The secret to mask: detect-secrets' value, or — when that is only a short part of the secret
    (GitHubTokenDetector reports just "ghp") — the whole match of the plugin pattern holding it."""
    if len(value) >= 8:
        return value
    best = value
    for pattern in _DetectSecrets._prefilter():
        for match in pattern.finditer(line):
            whole = match.group(0)
            if value in whole and len(whole) > len(best):
                best = whole
    return best


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _secrets_in(text: str, matcher: _Matcher) -> set[str]:
    return {text[start:end] for start, end in matcher.spans(text)}


# -- reading files as data -------------------------------------------------------------------------
def _decode(data: bytes) -> str | None:
    """Text from bytes, or None for binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:8192]:
        return None
    return data.decode("utf-8", errors="replace")


def _read_capped(path: Path, cap: int) -> tuple[bytes, bool] | None:
    """Read at most ``cap`` bytes of a regular file without following a symlink; (data, truncated)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device would block or never end
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(cap + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data[:cap], len(data) > cap


def _kind_of(rel: Path) -> str:
    name = rel.name
    if name in DOTENV_NAMES or name.startswith(".env.") or name.endswith(".env"):
        return "dotenv"
    if rel.suffix.lower() in SOURCE_SUFFIXES or name in SOURCE_NAMES:
        return "source"
    return "file"


def _iter_files(root: Path, result: ScanResult) -> Iterator[tuple[Path, Path]]:
    """(absolute path, relative path) of every regular file under root, never following a link.

    ``.git`` folders are yielded separately by the caller (their objects are not text files).
    """
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for name in sorted(dirnames):
            full = here / name
            if full.is_symlink():
                result.notes.append(f"{full.relative_to(root)}: a symbolic link to a folder, not followed")
            elif name == ".git":
                continue
            elif name in SKIPPED_DIRS or (full / "pyvenv.cfg").is_file():
                result.notes.append(f"{full.relative_to(root)}: third-party packages or a cache, not scanned")
            else:
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            full = here / name
            if full.is_symlink():
                result.notes.append(f"{full.relative_to(root)}: a symbolic link, not followed")
                continue
            yield full, full.relative_to(root)


def _notebook_parts(text: str) -> list[tuple[int, str, str]] | None:
    """(cell index, kind, text) of every cell source and output; None if it is not a notebook."""
    import nbformat

    try:
        nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except Exception:  # noqa: BLE001 - anything that does not parse is read as text
        return None
    cells = nb.get("cells")
    if cells is None:  # nbformat 3: worksheets
        cells = [c for ws in nb.get("worksheets", []) or [] for c in ws.get("cells", []) or []]
    if not isinstance(cells, list):
        return None
    parts: list[tuple[int, str, str]] = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        parts.append((index, "notebook-source", _joined(source)))
        for output in cell.get("outputs", []) or []:
            if isinstance(output, dict):
                parts.append((index, "notebook-output", _output_text(output)))
        for attachment in (cell.get("attachments") or {}).values():
            parts.append((index, "notebook-source", _output_text({"data": attachment})))
    return parts


def _joined(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v if isinstance(v, str) else json.dumps(v) for v in value)
    if value is None:
        return ""
    return json.dumps(value, default=str)


def _output_text(output: dict) -> str:
    """All the text an output carries: streams, every mimetype's data, errors and tracebacks."""
    pieces = []
    for key in ("text", "ename", "evalue"):
        if key in output:
            pieces.append(_joined(output[key]))
    if "traceback" in output:
        pieces.append("\n".join(_joined(line) for line in output["traceback"] or []))
    data = output.get("data")
    if isinstance(data, dict):
        for mimetype, value in data.items():
            if str(mimetype).startswith("image/") and not str(mimetype).startswith("image/svg"):
                continue  # base64 pixels
            pieces.append(_joined(value))
    metadata = output.get("metadata")
    if metadata:
        pieces.append(_joined(metadata))
    return "\n".join(pieces)


def _scan_notebook(text: str, rel: str, matcher: _Matcher) -> list[Leak]:
    parts = _notebook_parts(text)
    if parts is None:
        return scan_text(text, where=rel, kind="file", matcher=matcher)
    leaks: list[Leak] = []
    seen: set[str] = set()
    for index, kind, part in parts:
        found = scan_text(part, where=rel, kind=kind, matcher=matcher, cell=index)
        if found:
            leaks.extend(found)
            seen |= _secrets_in(part, matcher)
    # Anything else in the file (notebook or cell metadata, widget state): a plain-text pass.
    for leak_line, line in enumerate(text.splitlines(), start=1):
        spans = [s for s in matcher.spans(line) if line[s[0]:s[1]] not in seen]
        if spans:
            leaks.append(Leak(where=rel, line=leak_line, kind="file",
                              excerpt=_masked_excerpt(line, spans)))
    return leaks


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
            full = here / name
            if full.is_symlink() or not full.is_file():
                continue
            total += full.stat().st_size
            if total > MAX_GIT_COPY_BYTES:
                result.incomplete.append(f"{label}: the repository is larger than "
                                         f"{MAX_GIT_COPY_BYTES // 2**20} MiB; its history was not checked")
                return False
            shutil.copyfile(full, dst / rel, follow_symlinks=False)
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


def _read_batch(proc: subprocess.Popen, on_object, result: ScanResult, label: str) -> bool:
    """Parse ``cat-file --batch`` output: '<oid> <type> <size>\\n<content>\\n' per object."""
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
        remaining = size - len(data)
        while remaining > 0:  # skip what is past the per-object cap
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)
        stream.read(1)  # the newline after the content
        total += size + 1
        if len(data) < keep or remaining > 0:
            result.incomplete.append(f"{label}: git cat-file output ended early")
            return False
        on_object(oid, kind, data, size > keep)


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

        def on_object(oid: str, kind: str, data: bytes, truncated: bool) -> None:
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
            if text is None:
                return
            if truncated:
                result.notes.append(f"{label}: object {oid[:12]} is larger than "
                                    f"{MAX_FILE_BYTES // 2**20} MiB; only its start was scanned")
            where = f"{tag}{oid[:12]}" if kind == "blob" else f"{tag}{kind} {oid[:12]}"
            found = scan_text(text, where=where, kind="git-history", matcher=matcher)
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
            complete = _read_batch(proc, on_object, result, label)
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
            got = _read_capped(full, MAX_FILE_BYTES)
            if got is None:
                continue
            text = _decode(got[0])
            if text is not None:
                result.extend(scan_text(text, where=full.relative_to(root).as_posix(), kind="file",
                                        matcher=matcher))


# -- the scan --------------------------------------------------------------------------------------
def scan_submission(root: Path, *, extra_secrets: Iterable[str] = (), other_secrets: bool = True) -> ScanResult:
    """Every token in the submission at ``root``: files, notebooks, .env files and git history.

    Returns a :class:`ScanResult` (a ``list[Leak]``); check ``result.incomplete`` too — it lists what
    could not be checked (e.g. git is missing), which is not the same as "no leak". Leaks with
    ``rule == HF_RULE`` are Hugging Face tokens (or ``extra_secrets``); with ``other_secrets`` the
    other secrets detect-secrets finds are in the result too, with their type as ``rule``.
    """
    root = Path(root)
    result = ScanResult()
    if root.is_symlink() or not root.is_dir():
        result.incomplete.append(f"{root} is not a folder (or is a symbolic link); nothing was scanned")
        return result
    root = root.resolve()
    matcher = _Matcher(extra_secrets, other_secrets)
    total = 0
    binary = 0
    for full, rel in _iter_files(root, result):
        if result.files_scanned >= MAX_FILES:
            result.incomplete.append(f"more than {MAX_FILES} files; the rest were not scanned")
            break
        if total >= MAX_TOTAL_BYTES:
            result.incomplete.append(f"more than {MAX_TOTAL_BYTES // 2**20} MiB of files; the rest were "
                                     "not scanned")
            break
        got = _read_capped(full, MAX_FILE_BYTES)
        if got is None:
            continue
        data, truncated = got
        total += len(data)
        result.files_scanned += 1
        text = _decode(data)
        if text is None:
            binary += 1
            continue
        if truncated:
            result.notes.append(f"{rel.as_posix()}: larger than {MAX_FILE_BYTES // 2**20} MiB; only its "
                                "start was scanned")
        where = rel.as_posix()
        if rel.suffix.lower() == ".ipynb":
            result.extend(_scan_notebook(text, where, matcher))
        else:
            result.extend(scan_text(text, where=where, kind=_kind_of(rel), matcher=matcher))
        if len(result) > MAX_LEAKS:
            break
    if binary:
        result.notes.append(f"{binary} binary file(s) skipped")

    git_dirs = []
    for dirpath, dirnames, _ in os.walk(root, followlinks=False):
        here = Path(dirpath)
        if ".git" in dirnames:
            candidate = here / ".git"
            if candidate.is_symlink():
                result.notes.append(f"{candidate.relative_to(root)}: a symbolic link, not followed")
            else:
                git_dirs.append(candidate)
        dirnames[:] = [d for d in dirnames if d != ".git" and not (here / d).is_symlink()]
        if len(git_dirs) >= 5:
            break
    dotgit_file = root / ".git"
    if dotgit_file.is_file() and not dotgit_file.is_symlink():
        result.notes.append(".git is a file (a worktree or submodule pointer); its repository lies "
                            "outside the submission and was not read")
    checked = []
    for git_dir in git_dirs:
        _scan_git_dir_files(root, git_dir, matcher, result)
        checked.append(_scan_git(root, git_dir, matcher, result))
    result.git_checked = bool(checked) and all(checked)
    if len(result) > MAX_LEAKS:
        del result[MAX_LEAKS:]
        result.notes.append(f"stopped after {MAX_LEAKS} findings")
    return result


# -- runtime: what student code wrote ---------------------------------------------------------------
def scan_tree_for_secrets(root: Path, secrets: Iterable[str], *, skip: Iterable[Path] = (),
                          max_files: int = MAX_FILES, max_bytes: int = MAX_FILE_BYTES) -> ScanResult:
    """Every file under ``root`` holding one of ``secrets`` (exact strings, e.g. the canary).

    For the files student code wrote while it ran: every regular file, text or binary (a secret
    in a PNG text chunk or a pickle counts), read as bytes and searched for each secret in UTF-8 and
    UTF-16; text files report the line. Symbolic links are not followed; ``skip`` lists paths (files
    or folders) that are not looked at. Leaks are ``kind="file"`` with masked excerpts.
    """
    root = Path(root)
    result = ScanResult()
    wanted = [s for s in {str(x) for x in secrets} if len(s) >= MIN_EXTRA_SECRET_LEN]
    if not wanted or not root.is_dir():
        return result
    skipped = {Path(p).resolve() for p in skip}
    needles = [(s, s.encode("utf-8"), s.encode("utf-16-le")) for s in wanted]
    matcher = _Matcher(wanted)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames
                             if not (here / d).is_symlink() and (here / d).resolve() not in skipped)
        for name in sorted(filenames):
            full = here / name
            if full.is_symlink() or full.resolve() in skipped:
                continue
            if result.files_scanned >= max_files:
                result.incomplete.append(f"more than {max_files} files; the rest were not scanned")
                return result
            got = _read_capped(full, max_bytes)
            if got is None:
                continue
            data, truncated = got
            result.files_scanned += 1
            if truncated:
                result.notes.append(f"{full.relative_to(root).as_posix()}: only its first "
                                    f"{max_bytes // 2**20} MiB were scanned")
            if not any(utf8 in data or utf16 in data for _, utf8, utf16 in needles):
                continue
            rel = full.relative_to(root).as_posix()
            text = _decode(data)
            found = scan_text(text, where=rel, kind="file", matcher=matcher) if text is not None else []
            if not found:  # binary, or only its UTF-16 form in a UTF-8 file: name the file
                hit = next(s for s, utf8, utf16 in needles if utf8 in data or utf16 in data)
                found = [Leak(where=rel, line=None, kind="file",
                              excerpt=f"(binary data holding {mask_secret(hit)})")]
            result.extend(found)
    return result
