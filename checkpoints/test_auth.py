"""Checkpoint `auth`: authenticate without exposing tokens.

``inference_lab.auth.get_token()`` must return ``HF_TOKEN`` from the environment, else the token that
``hf auth login`` (``huggingface-cli login``) stored, else raise ``MissingTokenError`` (a
``RuntimeError``) that says how to fix it; ``mask()`` must show at most the ``hf_`` prefix and the
last 4 characters. And no token may be anywhere in what is handed in: code, notebooks (sources and
saved outputs), ``.env`` files, git history (``grading/leaks.py`` reads the submission as data).

The worker's ``HF_TOKEN`` is the grader's canary (a fake token, different on every run); its HOME and
HF_HOME are its own empty folders, so the "stored login" is the one these tests write there.

The static scan finds Hugging Face tokens (the ``hf_…`` shape and the canary) and, with the maintained
scanner detect-secrets, other services' secrets (cloud keys, API tokens, private keys, passwords in
URLs). At run time the student's own Hugging Face calls (chat, the OpenAI-compatible router,
streaming, an image) are made once against the simulator, and then the canary must not appear in what
they printed (stdout/stderr), in any file they wrote, or anywhere in their requests but the
``Authorization: Bearer`` header (never in a URL, a query string, a body or another header). What
they printed is judged with everything else the student's code printed while it was graded (on import,
in any call, in any checkpoint's worker), so that test runs after all the others.
"""

from __future__ import annotations

import random
import string
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from grading.auth_run import (LOGIN_STORE, not_checked_note, run_hf_calls, short_text, shown_line,
                               where_in_request)
from grading.leaks import HF_RULE, TOKEN_RE, redact, scan_submission, scan_tree_for_secrets
from grading.sandbox.errors import ImportFailed, StudentRaised

# Every variable through which huggingface_hub could find a token, unset for the "no env" calls.
# HF_TOKEN_PATH is unset too: the stored login must be found where `hf auth login` puts it
# ($HF_HOME/token), not through a variable only some machines set.
NO_ENV_TOKEN: dict[str, str | None] = {"HF_TOKEN": None, "HUGGING_FACE_HUB_TOKEN": None,
                                       "HF_TOKEN_PATH": None, "HF_OIDC_RESOURCE": None}
LOGIN_COMMANDS = ("hf auth login", "huggingface-cli login")
MASK_EXAMPLE = "'hf_…w9Qz'"


def _fake_token(seed_text: str, length: int = 34, alphabet: str = string.ascii_letters) -> str:
    rng = random.Random(seed_text)
    return "hf_" + "".join(rng.choice(alphabet) for _ in range(length))


def _login_file(lab: Any) -> Path:
    return Path(lab.home) / ".cache" / "huggingface" / "token"


def _remove_stored_login(lab: Any) -> None:
    folder = _login_file(lab).parent
    for name in ("token", "stored_tokens"):
        try:
            (folder / name).unlink()
        except FileNotFoundError:
            pass


@contextmanager
def _stored_login(lab: Any, token: str) -> Iterator[Path]:
    """A login as `hf auth login` leaves it: the token in $HF_HOME/token, removed afterwards."""
    path = _login_file(lab)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(token)
    try:
        yield path
    finally:
        _remove_stored_login(lab)


def _show(value: Any, secrets: list[str]) -> str:
    """A value for a message: type-aware, shortened, with every token masked."""
    if isinstance(value, str):
        text = repr(value)
    else:
        text = f"{type(value).__name__} {value!r}"
    if len(text) > 120:
        text = text[:120] + "…"
    return redact(text, secrets)


# -- get_token -------------------------------------------------------------------------------------
def test_get_token_from_env(lab, canary_token):
    secrets = [canary_token]
    value = lab.call("auth.get_token")
    assert isinstance(value, str), (
        f"get_token() returned {_show(value, secrets)}; it must return the token as a str "
        "(the value of HF_TOKEN when that environment variable is set)")
    assert value == canary_token, (
        f"HF_TOKEN is set in the environment, but get_token() returned {_show(value, secrets)}; it must "
        "return os.environ['HF_TOKEN'] when it is set (read it inside get_token(), not a hard-coded "
        "token)")

    stored = _fake_token(canary_token + "/stored-login-priority")
    with _stored_login(lab, stored):
        value = lab.call("auth.get_token")
    assert value == canary_token, (
        f"with HF_TOKEN set and a stored login present, get_token() returned "
        f"{_show(value, [canary_token, stored])} instead of HF_TOKEN; the environment variable comes "
        "first, the stored login (hf auth login) only when HF_TOKEN is not set — as huggingface_hub does")


