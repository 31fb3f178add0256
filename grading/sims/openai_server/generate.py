"""``/v1/chat/completions`` and ``/v1/completions``: validation, pacing, framing, the request log.

Framing (vLLM's serving_chat.py / serving_completion.py; DESIGN.md "Facts checked"): a streamed chat
sends, when its first token is ready, a role chunk ``{"role": "assistant", "content": ""}`` per choice,
then one chunk per token (``finish_reason`` on the last content chunk, with ``stop_reason``), then -
with ``stream_options.include_usage`` (vLLM's default once stream_options is given) - a chunk with
``choices: []`` and ``usage``, then ``data: [DONE]``. Completions stream the same way without the role
chunk. Validation errors are JSON answers even when ``stream`` is true.

Logged per request (``RequestRecord``): ``model`` (served name), ``tokens_in``/``tokens_out`` (what
usage reports), ``t_first_content`` (the first content chunk written; for a non-streamed answer, when
the body goes out), and ``extra``: route, stream, include_usage, max_tokens (as sent), n, temperature,
messages/prompt, text (choice 0), texts, finish_reason, token_times (when each token was generated),
content_times (when each content chunk was written: streams only), served_model.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..base import sim_of
from ..log import record_of
from ..text import count_prompt_tokens, message_text
from .protocol import (check_context, check_sampling, coerce, json_answer, model_not_found, read_body, schema_error,
                       vllm_error)
from .replies import chat_reply, completion_prompt_tokens, completion_reply

if TYPE_CHECKING:
    from .server import VLLMServer

__all__ = ["handle_chat", "handle_completions"]


@dataclass
class _Choice:
    index: int
    tokens: tuple[str, ...]
    finish_reason: str
    prompt_tokens: int


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def _common(data: dict[str, Any]) -> dict[str, Any]:
    out = {
        "model": coerce(data, "model", "str"),
        "max_tokens": coerce(data, "max_tokens", "int"),
        "max_completion_tokens": coerce(data, "max_completion_tokens", "int"),
        "temperature": coerce(data, "temperature", "float"),
        "top_p": coerce(data, "top_p", "float"),
        "n": coerce(data, "n", "int"),
        "stream": bool(coerce(data, "stream", "bool")),
        "stream_options": coerce(data, "stream_options", "dict"),
    }
    so = out["stream_options"]
    if so and not out["stream"]:
        raise vllm_error("Stream options can only be defined when `stream=True`.", parameter="stream_options")
    out["include_usage"] = bool(out["stream"] and so is not None and so.get("include_usage", True))
    out["continuous_usage"] = bool(out["include_usage"] and so and so.get("continuous_usage_stats"))
    out["n"] = 1 if out["n"] is None else out["n"]
    if out["max_completion_tokens"] is not None:
        out["max_tokens"] = out["max_completion_tokens"]
    return out


def _resolve_model(server: "VLLMServer", name: str | None) -> str:
    names = server.model.served_model_names
    if name is None:
        return names[0]
    if name not in names:
        raise model_not_found(name, names)
    return name


def _usage(prompt: int, completion: int, *, details: bool = True) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": prompt, "total_tokens": prompt + completion,
                             "completion_tokens": completion}
    if details:
        usage.update(prompt_tokens_details=None, completion_tokens_details=None)
    return usage


async def handle_chat(request: web.Request) -> web.StreamResponse:
    server: VLLMServer = sim_of(request)
    data = await read_body(request)
    messages = coerce(data, "messages", "list", required=True)
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise schema_error("dict_type", ("body", "messages", i), m)
        if "role" not in m:
            raise schema_error("missing", ("body", "messages", i, "role"), m)
    opts = _common(data)
    model = _resolve_model(server, opts["model"])
    plain = [{"role": m.get("role"), "content": message_text(m.get("content"))} for m in messages]
    n_prompt = count_prompt_tokens(plain)
    check_sampling(opts["temperature"], opts["top_p"], opts["max_tokens"], opts["n"])
    max_tokens = check_context(n_prompt, opts["max_tokens"], server.model.max_model_len)
    choices = []
    for i in range(opts["n"]):
        reply = chat_reply(server.seed, model, plain, max_tokens, i)
        choices.append(_Choice(i, reply.tokens, reply.finish_reason, n_prompt))
    return await _run(request, server, model, opts, choices, n_prompt, chat=True,
                      note={"messages": plain, "route": "v1-chat"})


async def handle_completions(request: web.Request) -> web.StreamResponse:
    server: VLLMServer = sim_of(request)
    data = await read_body(request)
    raw = data.get("prompt")
    if "prompt" not in data or raw is None or raw == "" or raw == []:
        raise vllm_error("Either prompt or prompt_embeds must be provided and non-empty.", parameter="prompt")
    if isinstance(raw, str):
        prompts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(p, str) for p in raw):
        prompts = list(raw)
    else:
        raise schema_error("string_type", ("body", "prompt", "str"), raw)
    opts = _common(data)
    model = _resolve_model(server, opts["model"])
    counts = [completion_prompt_tokens(p) for p in prompts]
    check_sampling(opts["temperature"], opts["top_p"], opts["max_tokens"], opts["n"])
    limits = [check_context(c, opts["max_tokens"], server.model.max_model_len) for c in counts]
    choices = []
    for prompt, count, limit in zip(prompts, counts, limits):
        for j in range(opts["n"]):
            reply = completion_reply(server.seed, model, prompt, limit, j)
            choices.append(_Choice(len(choices), reply.tokens, reply.finish_reason, count))
    note = {"prompt": raw, "route": "v1-completions"}
    return await _run(request, server, model, opts, choices, sum(counts), chat=False, note=note)


async def _run(request: web.Request, server: "VLLMServer", model: str, opts: dict[str, Any], choices: list[_Choice],
               n_prompt: int, *, chat: bool, note: dict[str, Any]) -> web.StreamResponse:
    rec = record_of(request)
    t0 = rec.t_start if rec is not None else time.monotonic()
    stream = opts["stream"]
    ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex}"
    created = int(time.time())
    obj = ("chat.completion.chunk" if stream else "chat.completion") if chat else "text_completion"
    base = {"id": ident, "object": obj, "created": created, "model": model}
    if rec is not None:
        rec.model = model
        rec.tokens_in = n_prompt
        rec.extra.update(note, stream=stream, include_usage=opts["include_usage"], max_tokens=opts["max_tokens"],
                         n=opts["n"], temperature=opts["temperature"], served_model=model)
    token_times: list[float] = []
    content_times: list[float] = []
    done = [0] * len(choices)
    resp: web.StreamResponse | None = None
    steps = max((len(c.tokens) for c in choices), default=0)
    final_idx = max((c.index for c in choices if len(c.tokens) == steps), default=-1)
    fingerprint = fingerprint_of(server)
    async with server.engine.admit(t0) as seq:
        per_chunk = server.model.tokens_per_chunk
        for step in range(steps):
            wrote = False
            await seq.next_token()
            token_times.append(time.monotonic())
            if stream and resp is None:
                resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8"})
                await resp.prepare(request)
                if chat:
                    for c in choices:
                        await resp.write(_sse({**base, "choices": [
                            {"index": c.index, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                             "finish_reason": None}], "prompt_token_ids": None, "prompt_text": None}))
            for c in choices:
                if step >= len(c.tokens):
                    continue
                done[c.index] += 1
                if not stream:
                    continue
                last = step == len(c.tokens) - 1
                if not last and done[c.index] % per_chunk:
                    continue  # this token goes out with the next chunk
                piece = "".join(c.tokens[step + 1 - (done[c.index] - 1) % per_chunk - 1: step + 1])
                if chat:
                    choice: dict[str, Any] = {"index": c.index, "delta": {"content": piece}, "logprobs": None,
                                              "finish_reason": c.finish_reason if last else None}
                    if last:
                        choice["stop_reason"] = None
                    choice["token_ids"] = None
                else:
                    choice = {"index": c.index, "text": piece, "logprobs": None,
                              "finish_reason": c.finish_reason if last else None, "stop_reason": None,
                              "prompt_token_ids": None, "token_ids": None}
                chunk: dict[str, Any] = {**base, "choices": [choice]}
                if opts["continuous_usage"]:
                    chunk["usage"] = _usage(c.prompt_tokens, done[c.index], details=False)
                if last and c.index == final_idx and not opts["include_usage"]:
                    chunk["system_fingerprint"] = fingerprint   # vLLM's last chunk before [DONE] carries it
                assert resp is not None
                await resp.write(_sse(chunk))
                if rec is not None:
                    rec.mark_first_content()
                wrote = True
            if stream and wrote:
                content_times.append(time.monotonic())
    completion = sum(len(c.tokens) for c in choices)
    texts = ["".join(c.tokens) for c in choices]
    if rec is not None:
        rec.tokens_out = completion
        rec.extra.update(text=texts[0] if texts else "", texts=texts, token_times=token_times,
                         finish_reason=choices[0].finish_reason if choices else None)
        if stream:
            rec.extra["content_times"] = content_times
    server.metrics.request_done(prompt_tokens=n_prompt, generation_tokens=completion,
                                finish_reason=choices[0].finish_reason if choices else "stop",
                                t_start=t0, content_times=token_times, t_end=time.monotonic())
    if not stream:
        body = {**base, "choices": [_full_choice(c, chat) for c in choices], "service_tier": None,
                "system_fingerprint": fingerprint, "usage": _usage(n_prompt, completion)}
        if chat:
            body.update(prompt_logprobs=None, prompt_token_ids=None, prompt_text=None)
        body.update(kv_transfer_params=None, ec_transfer_params=None, metrics=None)
        if rec is not None:
            rec.mark_first_content()
        return json_answer(body)
    assert resp is not None
    if opts["include_usage"]:
        await resp.write(_sse({**base, "choices": [], "usage": _usage(n_prompt, completion, details=False),
                               "system_fingerprint": fingerprint}))
    await resp.write(b"data: [DONE]\n\n")
    await resp.write_eof()
    return resp


def _full_choice(c: _Choice, chat: bool) -> dict[str, Any]:
    text = "".join(c.tokens)
    if chat:
        message = {"role": "assistant", "content": text, "refusal": None, "annotations": None, "audio": None,
                   "function_call": None, "reasoning": None}
        return {"index": c.index, "message": message, "logprobs": None, "finish_reason": c.finish_reason,
                "stop_reason": None, "token_ids": None, "routed_experts": None}
    return {"index": c.index, "text": text, "logprobs": None, "finish_reason": c.finish_reason, "stop_reason": None,
            "token_ids": None, "prompt_logprobs": None, "prompt_token_ids": None, "routed_experts": None}


def fingerprint_of(server: Any) -> str:
    """``system_fingerprint``: ``vllm-<version>-<8 hex>`` (a hash of the engine's configuration in vLLM)."""
    return f"vllm-{server.version}-{(int(server.seed) * 2654435761) & 0xFFFFFFFF:08x}"
