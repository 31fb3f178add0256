"""Query a local Ollama server (default http://localhost:11434).

Uses the ``ollama`` Python client for the native API (``/api/tags``, ``/api/pull``,
``/api/generate``, ``/api/chat``) and the ``openai`` client for Ollama's OpenAI-compatible
``/v1``. Ollama reports durations in **nanoseconds**; this module returns seconds.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

__all__ = ["list_models", "ensure_model", "generate", "chat", "chat_openai"]

DEFAULT_HOST = "http://localhost:11434"
DEFAULT_OPENAI_BASE = "http://localhost:11434/v1"
_REQUEST_TIMEOUT_S = 300.0
_CONNECT_TIMEOUT_S = 10.0


class OllamaUnreachable(ConnectionError, TimeoutError):
    """Nothing answered at the Ollama URL (a ``ConnectionError``; also a ``TimeoutError``)."""


def _normalize_host(host: str) -> str:
    """``localhost``, ``0.0.0.0:11434``, ``http://x`` ... -> ``scheme://host:port[/path]``."""
    host = host.strip()
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest = "http", host
        default_port = 11434
    else:
        default_port = 443 if scheme == "https" else 80
    parts = urlsplit(f"{scheme}://{rest}")
    hostname = parts.hostname or "localhost"
    if ":" in hostname:
        hostname = f"[{hostname}]"
    try:
        port = parts.port or default_port
    except ValueError:
        port = default_port
    return f"{scheme}://{hostname}:{port}{parts.path.rstrip('/')}"


def _base_url(host: str | None) -> str:
    return _normalize_host(host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST)


def _client(url: str, *, read_timeout: float | None = _REQUEST_TIMEOUT_S):
    import httpx
    import ollama

    timeout = httpx.Timeout(read_timeout, connect=_CONNECT_TIMEOUT_S)
    return ollama.Client(host=url, timeout=timeout)


def _unreachable(url: str, exc: BaseException) -> OllamaUnreachable:
    return OllamaUnreachable(
        f"Ollama is not answering at {url} ({type(exc).__name__}). "
        "Start it with `ollama serve` (or the desktop app), or set OLLAMA_HOST."
    )


def _is_connection_problem(exc: BaseException) -> bool:
    import httpx

    return isinstance(exc, (ConnectionError, httpx.TransportError))


def _seconds(ns) -> float | None:
    return ns / 1e9 if ns is not None else None


def _tokens_per_s(eval_count, eval_duration_ns) -> float | None:
    if not eval_count or not eval_duration_ns:
        return None
    return eval_count / (eval_duration_ns / 1e9)


def _with_tag(name: str) -> str:
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:latest"


def list_models(host=None) -> list:
    """Names of the local models (``GET /api/tags``), e.g. ``["llama3.2:1b", "smollm2:135m"]``."""
    url = _base_url(host)
    try:
        with _client(url) as client:
            response = client.list()
    except Exception as exc:
        if _is_connection_problem(exc):
            raise _unreachable(url, exc) from exc
        raise
    names = [m.model for m in response.models]
    if any(name is None for name in names):  # an older server that only sends "name"
        import httpx

        tags = httpx.get(f"{url}/api/tags", timeout=_CONNECT_TIMEOUT_S).json()
        names = [m.get("model") or m.get("name") for m in tags.get("models", [])]
    return [name for name in names if name]


def ensure_model(model, host=None) -> bool:
    """Make sure ``model`` is present; pull it (``POST /api/pull``) if not.

    Returns True if it had to pull, False if the model was already there.
    """
    url = _base_url(host)
    present = {_with_tag(name) for name in list_models(url)}
    if _with_tag(model) in present:
        return False
    try:
        with _client(url, read_timeout=None) as client:  # a pull can take many minutes
            progress = client.pull(model, stream=False)
    except Exception as exc:
        if _is_connection_problem(exc):
            raise _unreachable(url, exc) from exc
        raise
    status = getattr(progress, "status", None)
    if status not in (None, "success"):
        raise RuntimeError(f"pulling {model!r} from {url} ended with status {status!r}")
    return True