def test_get_token_from_login_cache(lab, canary_token):
    stored = _fake_token(canary_token + "/stored-login")
    secrets = [canary_token, stored]
    with _stored_login(lab, stored):
        try:
            value = lab.call("auth.get_token", env=NO_ENV_TOKEN)
        except ImportFailed:
            raise
        except StudentRaised as err:
            raise AssertionError(
                f"HF_TOKEN was not set but `hf auth login` had stored a token in $HF_HOME/token "
                f"(~/.cache/huggingface/token), and get_token() raised {err.exc_type}: "
                f"{short_text(err.exc_message, secrets)}; fall back to the stored login before giving up: "
                "huggingface_hub.get_token() reads it (or read $HF_HOME/token, default "
                "~/.cache/huggingface/token)") from None
    assert value != canary_token, (
        "HF_TOKEN was unset for this call, but get_token() still returned its old value: read "
        "os.environ inside get_token() each time it is called, not once when the module is imported")
    assert isinstance(value, str) and value == stored, (
        f"HF_TOKEN was not set and `hf auth login` had stored a token in $HF_HOME/token "
        f"(~/.cache/huggingface/token), but get_token() returned {_show(value, secrets)}; fall back to "
        "the stored login: huggingface_hub.get_token() reads it (or read $HF_HOME/token, default "
        "~/.cache/huggingface/token)")


def test_missing_token_error(lab, canary_token):
    _remove_stored_login(lab)
    secrets = [canary_token]
    try:
        value = lab.call("auth.get_token", env=NO_ENV_TOKEN)
    except ImportFailed:
        raise
    except StudentRaised as err:
        raised, mro, message = err.exc_type, list(err.exc_mro), err.exc_message
    else:
        raise AssertionError(
            f"with HF_TOKEN unset and no stored login, get_token() returned {_show(value, secrets)}; it "
            "must raise MissingTokenError (a RuntimeError) whose message says to set HF_TOKEN or run "
            "`hf auth login`")
    shown = short_text(message, secrets)
    assert "MissingTokenError" in mro, (
        f"with no token anywhere, get_token() raised {raised}: {shown}; it must raise MissingTokenError "
        "(define it in inference_lab/auth.py: class MissingTokenError(RuntimeError))")
    assert "RuntimeError" in mro, (
        f"MissingTokenError must be a subclass of RuntimeError (its classes are {', '.join(mro)}); "
        "write class MissingTokenError(RuntimeError)")
    assert not TOKEN_RE.search(message) and canary_token not in message, (
        f"MissingTokenError's message contains a token ({shown}); an error message must never show one")
    assert "HF_TOKEN" in message, (
        f"MissingTokenError's message ({shown}) does not name HF_TOKEN; say how to fix it: set the HF_TOKEN "
        "environment variable or run `hf auth login`")
    assert any(command in message for command in LOGIN_COMMANDS), (
        f"MissingTokenError's message ({shown}) does not name a login command; tell the user to run "
        "`hf auth login` (or `huggingface-cli login`) as the other way to provide a token")


# -- mask ------------------------------------------------------------------------------------------
def _mask_cases(canary: str) -> list[str]:
    """Token-shaped strings of several lengths and alphabets, plus a few that are not hf_ tokens."""
    rng = random.Random(20240917)
    alnum = string.ascii_letters + string.digits
    cases = [canary]
    cases += [_fake_token(f"mask-{i}", 34) for i in range(6)]
    cases += ["hf_" + "".join(rng.choice(alnum) for _ in range(n)) for n in (30, 31, 37, 40, 45)]
    cases += ["hf_" + "".join(rng.choice(string.ascii_lowercase) for _ in range(34))]
    cases += ["hf_abcdefghijk", "api_" + "".join(rng.choice(alnum) for _ in range(30)),
              "".join(rng.choice(alnum) for _ in range(40))]
    return cases


SHORT_INPUTS = ["", "h", "hf_", "hf_abc", "hf_abcdefgh"]


def _revealed(token: str, masked: str) -> str | None:
    """The first run of more than 4 characters of ``token`` that ``masked`` shows, if any."""
    for start in range(len(token) - 4):
        window = token[start:start + 5]
        if window in masked:
            return window
    return None


