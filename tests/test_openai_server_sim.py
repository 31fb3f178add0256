"""Contract tests of the vLLM-style OpenAI server (tier sim) and the worker's stand-in ``vllm``.

The real ``openai`` client against every route; raw shapes against tests/fixtures/vllm_shapes/ (same
keys, same JSON types as vLLM 0.32.0; stream chunks with exactly the same keys); the SSE framing (role
chunk first, ``finish_reason`` on the last content chunk, the usage chunk with ``choices: []``, then
``[DONE]``); vLLM's error bodies and statuses; pacing and continuous batching against the configured
truth; the request log; ``/metrics``; the ``vllm serve`` parser.
"""

from __future__ import annotations

import importlib
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from grading.sims.openai_server import create
from grading.sims.openai_server.replies import completion_reply
from grading.sims.openai_server.serve_args import ServeCommandError, faithful_parser, parse_serve_command
from grading.sims.openai_server.server import STANDIN_DIR
from grading.sims.text import tokenize
import json_shapes

SHAPES = Path(__file__).parent / "fixtures" / "vllm_shapes"
MESSAGES = [{"role": "user", "content": "Why does continuous batching raise throughput?"}]


def shape(name: str) -> Any:
    return json.loads((SHAPES / name).read_text())


def same_shape(got: Any, want: Any, *, exact: bool = False) -> None:
    """vLLM's shapes: every key with its JSON type; a list is empty exactly where the recording's is."""
    json_shapes.same_shape(got, want, exact=exact, lists_match=True)


@pytest.fixture(scope="module")
def server():
    srv = create(tier="sim", seed=11).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def fast(server):
    server.reset()
    server.time_scale = 1.0
    server.set_behavior(ttft_s=0.02, itl_s=0.002)
    yield
    server.reset()


def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="EMPTY", max_retries=0)


def sse_events(server, path: str, body: dict) -> list[Any]:
    events = []
    with httpx.stream("POST", server.url + path, json=body, timeout=10) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read().decode()
    assert raw.endswith("data: [DONE]\n\n"), raw[-80:]
    for block in raw.split("\n\n"):
        if block:
            assert block.startswith("data: "), block
            data = block[len("data: "):]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


# -- streaming -------------------------------------------------------------------------------------
def test_chat_stream_with_openai_client(server):
    with client(server) as c:
        stream = c.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=7, stream=True,
                                           stream_options={"include_usage": True})
        chunks = list(stream)
    first, *middle, last = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == ""
    content = [ch for ch in middle if ch.choices]
    assert [ch.choices[0].finish_reason for ch in content] == [None] * 6 + ["length"]
    assert last.choices == [] and last.usage.completion_tokens == 7
    rec = server.log.records(path="/v1/chat/completions")[-1]
    assert "".join(ch.choices[0].delta.content for ch in content) == rec.extra["text"]
    assert last.usage.prompt_tokens == rec.tokens_in and rec.tokens_out == 7
    assert len(rec.extra["content_times"]) == 7 and rec.t_first_content == pytest.approx(
        rec.extra["content_times"][0], abs=0.01)


def test_chat_stream_framing_matches_vllm(server):
    events = sse_events(server, "/v1/chat/completions", {"model": "smollm2", "messages": MESSAGES, "max_tokens": 2,
                                                         "stream": True, "stream_options": {"include_usage": True}})
    want = shape("chat_stream.json")["events"]
    assert len(events) == len(want) and events[-1] == "[DONE]"
    for got, exp in zip(events[:-1], want[:-1]):
        same_shape(got, exp, exact=True)
    assert len({e["id"] for e in events[:-1]}) == 1