def generate(prompt, *, model, host=None, options=None) -> dict:
    """One non-streamed ``/api/generate``.

    Returns ``{text, eval_count, eval_duration_s, tokens_per_s, load_duration_s}`` (+ ``latency_s``,
    ``prompt_eval_count``, ``total_duration_s``). ``tokens_per_s = eval_count / eval_duration_s``:
    generated tokens over the decode time the server measured (not the wall clock).
    """
    url = _base_url(host)
    try:
        with _client(url) as client:
            start = time.perf_counter()
            response = client.generate(model=model, prompt=prompt, options=options, stream=False)
            latency = time.perf_counter() - start
    except Exception as exc:
        if _is_connection_problem(exc):
            raise _unreachable(url, exc) from exc
        raise
    return {
        "text": response.response or "",
        "eval_count": response.eval_count,
        "eval_duration_s": _seconds(response.eval_duration),
        "tokens_per_s": _tokens_per_s(response.eval_count, response.eval_duration),
        "load_duration_s": _seconds(response.load_duration),
        "prompt_eval_count": response.prompt_eval_count,
        "total_duration_s": _seconds(response.total_duration),
        "latency_s": latency,
    }


def chat(messages, *, model, host=None, stream=False) -> dict:
    """``/api/chat``, streamed or not.

    Returns ``{text, ttft_s, latency_s, eval_count, tokens_per_s}``; ``ttft_s`` is the time to the
    first chunk with content when streaming and ``None`` otherwise; ``eval_count`` and
    ``tokens_per_s`` come from the final object (``done: true``).
    """
    url = _base_url(host)
    msgs = [dict(m) for m in messages]
    ttft = None
    final = None
    parts: list = []
    try:
        with _client(url) as client:
            start = time.perf_counter()
            if stream:
                for part in client.chat(model=model, messages=msgs, stream=True):
                    content = part.message.content if part.message is not None else None
                    if content:
                        if ttft is None:
                            ttft = time.perf_counter() - start
                        parts.append(content)
                    if part.done:
                        final = part
                latency = time.perf_counter() - start
            else:
                final = client.chat(model=model, messages=msgs, stream=False)
                latency = time.perf_counter() - start
                parts.append(final.message.content or "")
    except Exception as exc:
        if _is_connection_problem(exc):
            raise _unreachable(url, exc) from exc
        raise
    eval_count = final.eval_count if final is not None else None
    eval_duration = final.eval_duration if final is not None else None
    return {
        "text": "".join(parts),
        "ttft_s": ttft,
        "latency_s": latency,
        "eval_count": eval_count,
        "tokens_per_s": _tokens_per_s(eval_count, eval_duration),
        "eval_duration_s": _seconds(eval_duration),
    }


def chat_openai(messages, *, model, base_url=DEFAULT_OPENAI_BASE) -> dict:
    """Chat through Ollama's OpenAI-compatible ``/v1`` with the ``openai`` client.

    Ollama ignores the API key, but the client needs one: any placeholder will do (never the
    HF token). With the default ``base_url`` and ``OLLAMA_HOST`` set, the server named there is used.
    Returns ``{text, latency_s, usage: {prompt_tokens, completion_tokens}}``.
    """
    import openai

    if base_url == DEFAULT_OPENAI_BASE and os.environ.get("OLLAMA_HOST"):
        base_url = _base_url(None) + "/v1"
    base_url = str(base_url).rstrip("/")
    try:
        with openai.OpenAI(
            base_url=base_url, api_key="ollama", max_retries=0, timeout=_REQUEST_TIMEOUT_S
        ) as client:
            start = time.perf_counter()
            response = client.chat.completions.create(model=model, messages=list(messages))
            latency = time.perf_counter() - start
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        raise _unreachable(base_url, exc) from exc
    usage = response.usage
    return {
        "text": response.choices[0].message.content or "",
        "latency_s": latency,
        "usage": {
            "prompt_tokens": getattr(usage, "prompt_tokens", None),
            "completion_tokens": getattr(usage, "completion_tokens", None),
        },
        "model": model,
    }
