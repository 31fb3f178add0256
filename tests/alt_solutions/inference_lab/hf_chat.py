"""Chat through Hugging Face Inference Providers, written differently from reference/: every call
goes through the ``openai`` client to the router's OpenAI-compatible API, and an explicit provider is
chosen with the router's ``model:provider`` suffix (no InferenceClient, no mapping prefetch).
Times with ``time.monotonic``."""

import os
import time

from .auth import get_token

__all__ = ["chat", "chat_openai", "stream_chat"]

ROUTER = "https://router.huggingface.co/v1"


def _client(timeout):
    import openai

    base = os.environ.get("OPENAI_BASE_URL") or ROUTER
    return openai.OpenAI(base_url=base, api_key=get_token(), timeout=timeout, max_retries=0)


def _routed(model, provider):
    return model if provider in (None, "", "auto") else f"{model}:{provider}"


def _usage(usage):
    if usage is None:
        return {"prompt_tokens": None, "completion_tokens": None}
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}


def _complete(messages, model, max_tokens, timeout, temperature=None):
    extra = {} if temperature is None else {"temperature": temperature}
    with _client(timeout) as client:
        began = time.monotonic()
        answer = client.chat.completions.create(model=model, messages=list(messages), max_tokens=max_tokens,
                                                **extra)
        took = time.monotonic() - began
    return answer, took


def chat(messages, *, model, provider="auto", max_tokens=256, temperature=0.0, timeout=30.0):
    answer, took = _complete(messages, _routed(model, provider), max_tokens, timeout, temperature)
    return {"text": answer.choices[0].message.content or "", "model": model, "provider": provider,
            "latency_s": took, "usage": _usage(answer.usage)}


def chat_openai(messages, *, model, max_tokens=256, timeout=30.0):
    answer, took = _complete(messages, model, max_tokens, timeout)
    provider = model.partition(":")[2] or "auto"
    return {"text": answer.choices[0].message.content or "", "model": model, "provider": provider,
            "latency_s": took, "usage": _usage(answer.usage)}


def stream_chat(messages, *, model, provider="auto", max_tokens=256):
    pieces, first, count = [], None, 0
    with _client(120.0) as client:
        began = time.monotonic()
        events = client.chat.completions.create(model=_routed(model, provider), messages=list(messages),
                                                max_tokens=max_tokens, stream=True)
        for event in events:
            if not event.choices:
                continue
            piece = event.choices[0].delta.content
            if not piece:
                continue
            if first is None:
                first = time.monotonic() - began
            count += 1
            pieces.append(piece)
        took = time.monotonic() - began
    return {"text": "".join(pieces), "ttft_s": first, "latency_s": took, "chunks": count,
            "provider": provider, "model": model}