def test_stream_without_usage_and_completion_stream(server):
    events = sse_events(server, "/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 3, "stream": True})
    assert all(e == "[DONE]" or e["choices"] for e in events), "no usage chunk unless stream_options asks"
    assert all("usage" not in e for e in events if e != "[DONE]")
    events = sse_events(server, "/v1/completions", {"model": "smollm2", "prompt": "The cost of", "max_tokens": 2,
                                                    "stream": True, "stream_options": {"include_usage": True}})
    want = shape("completion_stream.json")["events"]
    assert len(events) == len(want)
    for got, exp in zip(events[:-1], want[:-1]):
        same_shape(got, exp, exact=True)


# -- non-streamed ----------------------------------------------------------------------------------
def test_chat_and_completion_shapes(server):
    with client(server) as c:
        chat = c.chat.completions.create(model="smollm2", messages=MESSAGES, max_tokens=5)
        comp = c.completions.create(model="smollm2", prompt="Serving costs are", max_tokens=4)
    rec_chat, rec_comp = server.log.records(path="/v1/chat/completions")[-1], server.log.records(path="/v1/completions")[-1]
    assert chat.choices[0].message.content == rec_chat.extra["text"] and chat.usage.completion_tokens == 5
    assert comp.choices[0].text == completion_reply(11, "smollm2", "Serving costs are", 4).text
    assert comp.usage.prompt_tokens == rec_comp.tokens_in == len(tokenize("Serving costs are"))
    raw = httpx.post(server.url + "/v1/chat/completions", json={"messages": MESSAGES, "max_tokens": 3}).json()
    same_shape(raw, shape("chat_response.json"), exact=True)
    raw = httpx.post(server.url + "/v1/completions", json={"prompt": "x y", "max_tokens": 3}).json()
    same_shape(raw, shape("completion_response.json"), exact=True)


def test_other_routes(server):
    health = httpx.get(server.url + "/health")
    assert health.status_code == 200 and health.content == b""
    same_shape(httpx.get(server.url + "/version").json(), shape("version.json"), exact=True)
    models = httpx.get(server.url + "/v1/models").json()
    same_shape(models, shape("models.json"), exact=True)
    assert models["data"][0]["id"] == "smollm2" and models["data"][0]["max_model_len"] == 2048
    with client(server) as c:
        assert [m.id for m in c.models.list()] == ["smollm2"]
    tok = httpx.post(server.url + "/tokenize", json={"prompt": "Hello there, world"}).json()
    same_shape(tok, shape("tokenize.json"), exact=True)
    assert tok["count"] == 4
    back = httpx.post(server.url + "/detokenize", json={"tokens": tok["tokens"]}).json()
    assert back == {"prompt": "Hello there, world"}


def test_metrics_reflect_traffic(server):
    before = httpx.get(server.url + "/metrics").text
    httpx.post(server.url + "/v1/completions", json={"prompt": "a b c", "max_tokens": 5})
    text = httpx.get(server.url + "/metrics").text

    def value(body: str, name: str) -> float:
        line = next(ln for ln in body.splitlines() if ln.startswith(name + "{"))
        return float(line.rsplit(" ", 1)[1])

    assert value(text, "vllm:generation_tokens_total") - value(before, "vllm:generation_tokens_total") == 5
    assert value(text, "vllm:prompt_tokens_total") - value(before, "vllm:prompt_tokens_total") == 3
    for name in ("vllm:time_to_first_token_seconds_count", "vllm:e2e_request_latency_seconds_count"):
        assert value(text, name) == value(before, name) + 1
    assert "# TYPE vllm:inter_token_latency_seconds histogram" in text


# -- errors ----------------------------------------------------------------------------------------
RECORDED_ERRORS = {k: v for k, v in shape("errors.json").items() if not k.startswith("_") and "body" in v.get("request", {})}


@pytest.mark.parametrize("case", sorted(RECORDED_ERRORS))
@pytest.mark.parametrize("stream", [False, True])
def test_error_bodies(server, case, stream):
    """The requests recorded from a real vLLM 0.32.0 (errors.json), replayed at its max_model_len."""
    want = RECORDED_ERRORS[case]
    if stream and case == "stream_options_without_stream":
        pytest.skip("that request is only malformed without stream")
    server.set_behavior(max_model_len=shape("errors.json")["_max_model_len"])
    body = {**want["request"]["body"], **({"stream": True} if stream else {})}
    resp = httpx.post(server.url + want["request"]["path"], json=body)
    assert resp.status_code == want["status"] and resp.headers["content-type"] == "application/json"
    got = resp.json()
    same_shape(got, want["body"], exact=True)
    for key in ("type", "param", "code", "message"):
        if key == "message" and case == "missing_messages" and stream:
            continue   # the message shows the body's size: one key more than recorded
        assert got["error"][key] == want["body"]["error"][key], (case, key, got)


def test_prompt_plus_output_over_context_is_clamped(server):
    """Recorded from vLLM 0.32.0: prompt + max_tokens past the context is not refused; it stops there."""
    server.set_behavior(max_model_len=64)
    resp = httpx.post(server.url + "/v1/completions", json={"prompt": "a " * 50, "max_tokens": 40})
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"] == {"prompt_tokens": 50, "total_tokens": 64, "completion_tokens": 14,
                                    "prompt_tokens_details": None, "completion_tokens_details": None}
    assert resp.json()["choices"][0]["finish_reason"] == "length"


