"""Contract tests of the Ollama server (tier sim): the official ``ollama`` client and the ``openai``
client against every endpoint, raw shapes against tests/fixtures/ollama_shapes/ (same keys, same JSON
types as the real Ollama), errors, pacing and ground truth in the log, keep_alive, the CLI stand-in.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import ollama
import openai
import pytest

from grading.sims.ollama import BIN_DIR, create
from grading.sims.ollama.models import parse_keep_alive
from grading.sims.text import tokenize
import json_shapes

SHAPES = Path(__file__).parent / "fixtures" / "ollama_shapes"
MODEL = "smollm2:135m"


def shape(name: str) -> Any:
    return json.loads((SHAPES / name).read_text())


def same_shape(got: Any, want: Any) -> None:
    """Ollama's shapes: every key with its JSON type; integer durations (ns) must stay integers."""
    json_shapes.same_shape(got, want, integers=True)


@pytest.fixture(scope="module")
def server():
    srv = create(tier="sim", seed=11).start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def fast(server):
    server.reset()
    for name in ("smollm2:135m", "qwen2.5:0.5b", "nomic-embed-text:latest"):
        server.set_model(name, load_s=0.05, prompt_eval_tok_s=2000.0, eval_tok_s=400.0, pull_s=0.05)
    yield


def lines(resp: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in resp.text.splitlines() if line.strip()]


# -- native API through the official client --------------------------------------------------------
def test_client_list_show_ps_version(server):
    client = ollama.Client(host=server.url)
    assert {m.model for m in client.list().models} == set(server.present_models())
    assert client.show(MODEL).details.family == "llama"
    assert client.ps().models == []
    client.generate(model=MODEL, prompt="")            # load only
    assert [m.model for m in client.ps().models] == [MODEL]
    assert httpx.get(server.url + "/api/version").json()["version"]
    assert httpx.get(server.url + "/").text == "Ollama is running"


def test_generate_and_chat_stats_match_log(server):
    client = ollama.Client(host=server.url)
    r = client.generate(model=MODEL, prompt="Why is the sky blue?", options={"num_predict": 10}, stream=False)
    rec = server.log.records(service="ollama", path="/api/generate")[-1]
    assert r.eval_count == rec.extra["eval_count"] == rec.tokens_out == 10 and r.done_reason == "length"
    assert r.eval_duration == rec.extra["eval_duration_ns"] and isinstance(r.eval_duration, int)
    assert r.response == rec.extra["text"] and len(tokenize(r.response)) == r.eval_count
    assert rec.extra["loaded"] is True and r.load_duration >= 0.04e9          # first use pays the load
    r2 = client.generate(model=MODEL, prompt="again", options={"num_predict": 5})
    assert r2.load_duration < 0.02e9                                           # already loaded
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "more"}]
    parts = list(client.chat(model=MODEL, messages=msgs, stream=True))
    rec = server.log.records(service="ollama", path="/api/chat")[-1]
    text = "".join(p.message.content for p in parts)
    assert parts[-1].done and parts[-1].message.content == "" and text == rec.extra["text"]
    assert parts[-1].eval_count == len(parts) - 1 == len(rec.extra["content_times"])
    assert rec.extra["messages"] == msgs and abs(rec.t_first_content - rec.extra["content_times"][0]) < 0.005


def test_pacing_follows_the_rates(server):
    server.set_model(MODEL, load_s=0.2, prompt_eval_tok_s=100.0, eval_tok_s=50.0)
    client = ollama.Client(host=server.url)
    r = client.generate(model=MODEL, prompt="one two three four five six", options={"num_predict": 20})
    assert abs(r.load_duration / 1e9 - 0.2) < 0.05
    assert abs(r.prompt_eval_duration / 1e9 - r.prompt_eval_count / 100.0) < 0.05
    assert abs(r.eval_duration / 1e9 - 20 / 50.0) < 0.06


def test_keep_alive_unloads(server):
    client = ollama.Client(host=server.url)
    client.generate(model=MODEL, prompt="x", options={"num_predict": 2}, keep_alive=0)
    assert client.ps().models == []
    client.generate(model=MODEL, prompt="x", options={"num_predict": 2}, keep_alive="1s")
    assert [m.model for m in client.ps().models] == [MODEL]
    time.sleep(1.1)
    assert client.ps().models == []
    r = client.chat(model=MODEL, messages=[], keep_alive=-1)
    assert r.done_reason == "load" and client.ps().models[0].expires_at.year > 2030
    assert client.generate(model=MODEL, prompt="", keep_alive=0).done_reason == "unload"
    assert parse_keep_alive("1h30m") == 5400 and parse_keep_alive("-1") == float("inf")
    assert httpx.post(server.url + "/api/generate", json={"model": MODEL, "keep_alive": "soon"}).status_code == 400


def test_pull_delete_copy_embed(server):
    client = ollama.Client(host=server.url)
    statuses = [p.status for p in client.pull("qwen2.5:0.5b", stream=True)]
    assert statuses[0] == "pulling manifest" and statuses[-1] == "success"
    assert "qwen2.5:0.5b" in server.present_models()
    assert client.pull("qwen2.5:0.5b").status == "success"
    client.copy("qwen2.5:0.5b", "mine:v1")
    assert "mine:v1" in server.present_models()
    client.delete("mine:v1")
    assert "mine:v1" not in server.present_models()
    with pytest.raises(ollama.ResponseError) as err:
        client.delete("mine:v1")
    assert err.value.status_code == 404
    e = client.embed(model="nomic-embed-text", input=["a b", "c"])
    assert len(e.embeddings) == 2 and len(e.embeddings[0]) == 768