def test_mask_hides_token(lab, canary_token):
    for token in _mask_cases(canary_token):
        masked = lab.call("auth.mask", token)
        described = f"mask() of a {len(token)}-character token" + (
            " starting with 'hf_'" if token.startswith("hf_") else " (not starting with 'hf_')")
        assert isinstance(masked, str), (
            f"{described} returned {type(masked).__name__}; it must return a str such as {MASK_EXAMPLE}")
        assert masked != token and token not in masked, (
            f"{described} returned the whole token; show at most the 'hf_' prefix and the last 4 "
            f"characters, e.g. {MASK_EXAMPLE}")
        leaked = _revealed(token, masked)
        assert leaked is None, (
            f"{described} returned a string with {leaked[:2]!r}… — 5 or more characters of the token in a "
            f"row (it shows {len(masked)} characters in all); show at most the 'hf_' prefix and the last 4 "
            f"characters, e.g. {MASK_EXAMPLE}")
    for short in SHORT_INPUTS:
        try:
            masked = lab.call("auth.mask", short)
        except ImportFailed:
            raise
        except StudentRaised as err:
            raise AssertionError(
                f"mask({short!r}) raised {err.exc_type}: {short_text(err.exc_message, [canary_token])}; mask() must "
                "handle empty and short strings (return something like '…' or 'hf_…')") from None
        assert isinstance(masked, str), (
            f"mask({short!r}) returned {type(masked).__name__}; it must return a str for any input, even "
            "an empty or short one")


# -- no token in what is handed in (static: reads the submission as data) ---------------------------
HINTS = {
    "source": "read the token with get_token() (environment or stored login) instead of writing it in code",
    "notebook-source": "never paste a token into a notebook cell; call get_token()",
    "notebook-output": "a saved cell output shows a token: clear the outputs (or re-run without printing "
                       "it) and print mask(token) instead of the token",
    "dotenv": "do not hand in .env (add it to .gitignore); hand in .env.example with a placeholder such as "
              "HF_TOKEN=hf_your_token_here",
    "git-history": "the token is still in git history even if the file no longer has it: rewrite the "
                   "history (e.g. git filter-repo --replace-text) or hand in without .git",
    "file": "remove the token from that file",
}
MAX_LISTED = 8


_SCANS: dict[tuple[str, str], Any] = {}


def _scan(submission_dir: Path, canary_token: str) -> Any:
    """One static scan per submission, shared by the two tests that read it."""
    key = (str(submission_dir), canary_token)
    if key not in _SCANS:
        _SCANS[key] = scan_submission(submission_dir, extra_secrets=[canary_token])
    return _SCANS[key]


def test_no_token_in_files(lab, submission_dir, canary_token):
    # Credit for "no token anywhere" goes to work that handles tokens: a stub or an empty folder has
    # nothing to leak and earns nothing here.
    lab.call("auth.get_token")
    scanned = _scan(submission_dir, canary_token)
    result = [leak for leak in scanned if leak.rule == HF_RULE]
    if result:
        listed = [f"  - {leak.describe()}" for leak in result[:MAX_LISTED]]
        if len(result) > MAX_LISTED:
            listed.append(f"  - … and {len(result) - MAX_LISTED} more")
        kinds = list(dict.fromkeys(leak.kind for leak in result))
        hints = [f"  * {HINTS[kind]}" for kind in kinds if kind in HINTS]
        raise AssertionError(
            f"found {len(result)} Hugging Face token(s) where none may be (shown masked):\n"
            + "\n".join(listed) + "\nHow to fix:\n" + "\n".join(hints)
            + "\n  * a token that was ever committed or shared is public: revoke it and create a new one "
              "at https://huggingface.co/settings/tokens")
    if scanned.incomplete:
        pytest.skip("no token was found, but not everything could be checked: " + "; ".join(scanned.incomplete))


OTHER_HINTS = {
    "Basic Auth Credentials": "a URL with user:password@ — keep credentials out of URLs (use a header or the "
                              "client's own credential store)",
    "Private Key": "a private key — never hand one in; keep keys outside the project folder",
}


def test_no_other_secrets_in_files(lab, submission_dir, canary_token):
    # Found by detect-secrets (Yelp's maintained scanner): keys and tokens of other services.
    lab.call("auth.get_token")
    scanned = _scan(submission_dir, canary_token)
    result = [leak for leak in scanned if leak.rule != HF_RULE]
    if result:
        listed = [f"  - {leak.describe()}" for leak in result[:MAX_LISTED]]
        if len(result) > MAX_LISTED:
            listed.append(f"  - … and {len(result) - MAX_LISTED} more")
        rules = list(dict.fromkeys(leak.rule for leak in result))
        hints = [f"  * {OTHER_HINTS[rule]}" for rule in rules if rule in OTHER_HINTS]
        raise AssertionError(
            f"found {len(result)} secret(s) of other kinds ({', '.join(rules)}; detect-secrets, shown "
            "masked):\n" + "\n".join(listed) + "\nHow to fix:\n" + "\n".join(hints)
            + ("\n" if hints else "")
            + "  * read secrets from environment variables (os.environ) or a .env file you do not hand in; "
              "remove them from the files and from git history, and revoke every secret that was handed in")
    if scanned.incomplete:
        pytest.skip("no secret was found, but not everything could be checked: "
                    + "; ".join(scanned.incomplete))


