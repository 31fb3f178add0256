"""Checkpoint `ollama`: install, start and query Ollama.

``inference_lab.ollama_client`` must list and pull models, generate and chat through Ollama's native
API (streamed and not) and its OpenAI-compatible ``/v1``, find the server through ``OLLAMA_HOST``
(default ``http://localhost:11434``) and fail with a clear ``ConnectionError`` naming the URL when
nothing answers. The ground truth is the Ollama server's request log (grading/sims/ollama): what
reached it (route, model, messages, options), what it answered (text, ``eval_count``, durations in
nanoseconds) and when (arrival, first content chunk, end). Times are judged with the tolerances of
``grading/thresholds.toml``.

In tier ``live`` the server is the student's own Ollama behind the grader's logging proxy
(grading/engines/ollama_live.py), which writes the same log from what Ollama really answered; the
model is ``INFERGRADE_OLLAMA_MODEL`` or the smallest one it lists that can generate, and every check
runs as in ``sim`` but the pull of a missing model, judged only when ``INFERGRADE_OLLAMA_PULL_MODEL``
names one the grader may download (otherwise that test judges the present model and skips, saying so).
Without an Ollama answering the tests skip with that reason.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from grading.hf_checks import describe_records, is_number, judge_duration, missing_keys, show
from grading.sandbox.errors import StudentRaised
from grading.services import default_port_socket

GEN_KEYS = ("text", "eval_count", "eval_duration_s", "tokens_per_s", "load_duration_s")
CHAT_KEYS = ("text", "ttft_s", "latency_s", "eval_count", "tokens_per_s")
HISTORY = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name one reason to run a model locally."},
    {"role": "assistant", "content": "Privacy: the data never leaves the machine."},
    {"role": "user", "content": "And one reason not to?"},
]


# -- helpers ---------------------------------------------------------------------------------------
class Observed:
    def __init__(self, value: Any, records: list) -> None:
        self.value, self.records = value, records

    def route(self, *routes: str) -> list:
        return [r for r in self.records if (r.extra or {}).get("route") in routes]


def observe(lab: Any, server: Any, target: str, *args: Any, env: dict | None = None, **kwargs: Any) -> Observed:
    import time

    lab.start()
    t0 = time.monotonic()
    value = lab.call(target, *args, env=env, **kwargs)
    t1 = time.monotonic()
    records = [r for r in server.log.records(service="ollama") if t0 <= r.t_start <= t1]
    server.log.wait_finished(records)
    return Observed(value, sorted(records, key=lambda r: r.t_start))


def call_text(name: str, *args: Any, **kwargs: Any) -> str:
    parts = [repr(a) if not isinstance(a, list) else "messages" for a in args]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def only_one(obs: Observed, call: str, *routes: str, what: str) -> Any:
    found = obs.route(*routes)
    assert found, (f"{call} returned, but no {what} reached the Ollama server while it ran (requests seen: "
                   f"{describe_records(obs.records)}); send it to the server named by host / OLLAMA_HOST")
    assert len(found) == 1, f"{call} made {len(found)} {what}s for one call ({describe_records(found)}); make one"
    rec = found[0]
    assert rec.status == 200, f"the {what} of {call} was answered with status {rec.status} ({describe_records([rec])})"
    return rec


def close(value: Any, truth: float, rel: float) -> bool:
    return is_number(value) and abs(value - truth) <= rel * abs(truth) + 1e-12


def pace(server: Any, *, load_s: float, prompt_tok_s: float, eval_tok_s: float) -> None:
    server.set_model(server.chat_model, load_s=load_s, prompt_eval_tok_s=prompt_tok_s, eval_tok_s=eval_tok_s)
    server.unload(server.chat_model)


def check_rates(call: str, result: dict, rec: Any, thresholds: dict, *, with_eval_s: bool = True) -> None:
    """eval_count and tokens_per_s (and eval_duration_s) against what the server reported."""
    rel = float(thresholds["derived_rel"])
    extra = rec.extra or {}
    count, ns = extra["eval_count"], extra["eval_duration_ns"]
    assert result["eval_count"] == count, (
        f"{call} returned eval_count={show(result['eval_count'])}, but the server reported eval_count={count}; "
        "copy eval_count from the final response (done: true) — do not count words or chunks")
    truth = count / (ns / 1e9)
    tps = result["tokens_per_s"]
    if is_number(tps) and close(tps, count / ns, 0.01):
        hint = ("that is eval_count / eval_duration with eval_duration taken as seconds: Ollama reports durations "
                "in nanoseconds — divide eval_duration by 1e9 first")
    elif is_number(tps) and close(tps, count / max(rec.duration_s or 1e-9, 1e-9), 0.2):
        hint = "that is over the whole request's time; use the server's eval_duration (decode time only)"
    else:
        hint = "compute eval_count / (eval_duration / 1e9) from the final response"
    assert close(tps, truth, rel), (
        f"{call} returned tokens_per_s={show(tps)}, but the server generated {count} tokens in eval_duration="
        f"{ns} ns, i.e. {truth:.2f} tokens/s; {hint}")
    if with_eval_s:
        assert close(result.get("eval_duration_s"), ns / 1e9, rel), (
            f"{call} returned eval_duration_s={show(result.get('eval_duration_s'))}, but eval_duration was {ns} "
            f"nanoseconds = {ns / 1e9:.6f} s; durations are in nanoseconds: divide by 1e9")


def check_text(call: str, result: dict, rec: Any) -> None:
    sent = (rec.extra or {}).get("text")
    assert result["text"] == sent, (
        f"{call} returned text={show(result['text'])}, but the server answered {show(sent)}; return the reply "
        "exactly as received (for a stream: the content of every chunk, joined in order)")


def expect_connection_error(lab: Any, call: str, target: str, *args: Any, url_part: str,
                            env: dict | None = None, **kwargs: Any) -> str:
    try:
        value = lab.call(target, *args, env=env, **kwargs)
    except StudentRaised as exc:
        assert "ConnectionError" in exc.exc_mro, (
            f"{call} raised {exc.exc_type}: {exc.exc_message[:200]} — with no server answering it must raise "
            "ConnectionError (or a subclass) with a message naming the URL: catch the client's connection "
            "errors (httpx.ConnectError, openai.APIConnectionError) and raise ConnectionError(f'... {url} ...') "
            "from them")
        return exc.exc_message
    raise AssertionError(f"{call} returned {show(value)} although nothing answers at {url_part}; it must raise "
                         "ConnectionError naming the URL")


def listening(port: int) -> bool:
    for family, addr in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.3)
                if sock.connect_ex((addr, port)) == 0:
                    return True
        except OSError:
            continue
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- models ----------------------------------------------------------------------------------------
def test_list_models(lab, ollama_server):
    url = ollama_server.url
    call = call_text("list_models", host=url)
    obs = observe(lab, ollama_server, "ollama_client.list_models", host=url)
    only_one(obs, call, "api-tags", what="GET /api/tags request")
    want = sorted(ollama_server.present_models())
    got = obs.value
    assert isinstance(got, list) and all(isinstance(n, str) for n in got), (
        f"{call} returned {show(got)}; it must return a list of model names (str)")
    assert sorted(got) == want, (
        f"{call} returned {show(got, limit=300)}, but the server has {want}; return each model's name "
        "(its 'model' or 'name' field, with the tag) from GET /api/tags")


def test_ensure_model_pulls_only_when_missing(lab, ollama_server):
    url, present, missing = ollama_server.url, ollama_server.chat_model, ollama_server.pull_model
    # a real Ollama (tier live): a pull is judged only where the student allows a download
    no_pull = getattr(ollama_server, "why_no_pull", lambda: None)()
    steps = [(present, False)] if no_pull else [(present, False), (missing, True), (missing, False)]
    for model, want_pull in steps:
        call = call_text("ensure_model", model, host=url)
        obs = observe(lab, ollama_server, "ollama_client.ensure_model", model, host=url)
        pulls = obs.route("api-pull")
        if want_pull:
            assert len(pulls) == 1, (
                f"{call}: {model!r} was not on the server, so it must be pulled once (POST /api/pull), but "
                f"{len(pulls)} pull requests arrived ({describe_records(obs.records)})")
            assert pulls[0].model == model and pulls[0].status == 200, (
                f"{call} pulled {describe_records(pulls)}; pull the model asked for")
            assert obs.value is True, f"{call} pulled the model but returned {show(obs.value)}; return True"
            assert model in ollama_server.present_models(), f"after {call} the model is still not on the server"
        else:
            assert not pulls, (
                f"{call}: {model!r} was already on the server, yet it was pulled again "
                f"({describe_records(pulls)}); check GET /api/tags first (\"name\" means \"name:latest\") and "
                "pull only when it is missing")
            assert obs.value is False, f"{call}: the model was present, so it must return False, not {show(obs.value)}"
    if no_pull:
        pytest.skip(f"judged only that {present!r}, already on the server, is not pulled again (it is not); {no_pull}")


# -- generate and chat -----------------------------------------------------------------------------
def test_generate_tokens_per_s(lab, ollama_server, thresholds):
    pace(ollama_server, load_s=0.35, prompt_tok_s=120.0, eval_tok_s=45.0)
    url, model = ollama_server.url, ollama_server.chat_model
    options = {"num_predict": 32, "temperature": 0, "seed": 7}
    prompt = "Why run a language model locally?"
    call = call_text("generate", prompt, model=model, host=url, options=options)
    obs = observe(lab, ollama_server, "ollama_client.generate", prompt, model=model, host=url, options=options)
    result = obs.value
    missing = missing_keys(result, GEN_KEYS)
    assert not missing, f"{call} returned {show(result)}, without {', '.join(missing)}"
    rec = only_one(obs, call, "api-generate", what="POST /api/generate request")
    body = rec.body if isinstance(rec.body, dict) else {}
    assert body.get("prompt") == prompt and body.get("model") == model, (
        f"{call} sent model={body.get('model')!r}, prompt={show(body.get('prompt'))}; send them as given")
    assert (body.get("options") or {}).get("num_predict") == 32, (
        f"{call} did not pass options on (the request's options were {show(body.get('options'))}); "
        "pass options=options to generate")
    check_text(call, result, rec)
    check_rates(call, result, rec, thresholds)
    load_ns = rec.extra["load_duration_ns"]
    assert close(result["load_duration_s"], load_ns / 1e9, float(thresholds["derived_rel"])), (
        f"{call} returned load_duration_s={show(result['load_duration_s'])}, but load_duration was {load_ns} "
        f"nanoseconds = {load_ns / 1e9:.6f} s (the model had to be loaded); divide by 1e9")


def test_chat_sends_history(lab, ollama_server, thresholds):
    pace(ollama_server, load_s=0.1, prompt_tok_s=300.0, eval_tok_s=90.0)
    url, model = ollama_server.url, ollama_server.chat_model
    call = call_text("chat", HISTORY, model=model, host=url, stream=False)
    obs = observe(lab, ollama_server, "ollama_client.chat", HISTORY, model=model, host=url, stream=False)
    result = obs.value
    missing = missing_keys(result, CHAT_KEYS)
    assert not missing, f"{call} returned {show(result)}, without {', '.join(missing)}"
    rec = only_one(obs, call, "api-chat", what="POST /api/chat request")
    sent = [(m.get("role"), m.get("content")) for m in (rec.extra or {}).get("messages") or []]
    want = [(m["role"], m["content"]) for m in HISTORY]
    assert sent == want, (
        f"{call} sent {len(sent)} message(s) {show(sent, limit=200)}; send the whole history (system, user, "
        f"assistant, user: {len(want)} messages, in order) — the model only knows what the request carries")
    assert rec.extra.get("stream") is False, f"{call} streamed although stream=False; pass stream=False"
    check_text(call, result, rec)
    check_rates(call, result, rec, thresholds, with_eval_s=False)
    assert result["ttft_s"] is None, f"{call} returned ttft_s={show(result['ttft_s'])}; without streaming it is None"


def test_stream_chat_ttft(lab, ollama_server, thresholds):
    pace(ollama_server, load_s=0.30, prompt_tok_s=150.0, eval_tok_s=60.0)
    url, model = ollama_server.url, ollama_server.chat_model
    messages = [{"role": "user", "content": "Explain time to first token in one paragraph."}]
    call = call_text("chat", messages, model=model, host=url, stream=True)
    obs = observe(lab, ollama_server, "ollama_client.chat", messages, model=model, host=url, stream=True)
    result = obs.value
    missing = missing_keys(result, CHAT_KEYS)
    assert not missing, f"{call} returned {show(result)}, without {', '.join(missing)}"
    rec = only_one(obs, call, "api-chat", what="POST /api/chat request")
    assert rec.extra.get("stream") is True, f"{call} did not stream (\"stream\": false was sent); pass stream=True"
    assert rec.t_first_content is not None, f"the stream of {call} carried no content; read it to its end"
    check_text(call, result, rec)
    truth = rec.t_first_content - rec.t_start
    problem = judge_duration(f"{call}['ttft_s']", result["ttft_s"], server_s=truth, thresholds=thresholds,
                             overhead_key="ttft_client_overhead_s", what="the first chunk with content",
                             how="when the first chunk whose message.content is not empty arrives (not at the end)")
    assert problem is None, problem
    problem = judge_duration(f"{call}['latency_s']", result["latency_s"], server_s=rec.duration_s,
                             thresholds=thresholds, what="the whole stream", how="after the final (done) chunk")
    assert problem is None, problem


def test_chat_openai(lab, ollama_server):
    url, model = ollama_server.url, ollama_server.chat_model
    messages = [{"role": "user", "content": "Say hello through the OpenAI-compatible API."}]
    call = call_text("chat_openai", messages, model=model, base_url=url + "/v1")
    obs = observe(lab, ollama_server, "ollama_client.chat_openai", messages, model=model, base_url=url + "/v1")
    result = obs.value
    missing = missing_keys(result, ("text", "latency_s", "usage"))
    assert not missing, f"{call} returned {show(result)}, without {', '.join(missing)}"
    rec = only_one(obs, call, "v1-chat", what="POST /v1/chat/completions request")
    agent = (rec.headers or {}).get("user-agent", "")
    assert agent.startswith("OpenAI/Python"), (
        f"{call} must use the openai client, but the request came from {agent[:60]!r}; "
        "openai.OpenAI(base_url=base_url, api_key='ollama').chat.completions.create(...)")
    check_text(call, result, rec)
    want = {"prompt_tokens": rec.tokens_in, "completion_tokens": rec.tokens_out}
    usage = result["usage"] if isinstance(result["usage"], dict) else {}
    got = {k: usage.get(k) for k in want}
    assert got == want, f"{call} returned usage {got}, but the server reported {want}; copy response.usage"


# -- where the server is ---------------------------------------------------------------------------
def test_ollama_host_from_env(lab, ollama_server):
    url, model = ollama_server.url, ollama_server.chat_model
    env = {"OLLAMA_HOST": url}
    messages = [{"role": "user", "content": "Which host am I talking to?"}]
    for target, args, kwargs, route in (("list_models", (), {}, "api-tags"),
                                        ("chat", (messages,), {"model": model}, "api-chat")):
        call = call_text(target, *args, **kwargs) + f" with OLLAMA_HOST={url}"
        try:
            obs = observe(lab, ollama_server, f"ollama_client.{target}", *args, env=env, **kwargs)
        except StudentRaised as exc:
            raise AssertionError(
                f"{call} raised {exc.exc_type}: {exc.exc_message[:200]}; with host=None, use the server named by "
                "the OLLAMA_HOST environment variable (default http://localhost:11434 only when it is unset)") from None
        default_port = default_port_socket(ollama_server)
        if default_port is not None and any(r.extra.get("listener") == default_port for r in obs.route(route)):
            raise AssertionError(f"{call} went to Ollama's default port 11434, not to the server named by "
                                 "OLLAMA_HOST; read os.environ['OLLAMA_HOST'] when host is None")
        assert obs.route(route), (
            f"{call} did not reach the server named by OLLAMA_HOST (requests seen there: "
            f"{describe_records(obs.records)}); read os.environ['OLLAMA_HOST'] when host is None")


def test_server_down_error(lab):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    for target, args, kwargs in (("list_models", (), {"host": url}),
                                 ("generate", ("hi",), {"model": "smollm2:135m", "host": url})):
        call = call_text(target, *args, **kwargs) + " with nothing listening there"
        message = expect_connection_error(lab, call, f"ollama_client.{target}", *args, url_part=url, **kwargs)
        assert f"127.0.0.1:{port}" in message, (
            f"{call} raised ConnectionError({show(message)}); the message must name the URL it tried ({url}) "
            "so the student sees which server is down")


def test_default_port_11434(lab, ollama_server):
    env = {"OLLAMA_HOST": None}
    call = "list_models() with OLLAMA_HOST unset"
    if lab.own_network:  # the worker's own loopback, where 11434 is relayed to this tier's server
        try:
            obs = observe(lab, ollama_server, "ollama_client.list_models", env=env)
        except StudentRaised as exc:
            raise AssertionError(
                f"{call} raised {exc.exc_type}: {exc.exc_message[:200]}; with neither host nor OLLAMA_HOST, "
                "connect to Ollama's default http://localhost:11434 (8000 is vLLM's port)") from None
        default_port = default_port_socket(ollama_server)
        assert [r for r in obs.route("api-tags") if r.extra.get("listener") in (default_port, None)], (
            f"{call} did not reach the Ollama server listening on the default port 11434 (requests seen there: "
            f"{describe_records(obs.records)}); with neither host nor OLLAMA_HOST, use http://localhost:11434")
        return
    if listening(11434):
        pytest.skip("something listens on port 11434 here (a real Ollama?), so the default cannot be probed")
    message = expect_connection_error(lab, call, "ollama_client.list_models", url_part="localhost:11434", env=env)
    assert "11434" in message, (
        f"{call} raised ConnectionError({show(message)}), which does not name port 11434; with neither host nor "
        "OLLAMA_HOST, connect to Ollama's default http://localhost:11434 (8000 is vLLM's port)")
