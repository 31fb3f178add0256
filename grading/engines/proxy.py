"""A logging reverse proxy in front of a real server, and the OpenAI-protocol parts of its log.

``UpstreamProxy`` is a ``SimServer`` whose every request goes to ``self.forward(request)``, which a
subclass writes (grading/engines/vllm_local.py: real vLLM; grading/engines/ollama_live.py: the
student's own Ollama). It owns one aiohttp ``ClientSession`` to the upstream (no proxies from the
environment, no decompression, no total timeout: a stream lasts as long as it lasts). The request log
is the simulator's (grading/sims/log.py): the log middleware records arrival, status and end; the
helpers here fill what the response carried.

OpenAI-protocol helpers (vLLM's ``/v1`` and Ollama's ``/v1``): :func:`note_openai_request` (stream,
include_usage, max_tokens, messages), :func:`note_openai_body` (text, model, usage of a whole
answer) and :func:`relay_sse` (pass an SSE stream on event by event, logging text, usage and when
each content chunk went out).

Usage::

    class MyProxy(UpstreamProxy):
        upstream_url = "http://127.0.0.1:11434"
        async def forward(self, request):
            async with self.session().request(request.method, self.upstream_url + request.path_qs,
                                              data=await request.read(), headers=forward_headers(request)) as up:
                ...
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from ..sims.base import SimServer, sim_of

__all__ = ["UpstreamProxy", "HOP_HEADERS", "forward_headers", "note_openai_request", "note_openai_body",
           "note_usage", "relay_sse", "text_of"]

#: request headers not passed upstream (hop-by-hop ones, and Accept-Encoding: bodies are logged as sent)
HOP_HEADERS = frozenset({"host", "content-length", "connection", "keep-alive", "transfer-encoding", "upgrade",
                         "te", "trailer", "proxy-authorization", "proxy-connection", "accept-encoding"})


def forward_headers(request: web.BaseRequest) -> dict[str, str]:
    """The request's end-to-end headers, to send upstream."""
    return {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}


