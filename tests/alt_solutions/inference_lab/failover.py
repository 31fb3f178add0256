"""Failover written independently of reference/: plain httpx against the router's OpenAI-compatible
``/v1/chat/completions`` (``model:provider`` picks the provider), a table-driven retry loop, a
rate limiter object, and ``Retry-After`` read with ``email.utils`` for dates."""

import email.utils
import os
import random
import threading
import time

import httpx

from .auth import get_token

__all__ = ["AllProvidersFailed", "chat_with_failover"]


class AllProvidersFailed(RuntimeError):
    def __init__(self, message, attempts=None):
        super().__init__(message)
        self.attempts = list(attempts or [])


class _Interval:
    """Starts at least ``seconds`` apart (a monotonic clock and a lock)."""

    def __init__(self, seconds):
        self.seconds = max(0.0, float(seconds or 0.0))
        self.last = None
        self.lock = threading.Lock()

    def wait(self):
        with self.lock:
            now = time.monotonic()
            if self.last is not None and self.seconds:
                due = self.last + self.seconds * 1.01 + 0.002
                if due > now:
                    time.sleep(due - now)
            self.last = time.monotonic()


def _retry_after(response):
    raw = response.headers.get("retry-after") if response is not None else None
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return float(raw)
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _one(client, messages, model, provider, token):
    """(status, text/usage dict or None, error, response)."""
    url = os.environ.get("OPENAI_BASE_URL", "https://router.huggingface.co/v1").rstrip("/") + "/chat/completions"
    body = {"model": f"{model}:{provider}", "messages": messages, "max_tokens": 256}
    response = client.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
    if response.status_code >= 400:
        return response.status_code, None, f"HTTP {response.status_code}: {response.text[:120]}", response
    try:
        data = response.json()
        text = data["choices"][0]["message"]["content"] or ""
        usage = data.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        return response.status_code, None, f"malformed body ({type(exc).__name__})", response
    return response.status_code, {"text": text, "usage": {"prompt_tokens": usage.get("prompt_tokens"),
                                                          "completion_tokens": usage.get("completion_tokens")}}, None, response


def chat_with_failover(messages, *, model, providers, timeout=10.0, max_retries=3, backoff_base=0.5,
                       backoff_max=8.0, min_interval_s=0.0):
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    token = get_token()
    limiter = _Interval(min_interval_s)
    attempts = []
    with httpx.Client(timeout=timeout) as client:
        for provider in ([providers] if isinstance(providers, str) else list(providers)):
            for n in range(int(max_retries) + 1):
                limiter.wait()
                began = time.perf_counter()
                try:
                    status, answer, error, response = _one(client, list(messages), model, provider, token)
                except httpx.TimeoutException as exc:
                    status, answer, error, response = None, None, f"timeout: {exc!r}"[:150], None
                except httpx.TransportError as exc:
                    status, answer, error, response = None, None, f"connection error: {exc!r}"[:150], None
                took = time.perf_counter() - began
                attempts.append({"provider": provider, "ok": answer is not None, "status": status,
                                 "error": error, "elapsed_s": took})
                if answer is not None:
                    return {**answer, "model": model, "provider": provider, "latency_s": took, "attempts": attempts}
                if status in (401, 403):
                    break  # never retried; the next provider may still take the token
                retryable = status is None or status in (408, 429) or status >= 500 or error.startswith("malformed")
                if not retryable or n == max_retries:
                    break
                d = min(backoff_max, backoff_base * (2 ** n))
                wait = _retry_after(response)
                if wait is not None and wait > 60:
                    break
                time.sleep((wait if wait is not None else d / 2) + random.random() * (d / 2))
    lines = [f"{i}. {a['provider']} -> {a['status'] if a['status'] is not None else 'no status'}: {a['error']}"
             for i, a in enumerate(attempts, 1)]
    raise AllProvidersFailed(f"no provider answered {model} ({len(attempts)} attempts):\n" + "\n".join(lines),
                             attempts)
