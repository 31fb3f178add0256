"""The `auth` checkpoint and ``grading/leaks.py``.

* reference/ and an independently written solution (tests/alt_solutions/) score 10/10;
* each known-bad variant (an `auth` mutant of reference/, built at run time from tests/mutants.py; and a
  repository whose *history* holds a token) loses points on the right test, with a message naming the
  mistake — and no report ever shows a full token;
* student_template/ scores 0 with "not implemented" messages;
* ``scan_submission`` unit tests: placeholders are not tokens, the canary is, excerpts are masked,
  symlinks and git alternates never lead outside the submission, and a submission's own git
  configuration (fsmonitor, textconv, filters, hooks) is never executed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import nbformat
import pytest

from grading.canary import make_canary
from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.leaks import HF_RULE, TOKEN_RE, Leak, mask_secret, redact, scan_submission, scan_tree_for_secrets
from mutants import FAKE, MUTANTS, build

AUTH_POINTS = 10.0
TESTS_DIR = Path(__file__).resolve().parent
ALT = TESTS_DIR / "alt_solutions"
AUTH_TESTS = ("test_get_token_from_env", "test_get_token_from_login_cache", "test_missing_token_error",
              "test_mask_hides_token", "test_no_token_in_files", "test_no_other_secrets_in_files",
              "test_no_token_in_output", "test_no_token_in_written_files",
              "test_token_only_in_authorization_header")
WORKER_TESTS = AUTH_TESTS[:4]
STATIC_TESTS = AUTH_TESTS[4:6]
RUNTIME_TESTS = AUTH_TESTS[6:]
NO_TOKEN_IN_FILES_POINTS = 2.0
HAS_GIT = shutil.which("git") is not None
needs_git = pytest.mark.skipif(not HAS_GIT, reason="git is not installed")


_REPORTS: dict[Path, dict[str, Any]] = {}


def grade(path: Path, tmp_path: Path, seed: int = 1) -> dict[str, Any]:
    path = Path(path).resolve()
    if path not in _REPORTS:
        _REPORTS[path] = run_checkpoints(path, out_json=tmp_path / f"report-{path.name}.json", seed=seed,
                                         only="auth")
    return _REPORTS[path]


def auth_checkpoint(report: dict[str, Any]) -> dict[str, Any]:
    (checkpoint,) = [c for c in report["checkpoints"] if c["id"] == "auth"]
    return checkpoint


def results_by_name(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t for t in auth_checkpoint(report)["tests"]}


def assert_no_full_token(report: dict[str, Any], *tokens: str) -> None:
    text = json.dumps(report, ensure_ascii=False)
    for token in tokens:
        assert token not in text, "a report shows a full token"


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_AUTHOR_DATE="2025-01-01T00:00:00Z", GIT_COMMITTER_DATE="2025-01-01T00:00:00Z")
    return subprocess.run(["git", "-c", "user.name=Student", "-c", "user.email=student@example.com",
                           "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True)


def submission_with_token_in_history(root: Path) -> Path:
    """A submission whose current tree is clean but whose git history holds a (fake) token."""
    shutil.copytree(REPO_ROOT / "reference" / "inference_lab", root / "inference_lab",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git("init", "-q", cwd=root)
    hardcoded = build(MUTANTS["auth_hardcoded_token"], root.parent / f"{root.name}-mutant")
    shutil.copy(hardcoded / "inference_lab" / "auth.py", root / "inference_lab" / "auth.py")
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "first version of the lab", cwd=root)
    shutil.copy(REPO_ROOT / "reference" / "inference_lab" / "auth.py", root / "inference_lab" / "auth.py")
    git("commit", "-q", "-a", "-m", "read the token from the environment", cwd=root)
    assert FAKE not in (root / "inference_lab" / "auth.py").read_text()
    return root


# -- whole submissions -----------------------------------------------------------------------------
def test_reference_scores_full_marks(tmp_path: Path) -> None:
    report = grade(REPO_ROOT / "reference", tmp_path)
    checkpoint = auth_checkpoint(report)
    failures = {t["name"]: t["message"] for t in checkpoint["tests"] if t["outcome"] != "passed"}
    assert not failures, failures
    assert checkpoint["score"] == checkpoint["max_score"] == AUTH_POINTS
    assert {t["name"] for t in checkpoint["tests"]} == set(AUTH_TESTS)
    assert_no_full_token(report, make_canary(1))


def test_alternative_solution_scores_full_marks(tmp_path: Path) -> None:
    assert (ALT / "inference_lab" / "auth.py").is_file()
    report = grade(ALT, tmp_path)
    checkpoint = auth_checkpoint(report)
    failures = {t["name"]: t["message"] for t in checkpoint["tests"] if t["outcome"] != "passed"}
    assert not failures, failures
    assert checkpoint["score"] == AUTH_POINTS






@needs_git
def test_token_only_in_git_history_loses_the_leak_points(tmp_path: Path) -> None:
    sub = submission_with_token_in_history(tmp_path / "history_leak")
    report = run_checkpoints(sub, out_json=tmp_path / "r.json", seed=1, only="auth")
    tests = results_by_name(report)
    leak = tests["test_no_token_in_files"]
    assert leak["outcome"] == "failed" and leak["score"] == 0, leak
    for word in ("in git history", "inference_lab/auth.py", "hf_…cdEf", "git filter-repo", "revoke"):
        assert word in leak["message"], (word, leak["message"])
    for name in set(AUTH_TESTS) - {"test_no_token_in_files"}:
        assert tests[name]["outcome"] == "passed", tests[name]
    assert auth_checkpoint(report)["score"] == AUTH_POINTS - NO_TOKEN_IN_FILES_POINTS
    assert_no_full_token(report, FAKE)


PRINT_AT_IMPORT = '''

import sys as _sys

print("debug: HF_TOKEN is", os.environ.get("HF_TOKEN"))
print("x" * 300, os.environ.get("HF_TOKEN", "")[3:], "y " * 150, file=_sys.stderr)
'''
PRINT_IN_DETECT = '''

_real_detect = detect


def detect():
    print("token in use:", os.environ.get("HF_TOKEN"))
    return _real_detect()
'''


@pytest.mark.parametrize("where", ["auth_import", "hardware_detect"])
def test_a_token_printed_anywhere_loses_the_output_item(where: str, tmp_path: Path) -> None:
    """Output outside the four Hugging Face calls counts too: printed when inference_lab.auth is imported,
    or by another checkpoint's worker (hardware.detect(), which runs after auth's own tests: the output
    check runs last)."""
    sub = build(MUTANTS["auth_hardcoded_token"], tmp_path / "sub")       # a copy of reference/ ...
    shutil.copy(REPO_ROOT / "reference" / "inference_lab" / "auth.py", sub / "inference_lab" / "auth.py")
    module, code = (("auth.py", PRINT_AT_IMPORT) if where == "auth_import" else ("hardware.py", PRINT_IN_DETECT))
    with open(sub / "inference_lab" / module, "a", encoding="utf-8") as handle:   # ... printing the token
        handle.write(code)
    seed = 5
    report = run_checkpoints(sub, out_json=tmp_path / "r.json", seed=seed, log_path=tmp_path / "pytest.log",
                             only="auth" if where == "auth_import" else "auth,hardware")
    tests = results_by_name(report)
    item = tests["test_no_token_in_output"]
    assert item["outcome"] == "failed" and item["score"] == 0, item
    assert "your code printed the token" in item["message"], item
    canary = make_canary(seed)
    if where == "auth_import":
        assert "in the auth checkpoint (when your modules were imported, or in another call): debug: HF_TOKEN is " \
               f"hf_…{canary[-4:]}" in item["message"], item["message"]
        assert f": …{canary[-4:]} y y y" in item["message"], item["message"]    # the token without its hf_
    else:
        assert f"while the hardware checkpoint ran your code: token in use: hf_…{canary[-4:]}" in item["message"]
        assert "hardware" in {c["id"] for c in report["checkpoints"]}
    for name in set(AUTH_TESTS) - {"test_no_token_in_output"}:
        assert tests[name]["outcome"] == "passed", tests[name]
    assert_no_full_token(report, canary, canary[3:])
    # nor the grading's log: its tracebacks are short ones, without the test's arguments (the canary)
    log = (tmp_path / "pytest.log").read_text()
    assert "your code printed the token" in log and canary[3:] not in log


def test_template_scores_zero(tmp_path: Path) -> None:
    report = grade(REPO_ROOT / "student_template", tmp_path)
    tests = results_by_name(report)
    assert set(tests) == set(AUTH_TESTS)
    # The leak scans and the runtime checks too: a stub has nothing to leak, so it earns nothing there.
    for name in AUTH_TESTS:
        assert tests[name]["score"] == 0, tests[name]
        assert "not implemented: inference_lab.auth." in tests[name]["message"], tests[name]
    assert auth_checkpoint(report)["score"] == 0


# -- grading/leaks.py ------------------------------------------------------------------------------
def test_placeholders_and_masked_forms_are_not_tokens(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("HF_TOKEN=hf_your_token_here\nOTHER=hf_xxxxxxxx\n")
    (tmp_path / "README.md").write_text("Set HF_TOKEN (it looks like hf_…w9Qz or hf_****abcd).\n"
                                        "export HF_TOKEN=hf_<your token>\n")
    (tmp_path / "code.py").write_text("token = os.environ['HF_TOKEN']\nprint(mask(token))  # hf_…\n")
    result = scan_submission(tmp_path)
    assert list(result) == [] and result.incomplete == []


def test_canary_and_real_shaped_tokens_are_found_with_masked_excerpts(tmp_path: Path) -> None:
    canary = make_canary(42)
    odd_secret = "sk-grader-canary-0123456789"          # not hf_-shaped: found only as an extra secret
    (tmp_path / "run.log").write_text(f"INFO start\nDEBUG headers={{'Authorization': 'Bearer {canary}'}}\n")
    (tmp_path / "notes.txt").write_text(f"secret: {odd_secret}\n")
    (tmp_path / "cfg.py").write_text(f"TOKEN = '{FAKE}'  # do not commit\n")
    result = scan_submission(tmp_path, extra_secrets=[canary, odd_secret])
    found = {(leak.where, leak.line, leak.kind) for leak in result}
    assert found == {("run.log", 2, "file"), ("notes.txt", 1, "file"), ("cfg.py", 1, "source")}
    by_where = {leak.where: leak for leak in result}
    assert by_where["run.log"].excerpt == f"DEBUG headers={{'Authorization': 'Bearer hf_…{canary[-4:]}'}}"
    assert by_where["cfg.py"].excerpt == "TOKEN = 'hf_…cdEf'  # do not commit"
    for leak in result:
        for secret in (canary, odd_secret, FAKE):
            assert secret not in leak.excerpt and secret not in leak.describe()
    # without the extra secret, the odd one is not a token (the canary still is: it is hf_-shaped)
    plain = scan_submission(tmp_path)
    assert {leak.where for leak in plain} == {"run.log", "cfg.py"}


def test_mask_and_redact_never_show_a_token() -> None:
    assert mask_secret(FAKE) == "hf_…cdEf"
    assert mask_secret("hf_short") == "hf_…"
    text = redact(f"url=https://user:{FAKE}@huggingface.co and {FAKE}")
    assert FAKE not in text and text.count("hf_…cdEf") == 2
    assert redact("nothing here") == "nothing here"


def test_notebook_sources_and_outputs_are_told_apart(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"token = '{FAKE}'"),
        nbformat.v4.new_code_cell("print(get_token())", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="hello\n" + make_canary(5) + "\n")]),
        nbformat.v4.new_code_cell("get_token()", outputs=[
            nbformat.v4.new_output("execute_result", data={"text/plain": repr(make_canary(6))},
                                   execution_count=1)]),
        nbformat.v4.new_code_cell("raise", outputs=[
            nbformat.v4.new_output("error", ename="HTTPError", evalue=f"401 for token {make_canary(7)}",
                                   traceback=[])]),
    ]
    nb.metadata["secrets"] = {"hf": make_canary(8)}
    nbformat.write(nb, tmp_path / "chat_inference_practice.ipynb")
    (tmp_path / "broken.ipynb").write_text('{"cells": [ this is not json ' + FAKE)
    result = scan_submission(tmp_path)
    found = sorted((leak.where, leak.kind, leak.cell, leak.line if leak.cell is not None else None)
                   for leak in result)
    assert found == [
        ("broken.ipynb", "file", None, None),                       # does not parse: read as text
        ("chat_inference_practice.ipynb", "file", None, None),      # the notebook's metadata
        ("chat_inference_practice.ipynb", "notebook-output", 1, 2),  # stdout, after "hello"
        ("chat_inference_practice.ipynb", "notebook-output", 2, 1),  # execute_result
        ("chat_inference_practice.ipynb", "notebook-output", 3, 2),  # the error's evalue
        ("chat_inference_practice.ipynb", "notebook-source", 0, 1),
    ], found
    metadata_leak = next(leak for leak in result if leak.kind == "file" and leak.where.endswith("practice.ipynb"))
    assert make_canary(8)[-4:] in metadata_leak.excerpt
    assert all(not TOKEN_RE.search(leak.excerpt) for leak in result)


def test_dotenv_files_are_leaks_but_placeholders_are_not(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"HF_TOKEN={FAKE}\n")
    (tmp_path / ".env.example").write_text("HF_TOKEN=hf_your_token_here\n")
    (tmp_path / "prod.env").write_text(f"HF_TOKEN='{FAKE}'\n")
    result = scan_submission(tmp_path)
    assert sorted((leak.where, leak.kind) for leak in result) == [(".env", "dotenv"), ("prod.env", "dotenv")]


def test_binary_files_are_searched_and_symlinks_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(FAKE)
    root = tmp_path / "sub"
    (root / "data").mkdir(parents=True)
    (root / "data" / "blob.bin").write_bytes(b"\x00\x01\x02" + FAKE.encode())
    (root / "link.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    os.mkfifo(root / "fifo.txt")  # must not block the scan
    result = scan_submission(root)
    # a binary file is not read as text, but every byte of it is searched for tokens
    assert [(leak.where, leak.kind) for leak in result] == [("data/blob.bin", "file")]
    assert result[0].excerpt == "hf_…cdEf" and result.incomplete == []
    assert any("link.txt" in note for note in result.notes) and any("binary" in note for note in result.notes)
    assert any("fifo.txt is a named pipe (FIFO)" in note for note in result.notes)


def test_virtualenvs_are_skipped_but_notebook_checkpoints_are_not(tmp_path: Path) -> None:
    venv = tmp_path / "myenv"
    (venv / "lib").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "lib" / "vendored.py").write_text(f"EXAMPLE = '{FAKE}'\n")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / "chat-checkpoint.ipynb").write_text(
        nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "print(token)", outputs=[nbformat.v4.new_output("stream", name="stdout", text=FAKE)])])))
    result = scan_submission(tmp_path)
    assert [(leak.where, leak.kind) for leak in result] == [
        (".ipynb_checkpoints/chat-checkpoint.ipynb", "notebook-output")]
    assert any(note.startswith("myenv:") for note in result.notes)


def test_utf16_text_is_read(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_bytes(f"token {FAKE}\n".encode("utf-16"))
    assert [leak.where for leak in scan_submission(tmp_path)] == ["notes.txt"]


def test_every_byte_is_searched_past_the_text_cap_and_in_binary_files(tmp_path: Path) -> None:
    """A token after 6 MiB of notebook output (past what is read as text), in a .env that starts with
    NUL bytes, or in UTF-16 without a byte-order mark is found; nothing is shown unmasked."""
    canary = make_canary(12)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("print(response.text)", outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="x" * (6 * 2**20) + "\n")]),
        nbformat.v4.new_code_cell("client.headers", outputs=[
            nbformat.v4.new_output("execute_result", data={"text/plain": f"{{'authorization': 'Bearer {FAKE}'}}"},
                                   execution_count=2)]),
    ]
    nbformat.write(nb, tmp_path / "chat_inference_practice.ipynb")
    (tmp_path / ".env").write_bytes(b"\x00\x00\nHF_TOKEN=" + canary.encode() + b"\n")
    (tmp_path / "wide.dat").write_bytes(b"\x00\x00" + f"key={FAKE}".encode("utf-16-le"))
    (tmp_path / "big.log").write_bytes(b"y" * (5 * 2**20 + 7) + f"\nnow {FAKE} and {canary}\n".encode())
    result = scan_submission(tmp_path, extra_secrets=[canary])
    found = sorted((leak.where, leak.kind) for leak in result)
    assert found == [(".env", "dotenv"), ("big.log", "file"), ("big.log", "file"),
                     ("chat_inference_practice.ipynb", "file"), ("wide.dat", "file")], found
    by_where = {leak.where: leak for leak in result}
    assert by_where[".env"].line == 2 and by_where[".env"].excerpt == f"HF_TOKEN=hf_…{canary[-4:]}"
    notebook = (tmp_path / "chat_inference_practice.ipynb").read_bytes()
    line = notebook[:notebook.index(FAKE.encode())].count(b"\n") + 1
    assert by_where["chat_inference_practice.ipynb"].line == line
    assert by_where["chat_inference_practice.ipynb"].excerpt.endswith("'authorization': 'Bearer hf_…cdEf'}\"")
    assert {leak.line for leak in result if leak.where == "big.log"} == {2}
    assert by_where["wide.dat"].excerpt == "(UTF-16 text holding hf_…cdEf)"
    assert result.incomplete == []
    assert any(note.startswith("big.log: larger than 5 MiB") for note in result.notes), result.notes
    for leak in result:
        assert FAKE not in leak.describe() and canary not in leak.describe() and not TOKEN_RE.search(leak.excerpt)


def test_byte_scanner_finds_a_token_across_chunk_boundaries_once() -> None:
    from grading.leaks.matcher import _Matcher
    from grading.leaks.stream import ByteScanner

    canary, wide, last = make_canary(13), make_canary(15), make_canary(16)
    data = (b"a" * 50 + b"\nfirst " + FAKE.encode() + b" then " + canary.encode() + b"\n" + b"z" * 70
            + b" hf_" + b"Q" * 29 + b"\n" + f"wide {wide}".encode("utf-16-le") + b"\nagain " + FAKE.encode()
            + b"\nend " + last.encode())
    tokens = (FAKE, canary, wide, last)
    for size in (1, 2, 3, 7, 16, 33, 34, 65, 66, 67, 100, 1000, len(data)):
        scanner = ByteScanner(_Matcher([canary]))
        for start in range(0, len(data), size):
            scanner.feed(data[start:start + size])
        hits = scanner.finish()
        # each token once (the same token again is not listed again), with its line when it is UTF-8
        assert [(h.secret, h.line) for h in hits] == [(FAKE, 2), (canary, 2), (wide, None), (last, 6)], size
        assert hits[0].excerpt == f"first hf_…cdEf then hf_…{canary[-4:]}", (size, hits[0].excerpt)
        assert hits[2].excerpt == f"(UTF-16 text holding hf_…{wide[-4:]})"
        assert hits[3].excerpt == f"end hf_…{last[-4:]}"
        for hit in hits:
            assert not TOKEN_RE.search(hit.excerpt) and all(t[3:13] not in hit.excerpt for t in tokens)
            # a word cut by the excerpt's window is dropped, never shown in part
            assert "hf_QQ" not in hit.excerpt, (size, hit.excerpt)


def test_an_unreadable_file_makes_the_scan_incomplete(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text(f"HF_TOKEN={FAKE}\n")
    (tmp_path / "ok.py").write_text("x = 1\n")
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):   # as a file without read permission (root reads anything)
        if os.path.basename(os.fsdecode(path)) == ".env":
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    result = scan_submission(tmp_path)
    assert list(result) == [] and result.files_scanned == 1
    assert result.incomplete == [".env could not be read (permission denied)"], result.incomplete


@needs_git
def test_git_objects_are_searched_past_the_text_cap_and_when_binary(tmp_path: Path) -> None:
    root = tmp_path / "sub"
    root.mkdir()
    git("init", "-q", cwd=root)
    (root / "big.txt").write_bytes(b"x" * (6 * 2**20) + f"\nTOKEN={FAKE}\n".encode())
    (root / "blob.bin").write_bytes(b"\x00\x01" + f"HF_TOKEN={make_canary(14)}".encode())
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "data", cwd=root)
    (root / "big.txt").unlink()
    (root / "blob.bin").unlink()
    result = scan_submission(root)
    assert result.git_checked and result.incomplete == [], result.incomplete
    wheres = sorted(leak.where.split(":", 2)[-1] for leak in result if leak.kind == "git-history")
    assert wheres == ["big.txt", "blob.bin"], [leak.describe() for leak in result]
    for leak in result:
        assert not TOKEN_RE.search(leak.describe()), leak


@needs_git
def test_git_history_commit_messages_and_remote_urls(tmp_path: Path) -> None:
    root = submission_with_token_in_history(tmp_path / "sub")
    (root / "notes.md").write_text("clean\n")
    git("add", "notes.md", cwd=root)
    git("commit", "-q", "-m", f"debug: works with {make_canary(9)}", cwd=root)
    git("remote", "add", "origin", f"https://student:{make_canary(10)}@huggingface.co/spaces/s/lab", cwd=root)
    # an amended-away commit leaves a dangling blob: it is in .git all the same
    (root / "scratch.py").write_text(f"T = '{make_canary(11)}'\n")
    git("add", "scratch.py", cwd=root)
    git("commit", "-q", "-m", "scratch", cwd=root)
    git("rm", "-q", "--cached", "scratch.py", cwd=root)
    (root / "scratch.py").unlink()
    git("commit", "-q", "--amend", "--allow-empty", "-m", "scratch removed", cwd=root)
    result = scan_submission(root)
    assert result.git_checked and result.incomplete == [], result.incomplete
    kinds = {(leak.kind, leak.where.split(":")[0]) for leak in result}
    assert all(leak.kind in ("git-history", "file") for leak in result), result
    wheres = [leak.where for leak in result]
    assert any(w.startswith("git:") and w.endswith(":inference_lab/auth.py") for w in wheres), wheres
    assert any(w.startswith("git:commit ") for w in wheres), wheres               # the commit message
    assert ".git/config" in wheres, wheres                                        # the remote URL
    assert any(w.endswith(":scratch.py") for w in wheres), wheres                # the amended-away commit
    assert ("git-history", "git") in kinds
    for leak in result:
        assert not TOKEN_RE.search(leak.excerpt), leak


@needs_git
def test_git_missing_is_reported_not_passed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = submission_with_token_in_history(tmp_path / "sub")
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    result = scan_submission(root)
    assert not result.git_checked
    assert any("git is not installed" in reason for reason in result.incomplete), result.incomplete
    assert [leak for leak in result if leak.kind == "git-history"] == []


@needs_git
def test_alternates_never_lead_outside_the_submission(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "secret.py").write_text(f"T = '{FAKE}'\n")
    git("init", "-q", cwd=other)
    git("add", "-A", cwd=other)
    git("commit", "-q", "-m", "outside", cwd=other)
    root = tmp_path / "sub"
    root.mkdir()
    (root / "a.txt").write_text("clean\n")
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "clean", cwd=root)
    (root / ".git" / "objects" / "info" / "alternates").write_text(str(other / ".git" / "objects") + "\n")
    (root / ".git" / "objects" / "zz").symlink_to(other / ".git" / "objects", target_is_directory=True)
    result = scan_submission(root)
    assert [leak for leak in result if leak.kind == "git-history"] == [], list(result)
    assert result.git_checked
    assert any("alternates" in note for note in result.notes)


@needs_git
def test_submission_git_config_is_never_executed(tmp_path: Path) -> None:
    """fsmonitor, textconv, filters, pager, ssh command and hooks of a submission: none of them runs."""
    root = submission_with_token_in_history(tmp_path / "sub")
    markers = {name: tmp_path / f"RAN-{name}" for name in
               ("fsmonitor", "textconv", "clean", "smudge", "pager", "ssh", "hook")}
    payload = {}
    for name, marker in markers.items():  # each one leaves a marker, then behaves like `cat`
        script = tmp_path / f"evil-{name}.sh"
        script.write_text(f'#!/bin/sh\ntouch "{marker}"\nif [ -f "$1" ]; then cat "$1"; else cat; fi\n')
        script.chmod(0o755)
        payload[name] = str(script)
    (root / ".gitattributes").write_text("* diff=evil filter=evil\n")
    with open(root / ".git" / "config", "a") as config:
        config.write(
            "[core]\n"
            f"\tfsmonitor = {payload['fsmonitor']}\n"
            f"\tpager = {payload['pager']}\n"
            f"\tsshCommand = {payload['ssh']}\n"
            "[diff \"evil\"]\n"
            f"\ttextconv = {payload['textconv']}\n"
            "[filter \"evil\"]\n"
            f"\tclean = {payload['clean']}\n"
            f"\tsmudge = {payload['smudge']}\n"
            "[protocol \"ext\"]\n\tallow = always\n")
    hooks = root / ".git" / "hooks"
    hooks.mkdir(exist_ok=True)
    for hook in ("post-checkout", "pre-commit", "post-commit", "post-index-change", "reference-transaction",
                 "pre-auto-gc"):
        (hooks / hook).write_text(f"#!/bin/sh\ntouch {markers['hook']}\n")
        (hooks / hook).chmod(0o755)

    # The trap is armed: ordinary git commands in that repository do run these commands ...
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null", GIT_PAGER="")
    auth = root / "inference_lab" / "auth.py"

    def run(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=S", "-c", "user.email=s@example.com", *args], cwd=root,
                       env=env, capture_output=True, timeout=60)

    run("status")                                    # fsmonitor
    run("log", "-p", "-2")                           # textconv
    auth.write_text(auth.read_text() + "# changed\n")
    run("add", "inference_lab/auth.py")              # clean
    run("reset", "-q", "inference_lab/auth.py")
    run("checkout", "--", "inference_lab/auth.py")   # smudge
    run("commit", "-q", "--allow-empty", "-m", "x")  # hooks
    armed = sorted(name for name, marker in markers.items() if marker.exists())
    assert {"fsmonitor", "textconv", "clean", "smudge", "hook"} <= set(armed), armed
    for marker in markers.values():
        marker.unlink(missing_ok=True)

    # ... but scanning it runs none of them, and still finds the token in the history.
    result = scan_submission(root)
    ran = sorted(name for name, marker in markers.items() if marker.exists())
    assert ran == [], f"scan_submission ran the submission's git configuration: {ran}"
    assert result.git_checked and result.incomplete == []
    assert any(leak.kind == "git-history" and leak.where.endswith(":inference_lab/auth.py") for leak in result)


def test_other_secrets_are_found_by_detect_secrets_and_masked(tmp_path: Path) -> None:
    # Real shapes, not real secrets; assembled here so that this file holds none of them.
    aws = "AKIA" + "Q3VBTZ7J2XW4NPLM"
    github = "ghp_" + "Zq8Lr2Vb7Nc4Xw1Ty6Ua3Sd9Fg5Hj0Kk2Mmp"
    password = "s3cr3t-" + "Pa55w0rd"
    (tmp_path / "settings.py").write_text(f"AWS_ACCESS_KEY_ID = '{aws}'\nGITHUB = '{github}'\nX = 1\n")
    (tmp_path / "README.md").write_text(f"clone https://student:{password}@git.example.org/lab.git\n"
                                        "or https://user:<password>@host/ and https://user:hf_…@huggingface.co\n"
                                        "AWS example key: AKIAIOSFODNN7EXAMPLE\n")
    (tmp_path / "key.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...\n-----END RSA PRIVATE KEY-----\n")
    (tmp_path / "remote.txt").write_text(f"https://student:{FAKE}@huggingface.co/spaces/s/lab\n")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(os.environ['AWS_KEY'])", outputs=[
        nbformat.v4.new_output("stream", name="stdout", text=f"{aws}\n")])]
    nbformat.write(nb, tmp_path / "practice.ipynb")
    result = scan_submission(tmp_path)
    found = sorted((leak.where, leak.line, leak.rule, leak.kind) for leak in result)
    assert found == [
        ("README.md", 1, "Basic Auth Credentials", "file"),
        ("key.pem", 1, "Private Key", "file"),
        ("practice.ipynb", 1, "AWS Access Key", "notebook-output"),
        ("remote.txt", 1, HF_RULE, "file"),          # an HF token in a URL: reported once, as a token
        ("settings.py", 1, "AWS Access Key", "source"),
        ("settings.py", 2, "GitHub Token", "source"),
    ], found
    for leak in result:
        for secret in (aws, github, password, FAKE):
            assert secret not in leak.excerpt and secret not in leak.describe(), leak
    by_rule = {leak.rule: leak for leak in result}
    assert by_rule["GitHub Token"].describe() == "settings.py, line 2 (GitHub Token, in source code): GITHUB = '…2Mmp'"
    assert scan_submission(tmp_path, other_secrets=False).__len__() == 1


def test_scan_tree_for_secrets_reads_text_and_binary_files(tmp_path: Path) -> None:
    canary = make_canary(77)
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "run.log").write_text(f"start\nheaders: Authorization: Bearer {canary}\n")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00tEXt" + canary.encode() + b"\x00")
    (tmp_path / "wide.txt").write_bytes(f"t={canary}".encode("utf-16-le"))
    (tmp_path / "body.txt").write_text(f"only the body {canary[3:]}\n")
    (tmp_path / "clean.txt").write_text("nothing\n")
    store = tmp_path / "home" / ".cache" / "huggingface"
    store.mkdir(parents=True)
    (store / "token").write_text(canary)
    outside = tmp_path.parent / "outside-secret.txt"
    outside.write_text(canary)
    (tmp_path / "link.txt").symlink_to(outside)
    result = scan_tree_for_secrets(tmp_path, [canary, canary[3:]], skip=[store / "token"])
    found = sorted((leak.where, leak.line) for leak in result)
    assert found == [("body.txt", 1), ("image.png", None), ("logs/run.log", 2), ("wide.txt", None)], found
    for leak in result:
        assert canary not in leak.describe() and canary[3:] not in leak.describe()
    assert result.files_scanned == 5


def test_leak_describe_is_one_masked_line() -> None:
    leak = Leak(where="chat.ipynb", line=3, kind="notebook-output", excerpt="token hf_…cdEf", cell=1)
    assert leak.describe() == "chat.ipynb, cell 2, line 3 (in a notebook cell's saved output): token hf_…cdEf"