# -- at run time: the token goes to the service in the Authorization header, and nowhere else --------
@pytest.mark.runs_last  # after every other checkpoint (grading/plugin.py): it judges what all their workers printed
def test_no_token_in_output(lab, hf_sim, canary_token, grading_context):
    run = run_hf_calls(lab, hf_sim, canary_token)
    secrets = [canary_token, canary_token[3:]]
    listed = [(f"during {call}", line) for call, line in run.printed]
    # Every line any worker of this grading printed since it started (grading/sandbox/client.py watches
    # them all, however much is printed): at import, in this checkpoint's other calls, in other checkpoints.
    # Those of closed checkpoints are in the grading context; this checkpoint's worker may still run.
    everything = list(grading_context.printed) + [("auth", line) for line in lab.watched_lines(since=0)]
    seen = {line for _, line in listed}
    for checkpoint, raw in everything:
        line = shown_line(raw, secrets)
        if line in seen:
            continue
        seen.add(line)
        where = ("in the auth checkpoint (when your modules were imported, or in another call)"
                 if checkpoint == "auth" else f"while the {checkpoint} checkpoint ran your code")
        listed.append((where, line))
    if listed:
        shown = [f"  - {where}: {line}" for where, line in listed[:MAX_LISTED]]
        if len(listed) > MAX_LISTED:
            shown.append(f"  - … and {len(listed) - MAX_LISTED} more")
        raise AssertionError(
            "your code printed the token (shown masked here) while it ran:\n" + "\n".join(shown)
            + "\nNever print, log or put the token in an error message: print mask(token) if you must show "
              "which token is used, and let the client send it (api_key=token)")


def test_no_token_in_written_files(lab, hf_sim, canary_token):
    run = run_hf_calls(lab, hf_sim, canary_token)
    store = Path(lab.home) / ".cache" / "huggingface"
    found = scan_tree_for_secrets(Path(lab.workdir), [canary_token, canary_token[3:]],
                                  skip=[store / name for name in LOGIN_STORE])
    if found:
        listed = [f"  - {leak.describe()}" for leak in found[:MAX_LISTED]]
        raise AssertionError(
            f"your code wrote the token into {len(found)} place(s) in files while it ran (shown masked; "
            "'submission/' is the folder your code ran in, 'home/' its home folder):\n" + "\n".join(listed)
            + "\nNever write the token to a file, a log or a cache of your own: keep it in memory, and write "
              "only mask(token) to logs; huggingface_hub's own login store (hf auth login) is the one "
              "place a token belongs" + not_checked_note(run))
    if found.incomplete:
        pytest.skip("no token was found in the files written, but not all could be checked: "
                    + "; ".join(found.incomplete))


def test_token_only_in_authorization_header(lab, hf_sim, canary_token):
    run = run_hf_calls(lab, hf_sim, canary_token)
    leaks = []
    for rec in run.records:
        places = where_in_request(rec, canary_token)
        if places:
            leaks.append(f"  - {rec.method} {redact(rec.path, [canary_token, canary_token[3:]])}: in "
                         + ", ".join(places))
    if leaks:
        raise AssertionError(
            "your requests carried the token (shown masked) outside the Authorization header:\n"
            + "\n".join(leaks[:MAX_LISTED])
            + "\nA token in a URL ends up in server logs, proxies and browser history: never put it in a URL, "
              "query string (?token=, ?api_key=) or request body; pass it to the client as api_key=token, "
              "which sends 'Authorization: Bearer <token>'")
    bearer = [rec for rec in run.records
              if (rec.headers or {}).get("authorization") == f"Bearer {canary_token}"]
    assert bearer, (
        f"none of your requests carried 'Authorization: Bearer <HF_TOKEN>' ({len(run.records)} request(s) "
        "seen); pass the token from auth.get_token() to the client: InferenceClient(api_key=token) or "
        "openai.OpenAI(api_key=token)")