def test_errors(server):
    client = ollama.Client(host=server.url)
    with pytest.raises(ollama.ResponseError) as err:
        client.chat(model="nope", messages=[{"role": "user", "content": "x"}])
    assert err.value.status_code == 404 and err.value.error == "model 'nope' not found"
    assert httpx.post(server.url + "/api/chat").json() == {"error": "missing request body"}
    assert httpx.post(server.url + "/api/chat", json={"messages": []}).json() == {"error": "model is required"}
    assert httpx.post(server.url + "/api/chat", content=b"{oops").status_code == 400
    assert httpx.get(server.url + "/api/chat").status_code == 405
    assert httpx.get(server.url + "/api/nothing").text == "404 page not found"
    pull = httpx.post(server.url + "/api/pull", json={"model": "no-such-model"})
    assert lines(pull)[-1] == {"error": "pull model manifest: file does not exist"}
    assert httpx.post(server.url + "/api/pull", json={"model": "no-such-model", "stream": False}).status_code == 500


# -- raw shapes against the real ones --------------------------------------------------------------
def test_native_shapes(server):
    u = server.url
    gen = lines(httpx.post(u + "/api/generate", json={"model": MODEL, "prompt": "hi", "options": {"num_predict": 3}}))
    same_shape(gen[0], shape("generate_chunk.json"))
    same_shape(gen[-1], shape("generate_final.json"))
    same_shape(httpx.post(u + "/api/generate", json={"model": MODEL, "prompt": "hi", "stream": False}).json(),
               shape("generate_final.json"))
    chat = httpx.post(u + "/api/chat", json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    assert chat.headers["content-type"].startswith("application/x-ndjson")
    same_shape(lines(chat)[0], shape("chat_chunk.json"))
    same_shape(lines(chat)[-1], shape("chat_final.json"))
    same_shape(httpx.get(u + "/api/tags").json(), shape("tags.json"))
    same_shape(httpx.get(u + "/api/ps").json(), shape("ps.json"))
    same_shape(httpx.post(u + "/api/show", json={"model": MODEL}).json(), shape("show.json"))
    pulled = lines(httpx.post(u + "/api/pull", json={"model": "qwen2.5:0.5b"}))
    for got, want in zip([pulled[0], pulled[1], pulled[-3], pulled[-2], pulled[-1]], shape("pull_lines.json")):
        same_shape(got, want)
        assert got["status"].split()[0] == want["status"].split()[0]
    same_shape(httpx.post(u + "/api/embed", json={"model": "nomic-embed-text", "input": "hi"}).json(), shape("embed.json"))
    same_shape(httpx.post(u + "/api/chat", json={"model": "x", "messages": []}).json(), shape("error.json"))


def test_v1_shapes_and_openai_client(server):
    u = server.url
    same_shape(httpx.post(u + "/v1/chat/completions", json={"model": MODEL, "messages": [
        {"role": "user", "content": "hi"}], "max_tokens": 4}).json(), shape("v1_chat.json"))
    same_shape(httpx.post(u + "/v1/completions", json={"model": MODEL, "prompt": "hi", "max_tokens": 4}).json(),
               shape("v1_completion.json"))
    same_shape(httpx.get(u + "/v1/models").json(), shape("v1_models.json"))
    same_shape(httpx.post(u + "/v1/embeddings", json={"model": "nomic-embed-text", "input": ["a"]}).json(),
               shape("v1_embeddings.json"))
    same_shape(httpx.post(u + "/v1/chat/completions", json={"model": "nope", "messages": [
        {"role": "user", "content": "x"}]}).json(), shape("v1_error.json"))
    client = openai.OpenAI(base_url=u + "/v1", api_key="ollama", max_retries=0)
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=6)
    rec = server.log.records(service="ollama", path="/v1/chat/completions")[-1]
    assert r.choices[0].message.content == rec.extra["text"] and r.usage.completion_tokens == 6
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}],
                                                 max_tokens=5, stream=True, stream_options={"include_usage": True}))
    same_shape(chunks[0].model_dump(), shape("v1_chunk.json"))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 5
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
        server.log.records(service="ollama", path="/v1/chat/completions")[-1].extra["text"]
    assert client.completions.create(model=MODEL, prompt="hi", max_tokens=3).usage.completion_tokens == 3
    assert MODEL in {m.id for m in client.models.list()}
    assert client.models.retrieve(MODEL).id == MODEL
    assert len(client.embeddings.create(model="nomic-embed-text", input="x").data[0].embedding) == 768
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])


# -- the CLI stand-in --------------------------------------------------------------------------------
def run_cli(server, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, OLLAMA_HOST=server.url, PATH=f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run(["ollama", *args], env=env, capture_output=True, text=True, timeout=60, input=stdin)


def test_cli(server):
    listed = run_cli(server, "list")
    assert listed.returncode == 0 and listed.stdout.splitlines()[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    assert MODEL in listed.stdout
    pulled = run_cli(server, "pull", "qwen2.5:0.5b")
    assert pulled.returncode == 0 and "success" in pulled.stderr
    ran = run_cli(server, "run", MODEL, "Say hi")
    assert ran.returncode == 0 and ran.stdout.strip() == server.log.records(path="/api/generate")[-1].extra["text"]
    assert MODEL in run_cli(server, "ps").stdout
    assert "architecture" in run_cli(server, "show", MODEL).stdout
    bad = run_cli(server, "run", "nope-model", "hi")
    assert bad.returncode == 1 and "Error: pull model manifest: file does not exist" in bad.stderr
    served = run_cli(server, "serve")
    assert served.returncode == 1 and "address already in use" in served.stderr
    assert run_cli(server, "--version").stdout.startswith("ollama version is")
    assert "Available Commands" in run_cli(server, "--help").stdout