def test_routes_and_methods_and_bad_json(server):
    errors = shape("errors.json")
    resp = httpx.get(server.url + "/v1/nothing")
    assert (resp.status_code, resp.json()) == (404, errors["unknown_route"]["body"])
    resp = httpx.get(server.url + "/v1/chat/completions")
    assert (resp.status_code, resp.json()) == (405, errors["wrong_method"]["body"])
    resp = httpx.post(server.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "Bad Request"
    resp = httpx.post(server.url + "/v1/chat/completions", json={"messages": MESSAGES, "stream_options": {"include_usage": True}})
    assert resp.status_code == 400 and resp.json()["error"]["param"] == "stream_options"


def test_openai_client_raises_vllm_errors(server):
    with client(server) as c:
        with pytest.raises(openai.NotFoundError) as exc:
            c.chat.completions.create(model="nope", messages=MESSAGES)
        assert exc.value.body["param"] == "model"
        with pytest.raises(openai.BadRequestError) as exc:
            c.completions.create(model="smollm2", prompt="x", max_tokens=0)
        assert exc.value.body["type"] == "BadRequestError"


# -- pacing and batching (the truth the throughput checkpoint judges against) --------------------------
def test_pacing_matches_configuration(server):
    server.set_behavior(ttft_s=0.15, itl_s=0.02)
    httpx.post(server.url + "/v1/chat/completions", json={"messages": MESSAGES, "max_tokens": 20, "stream": True})
    rec = server.log.records(path="/v1/chat/completions")[-1]
    times = rec.extra["content_times"]
    assert 0.15 <= times[0] - rec.t_start <= 0.15 + 0.03
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert statistics.median(gaps) == pytest.approx(0.02, abs=0.004)
    assert times[-1] - times[0] == pytest.approx(19 * 0.02, abs=0.03)   # absolute deadlines: no drift
    assert server.truth()["itl_s"] == pytest.approx(0.02)


def _burst(server, concurrency: int, max_tokens: int) -> tuple[float, list]:
    t0 = time.monotonic()
    threads = [threading.Thread(target=httpx.post, args=(server.url + "/v1/completions",),
                                kwargs={"json": {"prompt": f"p{i}", "max_tokens": max_tokens}, "timeout": 30})
               for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    return wall, [r for r in server.log.records(path="/v1/completions") if r.t_start >= t0]


def test_continuous_batching(server):
    server.set_behavior(ttft_s=0.05, itl_s=0.02, batch_size=4)
    wall1, recs1 = _burst(server, 1, 20)
    wall4, recs4 = _burst(server, 4, 20)
    wall8, recs8 = _burst(server, 8, 20)
    tps = {c: sum(r.tokens_out for r in recs) / w for c, recs, w in ((1, recs1, wall1), (4, recs4, wall4),
                                                                        (8, recs8, wall8))}
    assert tps[4] > 3 * tps[1], tps                      # within the batch: throughput grows with concurrency
    assert tps[8] < 1.4 * tps[4], tps                    # beyond it: it levels off ...
    e2e4 = statistics.mean(r.duration_s for r in recs4)
    e2e8 = statistics.mean(r.duration_s for r in recs8)
    assert e2e8 > 1.6 * e2e4, (e2e4, e2e8)               # ... and latency grows
    assert server.engine.peak_running >= 8 and server.engine.running == 0


# -- the stand-in vllm module -----------------------------------------------------------------------
def test_standin_vllm(monkeypatch, tmp_path):
    record = tmp_path / "record.json"
    monkeypatch.setenv("INFERGRADE_VLLM_STANDIN_RECORD", str(record))
    monkeypatch.setenv("INFERGRADE_VLLM_STANDIN_SEED", "11")
    monkeypatch.syspath_prepend(str(STANDIN_DIR))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    vllm = importlib.import_module("vllm")
    try:
        assert vllm.STANDIN and vllm.__file__.startswith(str(STANDIN_DIR))
        llm = vllm.LLM(model="m", dtype="float32", enforce_eager=True)
        prompts = [f"prompt {i}" for i in range(12)]
        outs = llm.generate(prompts, vllm.SamplingParams(max_tokens=5, temperature=0.0))
        assert [o.request_id for o in outs] == [str(i) for i in range(12)]
        assert [o.prompt for o in outs] == prompts
        assert [o.outputs[0].text for o in outs] == [completion_reply(11, "m", p, 5).text for p in prompts]
        assert all(o.outputs[0].finish_reason == "length" for o in outs)
        data = json.loads(record.read_text())
        (eng,) = data["engines"]
        assert eng["engine_args"] == {"dtype": "float32", "enforce_eager": True}
        assert eng["calls"][0]["prompts"] == prompts and eng["calls"][0]["sampling_params"][0]["max_tokens"] == 5
        assert llm.generate("again")[0].request_id == "12"
        with pytest.raises(TypeError):
            vllm.LLM(model="m", no_such_arg=1)
        with pytest.raises(ValueError, match="greedy"):
            vllm.SamplingParams(n=2, temperature=0.0)
    finally:
        sys.modules.pop("vllm", None)


# -- the serve command parser ------------------------------------------------------------------------
def test_serve_parser():
    p = parse_serve_command(["vllm", "serve", "org/m", "--host", "0.0.0.0", "--port", "8123", "--served-model-name",
                             "a", "b", "--max-model-len", "2k", "--gpu-memory-utilization", "0.5", "--dtype",
                             "float32", "--enforce-eager"], use_vllm=False)
    assert (p.model, p.host, p.port, p.served_model_name, p.max_model_len) == ("org/m", "0.0.0.0", 8123, ["a", "b"], 2000)
    assert p.enforce_eager and p.dtype == "float32" and p.gpu_memory_utilization == 0.5 and p.parser == "faithful"
    p = parse_serve_command([sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", "org/m"],
                            use_vllm=False)
    assert (p.model, p.port, p.served_model_name) == ("org/m", 8000, None)
    for bad in (["vllm", "serve"], ["vllm", "serve", "m", "--port", "x"], ["vllm", "serve", "m", "--bogus"],
                ["ollama", "serve"], "vllm serve m"):
        with pytest.raises(ServeCommandError):
            parse_serve_command(bad, use_vllm=False)
    assert faithful_parser().parse_args(["m"]).port == 8000


def test_serve_parser_agrees_with_vllm_when_installed():
    from grading.sims.openai_server.serve_args import _vllm_parser

    if _vllm_parser() is None:
        pytest.skip("vllm (with its `vllm serve` argument parser) is not installed here")
    argv = ["vllm", "serve", "org/m", "--port", "8123", "--served-model-name", "a", "--max-model-len", "1024"]
    ours, theirs = parse_serve_command(argv, use_vllm=False), parse_serve_command(argv)
    assert theirs.parser == "vllm"
    for key in ("model", "port", "served_model_name", "max_model_len"):
        assert getattr(ours, key) == getattr(theirs, key)


def test_serve_vllm_context_length(monkeypatch):
    """`serve vllm --max-model-len N` serves that context (sim here; tier local hands it to `vllm serve`)."""
    import subprocess
    import sys

    import httpx

    from grading import services as services_module
    from grading.context import REPO_ROOT

    proc = subprocess.Popen([sys.executable, "-m", "grading", "serve", "vllm", "--port", "0", "--seed", "2",
                             "--max-model-len", "777"], cwd=REPO_ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split(" listening on ")[1].strip()
        cards = httpx.get(url + "/v1/models", timeout=10).json()["data"]
        assert {card["max_model_len"] for card in cards} == {777}, cards
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    wrong = subprocess.run([sys.executable, "-m", "grading", "serve", "ollama", "--max-model-len", "9"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--max-model-len is for vllm" in wrong.stderr

    seen = {}

    class _Started:
        def start(self):
            return self

        def stop(self):
            pass

    def factory(**kwargs):
        seen.update(kwargs)
        return _Started()

    monkeypatch.setattr(services_module, "load_factory", lambda name: factory)
    services_module.start_services("local", 1, ["vllm"], options={"vllm": {"max_model_len": 1024}}).stop()
    assert seen["max_model_len"] == 1024 and seen["tier"] == "local"
