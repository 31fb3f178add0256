"""The malformed requests that the simulator's vLLM error bodies are checked with.

scripts/record_vllm_shapes.py sends them to a real vLLM server and records its answers
(tests/fixtures/vllm_shapes/errors.json); tests/test_vllm_contract.py sends them to a live server and to
the simulator and compares the answers. Both size them to the server's context length.
"""

from __future__ import annotations

from typing import Any

MESSAGES = [{"role": "user", "content": "Why does continuous batching raise throughput?"}]


def error_requests(max_len: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The malformed requests by case, as (path, body), sized to the server's context (``max_len``)."""
    return {
        "missing_messages": ("/v1/chat/completions", {"model": "smollm2"}),
        "unknown_model": ("/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}),
        "temperature_negative": ("/v1/chat/completions", {"messages": MESSAGES, "temperature": -1}),
        "max_tokens_zero": ("/v1/completions", {"prompt": "hi", "max_tokens": 0}),
        "max_tokens_over_context": ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": max_len + 100}),
        "prompt_too_long": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "a " * (2 * max_len)}]}),
        "greedy_n": ("/v1/chat/completions", {"messages": MESSAGES, "n": 2, "temperature": 0}),
        "stream_options_without_stream": ("/v1/chat/completions", {"messages": MESSAGES,
                                                                    "stream_options": {"include_usage": True}}),
    }
