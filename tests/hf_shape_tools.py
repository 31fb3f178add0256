"""Shapes of HF wire traffic: type skeletons and stream framing summaries.

Used twice: by ``tests/fixtures/hf_shapes/derive.py`` to turn recorded traffic
(huggingface_hub's VCR cassettes) into the small fixtures under
``tests/fixtures/hf_shapes/``, and by ``tests/test_hf_sim.py`` to compute the same
summaries from the simulator's answers. A skeleton keeps keys, nesting and JSON
types (``"str"``, ``"int"``, ``"float"``, ``"bool"``, ``"null"``), never values.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["skeleton", "event_class", "split_sse", "stream_summary", "parsed_skeleton", "parse_stream_event",
           "parse_completion", "image_kind"]


def skeleton(value: Any) -> Any:
    """Keys, nesting and JSON types of ``value`` (lists: the distinct skeletons of their items)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, dict):
        return {str(k): skeleton(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        for item in value:
            s = skeleton(item)
            if s not in out:
                out.append(s)
        return out
    return type(value).__name__


def split_sse(body: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order (``"[DONE]"`` included)."""
    out = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data:"):
                out.append(line[5:].strip())
    return out


def event_class(payload: str) -> str:
    """``[DONE]``, or "+"-joined: role|content|empty, finish, usage (e.g. ``"empty+finish+usage"``)."""
    if payload == "[DONE]":
        return "[DONE]"
    chunk = json.loads(payload)
    choices = chunk.get("choices") or []
    delta = (choices[0].get("delta") or {}) if choices else {}
    if delta.get("content"):
        parts = ["content"]
    elif delta.get("role") and "content" not in delta:
        parts = ["role"]
    elif delta.get("role") and delta.get("content") == "" and not choices[0].get("finish_reason"):
        parts = ["role"]
    elif not choices:
        parts = ["nochoices"]
    else:
        parts = ["empty"]
    if choices and choices[0].get("finish_reason"):
        parts.append("finish")
    if chunk.get("usage") is not None:
        parts.append("usage")
    return "+".join(parts)


def parse_stream_event(payload: str) -> Any:
    """What InferenceClient makes of one SSE event (its own parser)."""
    from huggingface_hub.inference._common import _format_chat_completion_stream_output

    return _format_chat_completion_stream_output("data: " + payload)


def parse_completion(body: bytes | str) -> Any:
    from huggingface_hub.inference._generated.types import ChatCompletionOutput

    return ChatCompletionOutput.parse_obj_as_instance(body)


def parsed_skeleton(obj: Any) -> Any:
    """Skeleton of a parsed InferenceClient output (its fields and their types)."""
    return skeleton(json.loads(json.dumps(obj, default=lambda o: dict(o) if isinstance(o, dict) else str(o))))


def stream_summary(body: str) -> dict[str, Any]:
    """Framing of a chat stream: classes in order (runs collapsed), usage placement, skeletons per class."""
    payloads = split_sse(body)
    classes = [event_class(p) for p in payloads]
    order: list[str] = []
    for c in classes:
        if not order or order[-1].rstrip("*") != c:
            order.append(c)
        elif not order[-1].endswith("*"):
            order[-1] += "*"
    json_events = [(c, p) for c, p in zip(classes, payloads) if c != "[DONE]"]
    with_usage = [("usage" in c) for c, _ in json_events]
    usage = "none" if not any(with_usage) else ("every" if all(with_usage) else
                                                ("last" if with_usage[-1] and sum(with_usage) == 1 else "some"))
    skeletons: dict[str, list[Any]] = {}
    parsed: dict[str, list[Any]] = {}
    for c, p in json_events:
        sk = skeleton(json.loads(p))
        if sk not in skeletons.setdefault(c, []):
            skeletons[c].append(sk)
        pk = parsed_skeleton(parse_stream_event(p))
        if pk not in parsed.setdefault(c, []):
            parsed[c].append(pk)
    return {
        "order": order,
        "first": classes[0] if classes else None,
        "done": bool(classes) and classes[-1] == "[DONE]",
        "usage": usage,
        "skeletons": skeletons,
        "parsed": parsed,
    }


def image_kind(data: bytes) -> str:
    """``png``, ``jpeg``, ``webp`` or ``unknown`` from magic bytes."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return "unknown"