class UpstreamProxy(SimServer):
    """A ``SimServer`` that hands every request to :meth:`forward` (subclasses write it)."""

    _session: ClientSession | None = None

    async def forward(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def build_app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", _dispatch)
        app.on_cleanup.append(self._close_session)
        return app

    def session(self) -> ClientSession:
        """The client session to the upstream (made on first use, on the server's loop)."""
        if self._session is None or self._session.closed:
            self._session = ClientSession(connector=TCPConnector(limit=0), trust_env=False,
                                          timeout=ClientTimeout(total=None, sock_connect=10), auto_decompress=False)
        return self._session

    async def _close_session(self, app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()


async def _dispatch(request: web.Request) -> web.StreamResponse:
    proxy: UpstreamProxy = sim_of(request)
    return await proxy.forward(request)


# -- the OpenAI protocol ------------------------------------------------------------------------------
def note_openai_request(rec: Any, body: Any) -> tuple[bool, bool]:
    """Fill the record from a completions request; (stream, whether usage must be asked for upstream)."""
    if not isinstance(body, dict):
        return False, False
    stream = body.get("stream") is True
    so = body.get("stream_options")
    usage = stream and isinstance(so, dict) and so.get("include_usage", True) is not False
    rec.extra.update(stream=stream, include_usage=bool(usage),
                     max_tokens=body.get("max_completion_tokens", body.get("max_tokens")),
                     n=body.get("n", 1), temperature=body.get("temperature"))
    if "messages" in body:
        rec.extra["messages"] = body.get("messages")
    if "prompt" in body:
        rec.extra["prompt"] = body.get("prompt")
    return stream, stream and not usage and (so is None or isinstance(so, dict))


def with_usage(body: dict[str, Any]) -> bytes:
    """The request body, asking for the usage chunk of a stream."""
    so = dict(body.get("stream_options") or {})
    so["include_usage"] = True
    return json.dumps({**body, "stream_options": so}).encode()


def text_of(choice: dict[str, Any], *, delta: bool) -> str:
    """The text of one choice (chat message or delta, or a completion's ``text``)."""
    if "text" in choice:
        return choice.get("text") or ""
    part = choice.get("delta" if delta else "message") or {}
    return (part.get("content") or "") if isinstance(part, dict) else ""


def note_usage(rec: Any, usage: Any) -> None:
    if isinstance(usage, dict):
        rec.tokens_in = usage.get("prompt_tokens", rec.tokens_in)
        rec.tokens_out = usage.get("completion_tokens", rec.tokens_out)


def note_openai_body(rec: Any, obj: Any, status: int) -> None:
    """Fill the record from a whole (not streamed) answer: text, model, usage, or the error."""
    if not isinstance(obj, dict):
        return
    if status >= 400 and isinstance(obj.get("error"), dict):
        rec.extra["error"] = obj["error"]
        return
    if "choices" in obj:
        choices = [c for c in obj.get("choices") or [] if isinstance(c, dict)]
        texts = [text_of(c, delta=False) for c in choices]
        rec.model = obj.get("model")
        rec.extra.update(text=texts[0] if texts else "", texts=texts, served_model=obj.get("model"),
                         finish_reason=choices[0].get("finish_reason") if choices else None)
        note_usage(rec, obj.get("usage"))


def json_of(data: bytes) -> Any:
    """The parsed JSON of a body, None when it is not JSON."""
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


async def relay_sse(request: web.Request, rec: Any, up: Any, headers: dict[str, str], *,
                    drop_usage: bool) -> web.StreamResponse:
    """Pass an SSE stream on event by event (the usage-only chunk dropped when ``drop_usage``), logging
    the text, the usage and ``extra.content_times`` (when each chunk with content went out)."""
    resp = web.StreamResponse(status=up.status, headers=headers)
    await resp.prepare(request)
    texts: dict[int, str] = {}
    content_times: list[float] = []
    pending, done = b"", False
    async for piece in up.content.iter_any():
        pending += piece
        while b"\n\n" in pending and not done:
            event, pending = pending.split(b"\n\n", 1)
            event += b"\n\n"
            has_content, is_usage = _scan_event(rec, event, texts)
            if is_usage and drop_usage:
                continue
            done = event.strip() == b"data: [DONE]"
            if rec is not None:
                rec.extra.update(content_times=content_times, text=texts.get(0, ""),
                                 texts=[texts[i] for i in sorted(texts)])
            await resp.write(event)
            if has_content:
                content_times.append(time.monotonic())
                if rec is not None:
                    rec.mark_first_content()
        if done:
            break   # end the answer now, as the servers do: a client may hang up as soon as it has read [DONE]
    if pending and not done:
        await resp.write(pending)
    try:
        await resp.write_eof()
    except ConnectionError:
        if not done:
            raise
    return resp


def _scan_event(rec: Any, event: bytes, texts: dict[int, str]) -> tuple[bool, bool]:
    """(whether this SSE event carries content, whether it is the usage-only chunk)."""
    line = event.strip()
    if not line.startswith(b"data:") or line == b"data: [DONE]":
        return False, False
    try:
        obj = json.loads(line[5:])
    except ValueError:
        return False, False
    if not isinstance(obj, dict):
        return False, False
    choices = [c for c in obj.get("choices") or [] if isinstance(c, dict)]
    content = False
    for c in choices:
        piece = text_of(c, delta=True)
        if piece:
            content = True
            idx = int(c.get("index", 0))
            texts[idx] = texts.get(idx, "") + piece
        if rec is not None and c.get("finish_reason") and int(c.get("index", 0)) == 0:
            rec.extra["finish_reason"] = c["finish_reason"]
    if rec is not None:
        if obj.get("model"):
            rec.model = rec.extra["served_model"] = obj["model"]
        if isinstance(obj.get("error"), dict):
            rec.extra["error"] = obj["error"]
        note_usage(rec, obj.get("usage"))
    return content, (not choices and "usage" in obj)
