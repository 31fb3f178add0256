"""Chat with per-attempt timeouts, retries with capped exponential backoff and jitter,
``Retry-After``, client-side rate limiting and failover across providers.

Policy (per provider, in the order given):

- ``max_retries`` counts retries after the first try.
- Retried: timeouts, connection errors, malformed bodies, HTTP 408, 429 and 5xx.
- Before the n-th retry wait uniformly in ``[d/2, d]`` with ``d = min(backoff_max,
  backoff_base * 2**(n-1))`` ("equal jitter"). With ``Retry-After: R`` (seconds or an HTTP date)
  wait at least ``R`` and at most ``R + d``; if ``R > 60`` go to the next provider instead.
- Not retried: 401 (the token is bad for every provider: stop at once), 403, 404, 422 and any
  other 4xx (next provider).
- ``min_interval_s``: any two requests started by one call are at least that far apart.
- Every attempt is recorded in ``attempts``; when all providers are exhausted
  ``AllProvidersFailed`` is raised with the full list.
"""

from __future__ import annotations

import email.utils
import json
import random
import sys
import time
from datetime import datetime, timezone

from .auth import MissingTokenError, get_token
from .hf_chat import MalformedResponse, chat

__all__ = ["AllProvidersFailed", "chat_with_failover"]

RETRY_AFTER_LIMIT_S = 60.0


class AllProvidersFailed(RuntimeError):
    """Every provider was tried and none answered; ``.attempts`` lists every attempt in order."""

    def __init__(self, message: str, attempts=None):
        super().__init__(message)
        self.attempts = list(attempts or [])


def _status_of(exc: BaseException):
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def _headers_of(exc: BaseException):
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None) or {}


