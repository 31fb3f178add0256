"""Checkpoint `auth`: authenticate without exposing tokens.

``inference_lab.auth.get_token()`` must return ``HF_TOKEN`` from the environment, else the token that
``hf auth login`` (``huggingface-cli login``) stored, else raise ``MissingTokenError`` (a
``RuntimeError``) that says how to fix it; ``mask()`` must show at most the ``hf_`` prefix and the
last 4 characters. And no token may be anywhere in what is handed in: code, notebooks (sources and
saved outputs), ``.env`` files, git history (``grading/leaks.py`` reads the submission as data).

The worker's ``HF_TOKEN`` is the grader's canary (a fake token, different on every run); its HOME and
HF_HOME are its own empty folders, so the "stored login" is the one these tests write there.
"""

from __future__ import annotations

import random
import string
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from grading.leaks import TOKEN_RE, redact, scan_submission
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


def _text(message: str, secrets: list[str], limit: int = 300) -> str:
    """An exception's message for a message of ours: tokens masked, shortened."""
    text = redact(" ".join(str(message).split()), secrets)
    return text if len(text) <= limit else text[:limit] + "…"


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
                f"{_text(err.exc_message, secrets)}; fall back to the stored login before giving up: "
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
    shown = _text(message, secrets)
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
                f"mask({short!r}) raised {err.exc_type}: {_text(err.exc_message, [canary_token])}; mask() must "
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


def test_no_token_in_files(lab, submission_dir, canary_token):
    # Credit for "no token anywhere" goes to work that handles tokens: a stub or an empty folder has
    # nothing to leak and earns nothing here.
    lab.call("auth.get_token")
    result = scan_submission(submission_dir, extra_secrets=[canary_token])
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
    if result.incomplete:
        pytest.skip("no token was found, but not everything could be checked: " + "; ".join(result.incomplete))
