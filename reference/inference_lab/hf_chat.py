"""Chat inference through Hugging Face Inference Providers.

- ``chat``         ``huggingface_hub.InferenceClient.chat_completion`` with an explicit provider or "auto"
- ``chat_openai``  the ``openai`` client pointed at the router's OpenAI-compatible ``/v1``
- ``stream_chat``  streamed chat completion, measuring time to first token (TTFT)

Times are seconds (``time.perf_counter``); token counts come from the server's ``usage``.
"""

from __future__ import annotations

import os
import time
from typing import Any, Iterable

from .auth import get_token

__all__ = ["chat", "chat_openai", "stream_chat"]

DEFAULT_ROUTER_BASE = "https://router.huggingface.co/v1"
_STREAM_TIMEOUT_S = 300.0  # stream_chat has no timeout argument: a generous limit per read


def _router_base() -> str:
    """The router's OpenAI-compatible base URL (``OPENAI_BASE_URL`` overrides it)."""
    return (os.environ.get("OPENAI_BASE_URL") or DEFAULT_ROUTER_BASE).rstrip("/")


def _messages(messages: Iterable[Any]) -> list:
    if isinstance(messages, str):
        return [{"role": "user", "content": messages}]
    return [dict(m) if isinstance(m, dict) else m for m in messages]


def _prepare_provider(provider: str | None, task: str, model: str) -> None:
    """Resolve the provider's model mapping *before* a timed request.

    For an explicit provider (and for "auto" outside chat) InferenceClient first asks the Hub
    which provider model id to call; it caches the answer. Doing that here keeps the Hub
    round-trip out of the latency we report, so latency is what the provider itself took.
    Any problem is left for the real call to raise.
    """
    if provider == "auto" and task == "conversational":
        return  # the router picks the provider server-side: no mapping call
    try:
        from huggingface_hub.inference._providers import get_provider_helper

        helper = get_provider_helper(provider, task=task, model=model)
        helper._prepare_mapping_info(model)
    except Exception:
        pass


def _usage(usage: Any) -> dict:
    def field(name: str) -> int | None:
        if usage is None:
            return None
        value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
        return int(value) if value is not None else None

    return {"prompt_tokens": field("prompt_tokens"), "completion_tokens": field("completion_tokens")}


class MalformedResponse(ValueError):
    """The server answered 2xx with a body that is not a usable chat completion."""


def _first_choice_text(output: Any) -> str:
    choices = getattr(output, "choices", None)
    if not choices:
        raise MalformedResponse("malformed chat completion: no choices in the response")
    message = getattr(choices[0], "message", None)
    if message is None:
        raise MalformedResponse("malformed chat completion: the first choice has no message")
    content = getattr(message, "content", None)
    if content is None:
        return ""
    if not isinstance(content, str):
        raise MalformedResponse("malformed chat completion: message content is not text")
    return content


def chat(
    messages,
    *,
    model,
    provider="auto",
    max_tokens=256,
    temperature=0.0,
    timeout=30.0,
) -> dict:
    """One chat completion via ``InferenceClient(provider=...)``.

    Returns ``{text, model, provider, latency_s, usage: {prompt_tokens, completion_tokens}}``;
    ``provider`` is the one asked for ("auto" stays "auto"), ``model`` the model asked for.
    Errors of the client propagate (``HfHubHTTPError`` with ``.response``,
    ``InferenceTimeoutError``, transport errors); failover logic builds on that.
    """
    from huggingface_hub import InferenceClient

    token = get_token()
    msgs = _messages(messages)
    _prepare_provider(provider, "conversational", model)
    with InferenceClient(provider=provider, api_key=token, timeout=timeout) as client:
        start = time.perf_counter()
        output = client.chat_completion(
            msgs, model=model, max_tokens=max_tokens, temperature=temperature
        )
        latency = time.perf_counter() - start
    text = _first_choice_text(output)
    return {
        "text": text,
        "model": model,
        "provider": provider,
        "latency_s": latency,
        "usage": _usage(getattr(output, "usage", None)),
    }


def chat_openai(messages, *, model, max_tokens=256, timeout=30.0) -> dict:
    """One chat completion through the router's OpenAI-compatible API with the ``openai`` client.

    ``model`` may carry a provider suffix (``"org/model:together"``); without one the router
    chooses ("auto"). ``max_retries=0``: one call is one request, nothing retried behind our back.
    """
    import openai

    token = get_token()
    msgs = _messages(messages)
    provider = model.rsplit(":", 1)[1] if ":" in model else "auto"
    with openai.OpenAI(
        base_url=_router_base(), api_key=token, timeout=timeout, max_retries=0
    ) as client:
        start = time.perf_counter()
        response = client.chat.completions.create(
            model=model, messages=msgs, max_tokens=max_tokens
        )
        latency = time.perf_counter() - start
    text = _first_choice_text(response)
    return {
        "text": text,
        "model": model,
        "provider": provider,
        "latency_s": latency,
        "usage": _usage(getattr(response, "usage", None)),
    }


def stream_chat(messages, *, model, provider="auto", max_tokens=256) -> dict:
    """A streamed chat completion: ``{text, ttft_s, latency_s, chunks}`` (+ ``provider``, ``model``).

    ``ttft_s`` runs from sending the request to the first chunk that carries content (a role-only
    first chunk does not count); ``latency_s`` to the end of the stream; ``chunks`` counts the
    chunks with content (a chunk can hold several tokens, so this is not a token count).
    """
    from huggingface_hub import InferenceClient

    token = get_token()
    msgs = _messages(messages)
    _prepare_provider(provider, "conversational", model)
    parts: list[str] = []
    ttft = None
    chunks = 0
    usage = None
    with InferenceClient(provider=provider, api_key=token, timeout=_STREAM_TIMEOUT_S) as client:
        start = time.perf_counter()
        stream = client.chat_completion(msgs, model=model, max_tokens=max_tokens, stream=True)
        for chunk in stream:
            now = time.perf_counter()
            if getattr(chunk, "usage", None) is not None:
                usage = chunk.usage
            choices = getattr(chunk, "choices", None) or []
            if not choices:
                continue
            delta = getattr(choices[0], "delta", None)
            content = getattr(delta, "content", None) if delta is not None else None
            if content:
                if ttft is None:
                    ttft = now - start
                chunks += 1
                parts.append(content)
        latency = time.perf_counter() - start
    result = {
        "text": "".join(parts),
        "ttft_s": ttft,
        "latency_s": latency,
        "chunks": chunks,
        "provider": provider,
        "model": model,
    }
    if usage is not None:
        result["usage"] = _usage(usage)
    return result