def _retry_after_s(headers) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if absent/invalid."""
    try:
        value = headers.get("retry-after")
    except Exception:
        return None
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _http_errors(name: str) -> tuple[type, ...]:
    """The exception class ``name`` of each HTTP library in use (httpx2, httpx).

    Only libraries already imported: an exception can only come from one of those, and importing
    httpx just to classify an error would cost ~0.1 s inside a timed attempt.
    """
    modules = (sys.modules.get(library) for library in ("httpx2", "httpx"))
    return tuple(getattr(module, name) for module in modules if module is not None)


def _is_timeout(exc: BaseException) -> bool:
    # TimeoutError includes huggingface_hub's InferenceTimeoutError
    return isinstance(exc, (TimeoutError, *_http_errors("TimeoutException")))


def _is_transport_error(exc: BaseException) -> bool:
    return isinstance(exc, (ConnectionError, *_http_errors("TransportError")))


def _is_malformed(exc: BaseException) -> bool:
    return isinstance(
        exc,
        (MalformedResponse, json.JSONDecodeError, UnicodeDecodeError, KeyError, IndexError,
         TypeError, AttributeError, ValueError),
    )


def _describe(exc: BaseException) -> str:
    """One line: exception type and the first line of its message (no headers, no token)."""
    text = str(exc).strip()
    first_line = text.splitlines()[0] if text else ""
    label = type(exc).__name__
    return f"{label}: {first_line}"[:300] if first_line else label


def _classify(exc: BaseException):
    """-> (status, action, error) with action in {"retry", "next", "stop"}."""
    status = _status_of(exc)
    if status is not None:
        if status in (401,):
            return status, "stop", _describe(exc)
        if status == 408 or status == 429 or status >= 500:
            return status, "retry", _describe(exc)
        if 400 <= status < 500:
            return status, "next", _describe(exc)
        return status, "retry", _describe(exc)
    if _is_timeout(exc):
        return None, "retry", _describe(exc) or "timeout"
    if _is_transport_error(exc):
        return None, "retry", _describe(exc)
    if _is_malformed(exc):
        # the HTTP exchange succeeded (any error status would have been raised above)
        return 200, "retry", "malformed response body: " + _describe(exc)
    return None, "next", _describe(exc)


def _check_provider(provider: str, model: str) -> None:
    """Raise if InferenceClient cannot use ``provider`` for ``model`` (unknown provider, no mapping).

    Done before the first request to a provider so that a later ValueError can only mean a
    malformed response body.
    """
    if provider == "auto":
        return
    try:
        from huggingface_hub.inference._providers import get_provider_helper
    except ImportError:  # another huggingface_hub layout: let the request itself tell
        return
    helper = get_provider_helper(provider, task="conversational", model=model)
    prepare = getattr(helper, "_prepare_mapping_info", None)
    if prepare is not None:
        prepare(model)


def _format_attempts(model, attempts) -> str:
    lines = [f"All providers failed for model {model!r} after {len(attempts)} attempt(s):"]
    for i, a in enumerate(attempts, 1):
        status = f"HTTP {a['status']}" if a["status"] is not None else "no HTTP status"
        lines.append(
            f"  {i}. {a['provider']}: {status}, {a['error'] or 'ok'} ({a['elapsed_s']:.3f} s)"
        )
    return "\n".join(lines)


def chat_with_failover(
    messages,
    *,
    model,
    providers,
    timeout=10.0,
    max_retries=3,
    backoff_base=0.5,
    backoff_max=8.0,
    min_interval_s=0.0,
) -> dict:
    """Chat via the first provider that answers; see the module docstring for the policy.

    Returns the keys of ``hf_chat.chat`` (``provider`` = the provider that answered) plus
    ``attempts: [{provider, ok, status, error, elapsed_s}]``.
    Raises ``AllProvidersFailed`` (with ``.attempts``) when every provider is exhausted.
    """
    if isinstance(providers, str):
        providers = [providers]
    providers = list(providers)
    if not providers:
        raise ValueError("providers must name at least one provider")
    get_token()  # MissingTokenError now, not once per provider

    attempts: list = []
    last_start: float | None = None

    def record(provider, ok, status, error, elapsed):
        attempts.append(
            {"provider": provider, "ok": ok, "status": status, "error": error, "elapsed_s": elapsed}
        )

    for provider in providers:
        try:
            _check_provider(provider, model)
        except MissingTokenError:
            raise
        except Exception as exc:
            status = _status_of(exc)
            record(provider, False, status, "provider unavailable: " + _describe(exc), 0.0)
            if status == 401:
                raise AllProvidersFailed(_format_attempts(model, attempts), attempts) from exc
            continue

        retries = 0
        while True:
            if last_start is not None and min_interval_s > 0:
                # a hair more than the interval: the request leaves a moment after this point
                margin = min(0.005, 0.02 * float(min_interval_s))
                wait = last_start + float(min_interval_s) + margin - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            last_start = time.monotonic()
            start = time.perf_counter()
            try:
                result = chat(messages, model=model, provider=provider, timeout=timeout)
            except MissingTokenError:
                raise
            except Exception as exc:
                elapsed = time.perf_counter() - start
                status, action, error = _classify(exc)
                record(provider, False, status, error, elapsed)
                if action == "stop":
                    raise AllProvidersFailed(_format_attempts(model, attempts), attempts) from exc
                if action == "next" or retries >= max_retries:
                    break
                retries += 1
                d = min(float(backoff_max), float(backoff_base) * 2 ** (retries - 1))
                retry_after = _retry_after_s(_headers_of(exc)) if status is not None else None
                if retry_after is not None:
                    if retry_after > RETRY_AFTER_LIMIT_S:
                        break  # too long to wait: next provider
                    delay = retry_after + random.uniform(0.0, d / 2)
                else:
                    delay = random.uniform(d / 2, d)
                time.sleep(delay)
                continue
            elapsed = time.perf_counter() - start
            record(provider, True, 200, None, elapsed)
            result["attempts"] = attempts
            return result

    raise AllProvidersFailed(_format_attempts(model, attempts), attempts)
