"""Chat completions, validated, paced and framed per provider (router ``/v1`` and provider routes).

``validate_chat`` checks a body as strictly as the real services (OpenAI-style
errors, or TGI's plain-text 422 for hf-inference); ``serve_chat`` applies the
provider's scripted/random fault, then answers: a non-streamed completion after
one latency draw, or an SSE stream whose first content chunk leaves at TTFT and
the next ones ITL apart (absolute deadlines, ``PacingClock``), framed the way
that provider frames its streams (``framing.Frame``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..log import record_of
from ..text import count_prompt_tokens, generate_reply
from .common import apply_fault, openai_error
from .framing import Frame

if TYPE_CHECKING:
    from .server import HFSimulator

__all__ = ["ChatJob", "validate_chat", "serve_chat"]

_ROLES = ("system", "user", "assistant", "tool", "developer", "function")


@dataclass
class ChatJob:
    provider: str
    model_id: str  # the Hub model id
    provider_model: str  # the model field the provider echoes
    body: dict[str, Any]
    style: str  # "openai" (router /v1 and OpenAI-style providers) or "tgi"


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean `%s`" % str(value).lower()
    if isinstance(value, str):
        return "string %s" % json.dumps(value)
    if isinstance(value, (int, float)):
        return "integer `%s`" % value if isinstance(value, int) else "floating point `%s`" % value
    if value is None:
        return "null"
    return "map" if isinstance(value, dict) else "sequence"


def _column_after(raw: bytes, key: str) -> int:
    text = raw.decode("utf-8", "replace")
    at = text.find(json.dumps(key))
    if at < 0:
        return len(text)
    colon = text.find(":", at) + 1
    while colon < len(text) and text[colon] in " \t\r\n":
        colon += 1
    try:
        _, end = json.JSONDecoder().raw_decode(text, colon)
        return end
    except ValueError:
        return len(text)


def _tgi_422(message: str) -> web.Response:
    return web.Response(status=422, text="Failed to deserialize the JSON body into the target type: " + message,
                        content_type="text/plain")


def validate_chat(body: Any, raw: bytes, parse_error: str | None, style: str) -> web.Response | None:
    """None when ``body`` is a valid chat request, else the error the real service answers."""
    if style == "tgi":
        if parse_error is not None:
            return web.Response(status=400, text="Failed to parse the request body as JSON: " + parse_error,
                                content_type="text/plain")
        if not isinstance(body, dict):
            return _tgi_422(f"invalid type: {_json_type(body)}, expected struct ChatRequest at line 1 column {len(raw)}")
        if "messages" not in body:
            return _tgi_422(f"missing field `messages` at line 1 column {len(raw)}")
        msgs = body["messages"]
        if not isinstance(msgs, list):
            return _tgi_422(f"messages: invalid type: {_json_type(msgs)}, expected a sequence "
                            f"at line 1 column {_column_after(raw, 'messages')}")
        for m in msgs:
            if not isinstance(m, dict) or "role" not in m:
                return _tgi_422(f"messages: missing field `role` at line 1 column {_column_after(raw, 'messages')}")
        mt = body.get("max_tokens")
        if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 0):
            return _tgi_422(f"max_tokens: invalid value: {_json_type(mt)}, expected u32 "
                            f"at line 1 column {_column_after(raw, 'max_tokens')}")
        if mt == 0:
            return web.json_response({"error": "Input validation error: `max_new_tokens` must be strictly positive",
                                      "error_type": "validation"}, status=422)
        if not msgs:
            return web.json_response({"error": "Input validation error: `messages` must not be empty",
                                      "error_type": "validation"}, status=422)
        return None
    if parse_error is not None:
        return openai_error(400, f"Invalid JSON body: {parse_error}", code="invalid_json")
    if not isinstance(body, dict):
        return openai_error(400, "The request body must be a JSON object.")
    msgs = body.get("messages")
    if msgs is None:
        return openai_error(400, "Missing required parameter: 'messages'.", param="messages",
                            code="missing_required_parameter")
    if not isinstance(msgs, list) or not msgs:
        return openai_error(400, "Invalid 'messages': expected a non-empty array of message objects.",
                            param="messages", code="invalid_type")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            return openai_error(400, f"Invalid 'messages[{i}].role': expected one of {', '.join(_ROLES)}.",
                                param=f"messages[{i}].role", code="invalid_value")
        content = m.get("content")
        if content is not None and not isinstance(content, (str, list)):
            return openai_error(400, f"Invalid type for 'messages[{i}].content': expected a string or an array.",
                                param=f"messages[{i}].content", code="invalid_type")
    mt = body.get("max_tokens", body.get("max_completion_tokens"))
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
        return openai_error(400, f"Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, got {mt!r}.",
                            param="max_tokens", code="integer_below_min_value")
    temp = body.get("temperature")
    if temp is not None and (isinstance(temp, bool) or not isinstance(temp, (int, float)) or not 0 <= temp <= 2):
        return openai_error(400, f"Invalid 'temperature': expected a number between 0 and 2, got {temp!r}.",
                            param="temperature", code="decimal_above_max_value")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return openai_error(400, "Invalid type for 'stream': expected a boolean.", param="stream", code="invalid_type")
    n = body.get("n")
    if n is not None and n != 1:
        return openai_error(400, "Only n=1 is supported.", param="n", code="invalid_value")
    return None


def _sse(payload: Any) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {text}\n\n".encode("utf-8")


async def serve_chat(request: web.Request, sim: "HFSimulator", job: ChatJob) -> web.StreamResponse:
    """Answer one validated chat request as ``job.provider`` would."""
    rec = record_of(request)
    body = job.body
    stream = bool(body.get("stream"))
    messages = body["messages"]
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    prompt_tokens = count_prompt_tokens(messages)
    reply = generate_reply(sim.seed, job.model_id, messages, max_tokens=max_tokens)
    framing = sim.catalogue["providers"][job.provider].get("framing", "openai")
    opts = body.get("stream_options") if isinstance(body.get("stream_options"), dict) else {}
    frame = Frame(framing, job.provider_model, prompt_tokens, sim.controller.rng(job.provider, "ids"),
                  include_usage=bool(opts.get("include_usage")))
    if rec is not None:
        rec.provider, rec.model = job.provider, job.model_id
        rec.extra["stream"] = stream
        rec.tokens_in = prompt_tokens

    fault = sim.controller.next_fault(job.provider)
    if stream and fault.kind == "malformed":
        return await _malformed_stream(request, frame, fault)
    err_style = "openai" if job.style == "openai" else "hf"
    cut = frame.completion(reply.text, reply.finish_reason, reply.completion_tokens)
    answered = await apply_fault(request, fault, style=err_style, malformed_body=cut)
    if answered is not None:
        return answered
    if rec is not None:
        rec.tokens_out = reply.completion_tokens
    clock = sim.clock
    t0 = rec.t_start if rec is not None else clock.now()
    scale = sim.time_scale
    if not stream:
        latency = sim.controller.sample(job.provider, "latency") * scale
        if rec is not None:
            rec.extra["planned"] = {"latency_s": latency}
        await clock.pace_until(t0 + latency)
        payload = frame.completion(reply.text, reply.finish_reason, reply.completion_tokens)
        if rec is not None:
            rec.mark_first_content()
        return web.json_response(payload)
    return await _stream(request, sim, job, frame, reply, t0, scale)


async def _stream(request: web.Request, sim: "HFSimulator", job: ChatJob, frame: Frame, reply: Any,
                  t0: float, scale: float) -> web.StreamResponse:
    rec = record_of(request)
    ctl, clock = sim.controller, sim.clock
    ttft = ctl.sample(job.provider, "ttft") * scale
    tokens = list(reply.tokens)
    gaps = ctl.samples(job.provider, "itl", max(0, len(tokens) - 1))
    deadlines = [t0 + ttft]
    for gap in gaps:
        deadlines.append(deadlines[-1] + gap * scale)
    if rec is not None:
        mean_itl = (sum(gaps) / len(gaps) * scale) if gaps else None
        rec.extra["planned"] = {"ttft_s": ttft, "itl_mean_s": mean_itl, "deadlines": deadlines}
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8",
                                                   "Cache-Control": "no-cache"})
    await resp.prepare(request)
    role = frame.role_chunk()
    if role is not None:
        await clock.pace_until(t0 + ttft * ctl.behavior(job.provider).role_chunk_at)
        await resp.write(_sse(role))
    times: list[float] = []
    total = len(tokens)
    for i, token in enumerate(tokens):
        await clock.pace_until(deadlines[i])
        await resp.write(_sse(frame.content_chunk(token, i, total, reply.finish_reason)))
        now = clock.now()
        times.append(now)
        if rec is not None and rec.t_first_content is None:
            rec.t_first_content = now
    for chunk in frame.tail_chunks(total, reply.finish_reason):
        await resp.write(_sse(chunk))
    if frame.ends_with_done:
        await resp.write(b"data: [DONE]\n\n")
    if rec is not None:
        rec.extra["content_times"] = times
    await resp.write_eof()
    return resp


async def _malformed_stream(request: web.Request, frame: Frame, fault: Any) -> web.StreamResponse:
    """A 200 stream whose first event is JSON cut in half, then the connection ends."""
    rec = record_of(request)
    if rec is not None:
        rec.outcome = "fault:malformed"
        rec.extra["fault"] = fault.to_data()
    resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream; charset=utf-8"})
    await resp.prepare(request)
    whole = json.dumps(frame.content_chunk("Hello", 0, 2, "stop"), separators=(",", ":"))
    await resp.write(f"data: {whole[: len(whole) // 2]}\n\n".encode())
    await resp.write_eof()
    return resp
