"""Tier ``live`` of the ``ollama`` service: the grader's logging proxy in front of a real Ollama.

The "real Ollama" here is the grader's own simulator on a free loopback port, named by
``INFERGRADE_OLLAMA_UPSTREAM`` as a student's would be:

* contract: the official ``ollama`` client and the ``openai`` client get the same answers through the
  proxy as straight from the server (shapes, texts, streams chunk by chunk, errors);
* the proxy's log holds what the server really did (its token counts and durations, when content went
  out), the fields the ``ollama`` and ``throughput`` checkpoints read;
* grading ``reference/`` in tier live scores full points on the checks that run, the one it cannot
  judge skips saying why; ``student_template/`` scores 0; with no Ollama answering, the checks skip
  with the reason;
* ``serve ollama`` on a port another server holds says so and suggests ``--port``.
"""

from __future__ import annotations

import argparse
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from grading.commands import serve
from grading.commands.grade import run_checkpoints
from grading.context import REPO_ROOT
from grading.engines.ollama_live import MODEL_ENV, PULL_ENV, UPSTREAM_ENV, create_live
from grading.services import ServiceNotAvailable, start_services
from grading.sims.ollama import create

MODEL, MISSING = "smollm2:135m", "qwen2.5:0.5b"
SEED = 5
#: keys whose values differ between two answers to the same request (clocks, ids, timings)
VOLATILE = {"created_at", "modified_at", "expires_at", "created", "id", "total_duration", "load_duration",
            "prompt_eval_duration", "eval_duration"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stable(value: Any) -> Any:
    """``value`` without its volatile fields (timings, clocks, ids), whose types are kept instead."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if isinstance(value, dict):
        return {k: (type(v).__name__ if k in VOLATILE else stable(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


@pytest.fixture(scope="module")
def upstream():
    server = create(tier="sim", seed=SEED).start()
    yield server
    server.stop()


@pytest.fixture
def fresh(upstream):
    """The upstream with its catalogue models, none loaded and an empty log; reset again after the test."""
    upstream.reset()
    upstream.log.clear()
    yield upstream
    upstream.reset()


@pytest.fixture
def proxy(fresh):
    svc = create_live(seed=SEED, upstream=fresh.url, pull_model=MISSING).start()
    yield svc
    svc.stop()


def both(fresh, proxy, call):
    """``call(client)`` straight to the server, then through the proxy (the server unloaded between)."""
    direct = call(fresh.url)
    fresh.unload(MODEL)
    return direct, call(proxy.url)


# -- contract ---------------------------------------------------------------------------------------
def test_ollama_client_same_answers(fresh, proxy):
    opts = {"num_predict": 12, "temperature": 0, "seed": 3}
    for call in (
        lambda url: ollama.Client(host=url).list(),
        lambda url: ollama.Client(host=url).show(MODEL),
        lambda url: ollama.Client(host=url).generate(model=MODEL, prompt="Why local?", options=opts),
        lambda url: ollama.Client(host=url).chat(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                options=opts),
        lambda url: ollama.Client(host=url).embed(model="nomic-embed-text", input=["a", "b"]),
        lambda url: list(ollama.Client(host=url).generate(model=MODEL, prompt="Stream it", options=opts,
                                                          stream=True)),
        lambda url: list(ollama.Client(host=url).chat(model=MODEL, messages=[{"role": "user", "content": "go"}],
                                                      options=opts, stream=True)),
    ):
        direct, proxied = both(fresh, proxy, call)
        assert stable(proxied) == stable(direct)
    ps = ollama.Client(host=proxy.url).ps()
    assert [m.model for m in ps.models] == proxy.loaded_models() and MODEL in proxy.loaded_models()
    assert stable(ps) == stable(ollama.Client(host=fresh.url).ps())
    for url in (fresh.url, proxy.url):
        with pytest.raises(ollama.ResponseError) as err:
            ollama.Client(host=url).chat(model="nope:1b", messages=[{"role": "user", "content": "x"}])
        assert err.value.status_code == 404 and err.value.error == "model 'nope:1b' not found"


def test_pull_through_the_proxy_and_reset_keeps_models(fresh, proxy):
    client = ollama.Client(host=proxy.url)
    statuses = [p.status for p in client.pull(MISSING, stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    (rec,) = proxy.log.records(path="/api/pull")
    assert (rec.model, rec.status, rec.extra["route"], rec.extra["pulled"]) == (MISSING, 200, "api-pull", True)
    assert MISSING in proxy.present_models() and proxy.why_no_pull() and "already on your Ollama" in proxy.why_no_pull()
    proxy.set_model(MODEL, eval_tok_s=1.0)
    proxy.reset()                                   # forgets what was asked; deletes nothing
    assert MISSING in fresh.present_models() and MODEL in fresh.present_models() and not proxy.asked
    client.generate(model=MODEL, prompt="load it", options={"num_predict": 2})
    assert MODEL in fresh.loaded_models()
    proxy.unload(MODEL)                             # keep_alive 0 on the real server
    assert MODEL not in fresh.loaded_models()
    assert len(proxy.log.records(path="/api/generate")) == 1   # control calls bypass the log


def test_openai_client_same_answers(fresh, proxy):
    messages = [{"role": "user", "content": "Say hello."}]

    def chat(url: str, **kw: Any) -> Any:
        client = openai.OpenAI(base_url=url + "/v1", api_key="ollama", max_retries=0)
        out = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10, **kw)
        return list(out) if kw.get("stream") else out

    for kw in ({}, {"stream": True}, {"stream": True, "stream_options": {"include_usage": True}}):
        direct, proxied = both(fresh, proxy, lambda url: chat(url, **kw))
        assert stable(proxied) == stable(direct), kw
    # a stream without include_usage: the client sees none, the log still has the counts
    rec, truth = proxy.log.records(path="/v1/chat/completions")[-2], fresh.log.records(path="/v1/chat/completions")[-3]
    assert rec.extra["stream"] is True and rec.extra["include_usage"] is False
    assert (rec.tokens_in, rec.tokens_out) == (truth.tokens_in, truth.tokens_out) and rec.tokens_out > 0
    for call in (lambda url: openai.OpenAI(base_url=url + "/v1", api_key="x").models.list().data,
                 lambda url: openai.OpenAI(base_url=url + "/v1", api_key="x").completions.create(
                     model=MODEL, prompt="Once", max_tokens=6),
                 lambda url: openai.OpenAI(base_url=url + "/v1", api_key="x").embeddings.create(
                     model="nomic-embed-text", input="vector")):
        direct, proxied = both(fresh, proxy, call)
        assert stable(proxied) == stable(direct)
    with pytest.raises(openai.NotFoundError) as err:
        openai.OpenAI(base_url=proxy.url + "/v1", api_key="x", max_retries=0).chat.completions.create(
            model="nope", messages=messages)
    assert "model 'nope' not found" in str(err.value)


def test_streams_pass_chunk_by_chunk(fresh, proxy):
    fresh.set_model(MODEL, eval_tok_s=40.0, load_s=0.0)
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me more."}],
            "options": {"num_predict": 16}}
    arrivals = []
    with httpx.stream("POST", proxy.url + "/api/chat", json=body, timeout=30) as resp:
        assert resp.headers["content-type"] == "application/x-ndjson"
        for line in resp.iter_lines():
            if line:
                arrivals.append(time.monotonic())
    tokens = fresh.log.records(path="/api/chat")[-1].extra["eval_count"]
    assert tokens > 8 and len(arrivals) == tokens + 1      # one line per token, then the final object
    assert arrivals[-2] - arrivals[0] > 0.6 * (tokens - 1) / 40.0   # 25 ms apart: nothing was held back
    with httpx.stream("POST", proxy.url + "/v1/chat/completions", timeout=30,
                      json={"model": MODEL, "messages": body["messages"], "max_tokens": 16, "stream": True}) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [(time.monotonic(), line) for line in resp.iter_lines() if line]
    tokens = fresh.log.records(path="/v1/chat/completions")[-1].tokens_out
    assert len(events) == tokens + 2 and events[-1][1] == "data: [DONE]"   # + the finish chunk and [DONE]
    assert events[-3][0] - events[0][0] > 0.6 * (tokens - 1) / 40.0


# -- the log ------------------------------------------------------------------------------------------
def test_log_holds_the_servers_truth(fresh, proxy):
    fresh.set_model(MODEL, eval_tok_s=50.0, load_s=0.1)
    client = ollama.Client(host=proxy.url)
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Why?"}]
    list(client.chat(model=MODEL, messages=history, options={"num_predict": 8}, stream=True))
    client.generate(model=MODEL, prompt="Once more", options={"num_predict": 5})
    for path, stream in (("/api/chat", True), ("/api/generate", False)):
        (rec,), (truth,) = proxy.log.records(path=path), fresh.log.records(path=path)
        for key in ("eval_count", "eval_duration_ns", "prompt_eval_count", "prompt_eval_duration_ns",
                    "load_duration_ns", "done_reason", "text"):
            assert rec.extra[key] == truth.extra[key], key
        assert (rec.tokens_in, rec.tokens_out, rec.status, rec.model) == (truth.tokens_in, truth.tokens_out, 200, MODEL)
        assert rec.extra["route"] == truth.extra["route"] and rec.extra["stream"] is stream
        assert rec.t_start <= truth.t_start and rec.t_end >= truth.t_end
        if stream:   # each chunk goes out as it comes in
            assert 0 <= rec.t_first_content - truth.t_first_content < 0.05
        else:        # the whole answer, once the server has sent it
            assert truth.t_end <= rec.t_first_content <= rec.t_end
    (chat,), (truth,) = proxy.log.records(path="/api/chat"), fresh.log.records(path="/api/chat")
    assert chat.extra["messages"] == truth.extra["messages"] == history
    assert len(chat.extra["content_times"]) == chat.extra["eval_count"] == 8
    assert all(0 <= a - b < 0.05 for a, b in zip(chat.extra["content_times"], truth.extra["content_times"]))
    assert chat.headers["user-agent"].startswith("ollama-python")


def test_unix_socket_and_env(fresh, tmp_path):
    sock = tmp_path / "ollama.sock"
    svc = create_live(seed=SEED, upstream=fresh.url, unix_path=str(sock)).start()
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            assert client.get("http://ollama/").text == "Ollama is running"
            assert client.get("http://ollama/api/tags").json()["models"]
        assert svc.env()["OLLAMA_HOST"] == svc.url and svc.tier == "live" and svc.pull_model is None
        assert "the grader downloads nothing" in svc.why_no_pull()
    finally:
        svc.stop()
    assert not sock.exists()


def test_model_choice(fresh, monkeypatch):
    monkeypatch.setenv(UPSTREAM_ENV, fresh.url.removeprefix("http://"))
    monkeypatch.delenv(MODEL_ENV, raising=False)
    assert create_live(seed=1).chat_model == MODEL              # the smallest that can generate
    fresh.remove_model(MODEL)                                   # left: llama3.2:1b and an embedding model
    assert create_live(seed=1).chat_model == "llama3.2:1b"      # smaller than it, but cannot generate
    monkeypatch.setenv(MODEL_ENV, "llama3.2:1B")
    assert create_live(seed=1).chat_model == "llama3.2:1b"
    monkeypatch.setenv(MODEL_ENV, "gemma3:1b")
    with pytest.raises(ServiceNotAvailable, match=r"INFERGRADE_OLLAMA_MODEL=gemma3:1b is not on .*ollama pull"):
        create_live(seed=1)


def test_no_ollama_answers(monkeypatch):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(UPSTREAM_ENV, url)
    want = f"no Ollama answers on {url}: start `ollama serve`, or set INFERGRADE_OLLAMA_UPSTREAM"
    with pytest.raises(ServiceNotAvailable) as err:
        create(tier="live", seed=1)
    assert str(err.value).startswith(want)
    with start_services("live", 1, ["ollama"]) as services:
        assert services.unavailable["ollama"].startswith(want) and not services.services


# -- grading ---------------------------------------------------------------------------------------
def grade(path: Path, tmp_path: Path) -> dict[str, Any]:
    report = run_checkpoints(path, out_json=tmp_path / "report.json", seed=SEED, only="ollama", tier="live")
    (found,) = [c for c in report["checkpoints"] if c["id"] == "ollama"]
    return {t["name"]: t for t in found["tests"]} | {"": found}


@pytest.mark.slow
def test_reference_full_points_where_judged(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv(UPSTREAM_ENV, fresh.url)
    monkeypatch.delenv(MODEL_ENV, raising=False)
    monkeypatch.delenv(PULL_ENV, raising=False)
    tests = grade(REPO_ROOT / "reference", tmp_path)
    skipped = {n: t["message"] for n, t in tests.items() if n and t["outcome"] == "skipped"}
    # (test_default_port_11434 skips, saying so, where something really listens on 11434)
    assert set(skipped) - {"test_default_port_11434"} == {"test_ensure_model_pulls_only_when_missing"}, skipped
    assert "is not pulled again" in skipped["test_ensure_model_pulls_only_when_missing"]
    assert PULL_ENV in skipped["test_ensure_model_pulls_only_when_missing"]
    assert all(t["outcome"] == "passed" and t["score"] == t["max_score"]
               for n, t in tests.items() if n and n not in skipped), tests
    assert fresh.log.records(path="/api/chat") and not fresh.log.records(path="/api/pull")


@pytest.mark.slow
def test_reference_pull_judged_when_allowed(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv(UPSTREAM_ENV, fresh.url)
    monkeypatch.setenv(PULL_ENV, MISSING)
    tests = grade(REPO_ROOT / "reference", tmp_path)
    assert all(t["outcome"] == "passed" for n, t in tests.items() if n and n != "test_default_port_11434"), tests
    assert tests["test_ensure_model_pulls_only_when_missing"]["score"] == 2.0
    assert [r.model for r in fresh.log.records(path="/api/pull")] == [MISSING]


@pytest.mark.slow
def test_template_scores_zero(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv(UPSTREAM_ENV, fresh.url)
    tests = grade(REPO_ROOT / "student_template", tmp_path)
    assert tests[""]["score"] == 0
    failed = [t for n, t in tests.items() if n and t["outcome"] == "failed"]
    assert len(failed) >= 8 and all("not implemented: inference_lab.ollama_client." in t["message"] for t in failed)


@pytest.mark.slow
def test_no_ollama_skips_with_the_reason(monkeypatch, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv(UPSTREAM_ENV, url)
    tests = grade(REPO_ROOT / "reference", tmp_path)
    skipped = {n for n, t in tests.items() if n and t["outcome"] == "skipped"}
    assert skipped >= {"test_list_models", "test_generate_tokens_per_s", "test_stream_chat_ttft", "test_chat_openai"}
    for name in skipped - {"test_default_port_11434"}:
        assert f"no Ollama answers on {url}: start `ollama serve`" in tests[name]["message"], tests[name]


# -- serve --------------------------------------------------------------------------------------------
def serve_args(port: int) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    return parser.parse_args(["serve", "ollama", "--port", str(port), "--seed", "1"])


def test_serve_on_a_port_ollama_holds(upstream, capsys):
    args = serve_args(upstream.port)
    assert args.func(args) == 1
    err = capsys.readouterr().err
    assert f"cannot start ollama on 127.0.0.1:{upstream.port}" in err
    assert f"an Ollama server (version 0.9.0) already listens on 127.0.0.1:{upstream.port}" in err
    assert f"--port {upstream.port + 1}" in err and f"OLLAMA_HOST=http://127.0.0.1:{upstream.port + 1}" in err


def test_serve_on_a_port_something_else_holds(capsys):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        args = serve_args(port)
        assert args.func(args) == 1
    err = capsys.readouterr().err
    assert f"another program already listens on 127.0.0.1:{port}" in err and "--port 0" in err
