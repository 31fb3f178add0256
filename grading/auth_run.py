"""The auth checkpoint's run-time check: the student's Hugging Face calls, made once with the canary.

``run_hf_calls`` makes each call of :data:`HF_CALLS` once per submission and canary (the three runtime
tests of checkpoints/test_auth.py share it) and keeps what they printed, the requests the simulator
logged and what did not run; ``where_in_request`` says where else than ``Authorization: Bearer`` a
request carried the token.

    run = run_hf_calls(lab, hf_sim, canary_token)
    run.records, run.printed, run.skipped
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from grading.context import around_secret
from grading.leaks import redact
from grading.sandbox.errors import ImportFailed, NotImplementedByStudent, StudentCodeError, StudentRaised

__all__ = ["HF_CALLS", "HFCallsRun", "LOGIN_STORE", "describe_call", "not_checked_note", "run_hf_calls",
           "short_text", "shown_line", "where_in_request"]


def short_text(message: str, secrets: list[str], limit: int = 300) -> str:
    """An exception's message for a message of ours: tokens masked, shortened."""
    text = redact(" ".join(str(message).split()), secrets)
    return text if len(text) <= limit else text[:limit] + "…"


HF_CALLS = (  # (function, args, kwargs): the student's Hugging Face calls, each made once
    ("hf_chat.chat", "why keep tokens secret?", {"model": "meta-llama/Llama-3.1-8B-Instruct",
                                                 "provider": "fireworks-ai", "max_tokens": 24}),
    ("hf_chat.chat_openai", "what is a bearer token?", {"model": "meta-llama/Llama-3.1-8B-Instruct",
                                                        "max_tokens": 24}),
    ("hf_chat.stream_chat", "what is a canary token?", {"model": "meta-llama/Llama-3.1-8B-Instruct",
                                                        "provider": "cerebras", "max_tokens": 24}),
    ("hf_image.generate_image", "a padlock, flat icon", {"model": "black-forest-labs/FLUX.1-schnell",
                                                         "provider": "together", "width": 128, "height": 128,
                                                         "seed": 7}),
)
# huggingface_hub's own credential store: `hf auth login` (or huggingface_hub.login()) writes the token
# there on purpose; it is where a token belongs, not a leak.
LOGIN_STORE = ("token", "stored_tokens")


class HFCallsRun:
    """What the student's HF calls did: results, printed output, files, requests (filled once)."""

    def __init__(self) -> None:
        self.done: list[str] = []                 # calls that returned
        self.skipped: list[str] = []              # not implemented (yet)
        self.failed: list[str] = []               # raised: "call: message" (masked)
        self.printed: list[tuple[str, str]] = []  # (call, masked line) where the token was printed
        self.records: list[Any] = []


# One run per submission and canary (a grading session has one), shared by the three runtime tests,
# also by the output check that runs at the end of the session in a lab of its own; a run that failed
# fails them all the same way.
_RUNS: dict[tuple[str, str], HFCallsRun | Exception] = {}


def describe_call(target: str, arg: str, kwargs: dict[str, Any]) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in kwargs.items() if k != "out_path")
    return f"{target.split('.')[-1]}({arg!r}, {shown})"


def run_hf_calls(lab: Any, hf_sim: Any, canary_token: str) -> HFCallsRun:
    key = (str(lab.source), canary_token)
    if key not in _RUNS:
        try:
            _RUNS[key] = _make_hf_calls(lab, hf_sim, canary_token)
        except Exception as exc:  # a StudentCodeError or our AssertionError: every runtime test says so
            _RUNS[key] = exc
    found = _RUNS[key]
    if isinstance(found, Exception):
        raise found
    return found


def shown_line(line: str, secrets: list[str]) -> str:
    """A printed line for a message: cut around the token, every token masked."""
    return redact(around_secret(line.strip(), tuple(secrets)).strip(), secrets)[:200]


def _make_hf_calls(lab: Any, hf_sim: Any, canary_token: str) -> HFCallsRun:
    lab.call("auth.get_token")  # not implemented → "not implemented: inference_lab.auth.get_token"
    run = HFCallsRun()
    # The token as a whole, and its random part alone (a token printed without its "hf_" is no safer).
    secrets = [canary_token, canary_token[3:]]
    out_dir = Path(lab.workdir) / "auth-run"
    out_dir.mkdir(exist_ok=True)
    t0 = time.monotonic()
    for target, arg, kwargs in HF_CALLS:
        kwargs = dict(kwargs)
        if target.endswith("generate_image"):
            kwargs["out_path"] = str(out_dir / "padlock.png")
        messages = arg if target.endswith("generate_image") else [{"role": "user", "content": arg}]
        call = describe_call(target, arg, kwargs)
        before = lab.output_mark()
        try:
            lab.call(target, messages, **kwargs)
        except NotImplementedByStudent:
            run.skipped.append(call)
        except StudentRaised as err:
            if err.exc_type == "ModuleNotFoundError" and isinstance(err, ImportFailed):
                run.skipped.append(call)
            else:
                run.failed.append(f"{call} raised {err.exc_type}: {short_text(err.exc_message, secrets, 160)}")
        except StudentCodeError as err:
            run.failed.append(short_text(str(err), secrets, 200))
        else:
            run.done.append(call)
        # Every line of the worker's stdout/stderr is checked for the canary as it is read, however
        # much the code prints (grading/sandbox/client.py, watch_output).
        for line in lab.watched_lines(since=before):
            run.printed.append((call, shown_line(line, secrets)))
    t1 = time.monotonic()
    run.records = [r for r in hf_sim.log.records(service="hf") if t0 <= r.t_start <= t1]
    if not run.done:
        reasons = run.failed or [f"{c}: not implemented" for c in run.skipped]
        raise AssertionError(
            "none of your Hugging Face calls completed, so nothing showed how your code handles the token "
            "when it uses it:\n" + "\n".join(f"  - {r}" for r in reasons[:6])
            + "\nImplement hf_chat.chat / chat_openai / stream_chat and hf_image.generate_image (checkpoints "
              "hf_chat and hf_image) with the token from auth.get_token()")
    return run


def not_checked_note(run: HFCallsRun) -> str:
    parts = []
    if run.skipped:
        parts.append(f"not checked (not implemented): {', '.join(c.split('(')[0] for c in run.skipped)}")
    return f" ({'; '.join(parts)})" if parts else ""


def where_in_request(rec: Any, token: str) -> list[str]:
    """The places other than 'Authorization: Bearer' where a request carried the token."""
    secrets = (token, token[3:])
    places = []
    url = rec.path + ("?" + "&".join(f"{k}={v}" for k, v in (rec.query or {}).items()) if rec.query else "")
    if any(s in url for s in secrets):
        places.append("its URL" + (" (query string)" if any(s in str(rec.query) for s in secrets) else ""))
    if rec.body is not None and any(s in json.dumps(rec.body, ensure_ascii=False) for s in secrets):
        places.append("its body")
    for name, value in (rec.headers or {}).items():
        if not any(s in str(value) for s in secrets):
            continue
        if name == "authorization" and value == f"Bearer {token}":
            continue
        places.append(f"the {name!r} header" if name != "authorization" else
                      "the Authorization header in another form than 'Bearer <token>'")
    return places
