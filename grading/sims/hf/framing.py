"""Each provider's chat answer shapes, as recorded (huggingface_hub's 2025 VCR cassettes).

A ``Frame`` builds, for one request, the non-streamed completion and the
stream's pieces: an optional role-only first chunk, one content chunk per
token, the chunks after the last token, and whether ``data: [DONE]`` ends it.
The keys, nesting and null/absent choices follow the recordings (see
tests/fixtures/hf_shapes/); ids and fingerprints are generated.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Frame", "usage_dict"]

_CFR = {
    "hate": {"filtered": False},
    "self_harm": {"filtered": False},
    "sexual": {"filtered": False},
    "violence": {"filtered": False},
    "jailbreak": {"filtered": False, "detected": False},
    "profanity": {"filtered": False, "detected": False},
}


def usage_dict(prompt: int, completion: int, framing: str = "openai") -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
    if framing == "novita":
        usage.update(prompt_tokens_details=None, completion_tokens_details=None)
    return usage


@dataclass
class Frame:
    """Shapes for one request of one provider's framing."""

    framing: str
    model: str  # the "model" field providers echo (their own model id)
    prompt_tokens: int
    rng: Any  # a random.Random for ids and token ids
    include_usage: bool = False
    created: int = field(default_factory=lambda: int(time.time()))
    id: str = ""

    def __post_init__(self) -> None:
        r = self.rng
        uid = str(uuid.UUID(int=r.getrandbits(128), version=4))
        self.id = {
            "tgi": "",
            "together": "%016x" % r.getrandbits(64),
            "fireworks": uid,
            "cerebras": "chatcmpl-" + uid,
            "novita": "chatcmpl-" + uid.replace("-", ""),
        }.get(self.framing, "chatcmpl-" + uid.replace("-", ""))
        self._fingerprint = "fp_%010x" % r.getrandbits(40)
        self._seed = r.getrandbits(63)

    # -- non-streamed ------------------------------------------------------------
    def completion(self, text: str, finish: str, completion_tokens: int) -> dict[str, Any]:
        f = self.framing
        usage = usage_dict(self.prompt_tokens, completion_tokens, f)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if f == "tgi":
            return {"object": "chat.completion", "id": "", "created": self.created, "model": self.model,
                    "system_fingerprint": "3.2.1-native",
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                    "usage": usage}
        if f == "together":
            message["tool_calls"] = []
            return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                    "prompt": [],
                    "choices": [{"finish_reason": finish, "seed": self._seed, "logprobs": None, "index": 0,
                                 "message": message}],
                    "usage": usage}
        if f == "fireworks":
            return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": usage["prompt_tokens"], "total_tokens": usage["total_tokens"],
                              "completion_tokens": usage["completion_tokens"]}}
        if f == "cerebras":
            return {"id": self.id, "choices": [{"finish_reason": finish, "index": 0,
                                                "message": {"content": text, "role": "assistant"}}],
                    "created": self.created, "model": self.model, "system_fingerprint": self._fingerprint,
                    "object": "chat.completion", "usage": usage, "time_info": self._time_info(completion_tokens)}
        if f == "novita":
            return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish,
                                 "content_filter_results": _CFR}],
                    "usage": usage, "system_fingerprint": ""}
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
                "usage": usage}

    def _time_info(self, completion_tokens: int) -> dict[str, Any]:
        return {"queue_time": 9.4e-05, "prompt_time": 0.0023, "completion_time": 0.001 * completion_tokens,
                "total_time": 0.0025 + 0.001 * completion_tokens, "created": self.created}

    # -- streamed ----------------------------------------------------------------
    def _chunk(self, choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        f = self.framing
        if f == "tgi":
            return {"object": "chat.completion.chunk", "id": "", "created": self.created, "model": self.model,
                    "system_fingerprint": "3.2.1-native", "choices": choices, **extra}
        if f == "cerebras":
            return {"id": self.id, "choices": choices, "created": self.created, "model": self.model,
                    "system_fingerprint": self._fingerprint, "object": "chat.completion.chunk", **extra}
        if f == "together":
            return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "choices": choices, "model": self.model, **extra}
        if f == "novita":
            return {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                    "model": self.model, "choices": choices, "system_fingerprint": "", **extra}
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": choices, **extra}

    def role_chunk(self) -> dict[str, Any] | None:
        """The role-only first chunk, or None for framings that start with content."""
        f = self.framing
        if f == "fireworks":
            return self._chunk([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}], usage=None)
        if f == "cerebras":
            return self._chunk([{"delta": {"role": "assistant"}, "index": 0}])
        if f == "novita":
            return self._chunk([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None,
                                 "content_filter_results": _CFR}],
                               usage=usage_dict(self.prompt_tokens, 0, "novita"))
        if f == "openai":
            extra = {"usage": None} if self.include_usage else {}
            return self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                 "finish_reason": None}], **extra)
        return None

    def content_chunk(self, token: str, index: int, total: int, finish: str) -> dict[str, Any]:
        """The chunk carrying token ``index`` (0-based) of ``total``."""
        f = self.framing
        last = index == total - 1
        done = index + 1
        if f == "tgi":
            fin = finish if last and finish == "length" else None
            usage = usage_dict(self.prompt_tokens, total) if last and fin and self.include_usage else None
            return self._chunk([{"index": 0, "delta": {"role": "assistant", "content": token}, "logprobs": None,
                                 "finish_reason": fin}], usage=usage)
        if f == "together":
            return self._chunk(
                [{"index": 0, "text": token, "logprobs": None, "finish_reason": finish if last else None,
                  "seed": self._seed if last else None,
                  "delta": {"token_id": self.rng.randint(200, 128000), "role": "assistant", "content": token,
                            "tool_calls": None}}],
                usage=usage_dict(self.prompt_tokens, total) if last else None)
        if f == "fireworks":
            return self._chunk([{"index": 0, "delta": {"content": token}, "finish_reason": None}], usage=None)
        if f == "cerebras":
            return self._chunk([{"delta": {"content": token}, "index": 0}])
        if f == "novita":
            return self._chunk([{"index": 0, "delta": {"content": token}, "finish_reason": finish if last else None,
                                 "content_filter_results": _CFR}],
                               usage=usage_dict(self.prompt_tokens, done, "novita"))
        extra = {"usage": None} if self.include_usage else {}
        return self._chunk([{"index": 0, "delta": {"content": token}, "logprobs": None,
                             "finish_reason": finish if last else None}], **extra)

    def tail_chunks(self, total: int, finish: str) -> list[dict[str, Any]]:
        """Chunks after the last token (finish markers, usage)."""
        f = self.framing
        usage = usage_dict(self.prompt_tokens, total)
        if f == "tgi":
            if finish == "length" and total > 0:
                return []
            # TGI sends the end-of-sequence token as an empty content with the finish reason
            return [self._chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                  "finish_reason": finish}], usage=usage if self.include_usage else None)]
        if f == "fireworks":
            return [self._chunk([{"index": 0, "delta": {}, "finish_reason": finish}], usage=usage)]
        if f == "cerebras":
            return [self._chunk([{"delta": {}, "finish_reason": finish, "index": 0}], usage=usage,
                                time_info=self._time_info(total))]
        if f == "openai" and self.include_usage:
            return [self._chunk([], usage=usage)]
        return []

    @property
    def ends_with_done(self) -> bool:
        return self.framing != "cerebras"
