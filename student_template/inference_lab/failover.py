"""Chat with timeouts, retries, backoff, ``Retry-After``, rate limiting and failover."""

from __future__ import annotations

__all__ = ["AllProvidersFailed", "chat_with_failover"]


class AllProvidersFailed(RuntimeError):
    """Every provider was tried and none answered. (Part of the contract: keep it.)

    ``.attempts`` is the list of every attempt, in order (see ``chat_with_failover``).
    """

    def __init__(self, message: str, attempts=None):
        super().__init__(message)
        self.attempts = list(attempts or [])


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
    """Chat via the first provider (in the order given) that answers.

    Returns the keys of ``hf_chat.chat`` (``provider`` = the provider that answered) plus
    ``"attempts": [{"provider", "ok", "status", "error", "elapsed_s"}, ...]`` - every request you
    made, in order; ``status`` is the HTTP status or ``None`` (timeout, connection error).

    TODO - the policy, per provider:
      - ``timeout`` applies to each attempt (pass it to the client).
      - ``max_retries`` counts retries after the first try.
      - Retry timeouts, connection errors, malformed bodies and HTTP 408, 429 and 5xx.
      - Before the n-th retry (n = 1, 2, ...) sleep a random time in ``[d/2, d]`` with
        ``d = min(backoff_max, backoff_base * 2**(n-1))`` ("equal jitter").
      - If the response has ``Retry-After: R`` (seconds, or an HTTP date - see
        ``email.utils.parsedate_to_datetime``), wait at least ``R`` and at most ``R + d``;
        if ``R > 60``, do not wait: go to the next provider.
      - 404, 422 and other 4xx (except 408/429): no retry, next provider. 401/403: never retry
        (stop, or try the next provider).
      - ``min_interval_s``: any two requests this function starts are at least that far apart,
        across providers (client-side rate limiting).
      - When every provider is exhausted, raise ``AllProvidersFailed(message, attempts)``; the
        message lists every attempt (provider, status, error).
      - If you use the ``openai`` client, pass ``max_retries=0`` - your code does the retrying.
    """
    raise NotImplementedError("TODO: implement failover.chat_with_failover")
