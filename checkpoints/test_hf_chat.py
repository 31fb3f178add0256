"""Checkpoint `hf_chat`: chat inference via Hugging Face Inference Providers.

``inference_lab.hf_chat`` must chat through ``huggingface_hub.InferenceClient`` with the provider it is
given (an explicit one, or ``"auto"``: the router picks), through the ``openai`` client on the
router's OpenAI-compatible ``/v1``, and stream with a time to first token (TTFT) measured to the first
chunk that carries content. The ground truth is the Hugging Face simulator's request log
(docs/hf-sim.md): which provider was called, for which model, with which Authorization header, what
it answered (text, token counts) and when (arrival, first content, end). Times are judged with the
tolerances of ``grading/thresholds.toml``.

The simulator is paced per test: each provider's latency (or TTFT and inter-token gap) is set here,
different between calls, so that only a measured time can agree with the log.
"""

from __future__ import annotations

from typing import Any

from grading.hf_checks import (CHAT_ROUTES, Observed, auth_problem, describe_records, judge_duration,
                               missing_keys, observe, show)

CHAT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
# Two explicit providers (neither is the one "auto" picks for CHAT_MODEL: that is novita, the first
# in the model's provider mapping), paced differently: a made-up or constant latency cannot agree
# with both.
EXPLICIT_CASES = (("fireworks-ai", 0.06), ("nscale", 0.45))     # (provider, seconds the provider takes)
AUTO_SECONDS = 0.12
OPENAI_PROVIDER, OPENAI_SECONDS = "hf-inference", 0.10
# Providers whose streams open with a role-only chunk ({"role": "assistant", "content": ""}, see
# DESIGN.md): paced so that chunk comes long before the first content.
TTFT_PROVIDER, TTFT_S, ITL_S = "fireworks-ai", 0.30, 0.012
ROLE_CHUNK_AT = 0.0        # the role-only chunk goes out at once, 0.3 s before the first content
CHUNKS_PROVIDER = "cerebras"
CHAT_KEYS = ("text", "model", "provider", "latency_s", "usage")
STREAM_KEYS = ("text", "ttft_s", "latency_s", "chunks")
# How each result must look, as the missing-keys message says it ("it must return a ...").
CHAT_RESULT = "dict with text, model, provider, latency_s and usage {prompt_tokens, completion_tokens}"
STREAM_RESULT = "dict with text, ttft_s, latency_s and chunks"


def _messages(topic: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You are a concise assistant."},
            {"role": "user", "content": f"In two sentences: {topic}"}]


def _call_text(name: str, messages: list, **kwargs: Any) -> str:
    parts = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    return f"{name}(messages, {parts})"


def _observed(lab: Any, sim: Any, target: str, messages: list, keys: tuple[str, ...], what_to_return: str,
              token: str, **kwargs: Any) -> tuple[str, Observed, Any]:
    """Call ``target`` (e.g. ``"hf_chat.chat"``) while watching the simulator; the result must have ``keys``.

    Returns (the call as text, what was observed, the result).
    """
    call = _call_text(target.rsplit(".", 1)[-1], messages, **kwargs)
    obs = observe(lab, sim, target, messages, **kwargs)
    result = obs.value
    missing = missing_keys(result, keys)
    assert not missing, (
        f"{call} returned {show(result, [token])}, without {', '.join(missing)}; it must return a "
        f"{what_to_return}")
    return call, obs, result


# -- the simulator ---------------------------------------------------------------------------------
def _pace(sim: Any, provider: str, seconds: float) -> None:
    """Make ``provider`` answer a non-streamed request in ``seconds`` (real seconds, after time_scale)."""
    scale = float(sim.time_scale) or 1.0
    sim.set_behavior(provider, latency={"kind": "constant", "mean_s": seconds / scale, "stdev_s": 0.0})


def _pace_stream(sim: Any, provider: str, ttft_s: float, itl_s: float, role_chunk_at: float) -> None:
    """TTFT and inter-token gap in real seconds; the role-only chunk at ``role_chunk_at`` x TTFT."""
    scale = float(sim.time_scale) or 1.0
    sim.set_behavior(provider, ttft={"kind": "constant", "mean_s": ttft_s / scale},
                     itl={"kind": "constant", "mean_s": itl_s / scale}, role_chunk_at=role_chunk_at)


def _sent_text(sim: Any, rec: Any) -> str:
    """The reply text the simulator sent for this request: its deterministic reply to what it received."""
    from grading.sims.text import generate_reply

    body = rec.body if isinstance(rec.body, dict) else {}
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    return generate_reply(sim.seed, rec.model, body.get("messages") or [], max_tokens=max_tokens).text


def _content_chunks(rec: Any) -> int:
    """How many chunks with content the simulator streamed (it logs when each one left)."""
    return len((rec.extra or {}).get("content_times") or [])


def _auto_choice(sim: Any, model: str) -> str | None:
    """The provider the router picks for ``model`` under "auto": the first live one of its mapping."""
    try:
        return sim.auto_provider(model, "conversational")
    except Exception:  # noqa: BLE001 - then only the log's requested_provider tells
        return None


# -- shared checks ---------------------------------------------------------------------------------
def _the_chat_request(obs: Observed, call: str, token: str) -> Any:
    chats = obs.routed(*CHAT_ROUTES)
    assert chats, (
        f"{call} returned, but no chat request reached the (simulated) Hugging Face router while it ran "
        f"(requests seen: {describe_records(obs.records, token)}); send the request with "
        "huggingface_hub.InferenceClient (or the openai client for chat_openai) to the real hosts — the "
        "grader redirects them — and do not return a made-up or cached answer")
    assert len(chats) == 1, (
        f"{call} made {len(chats)} chat requests for one call ({describe_records(chats, token)}); one call "
        "must be one request (no retries, no warm-up request)")
    rec = chats[0]
    problem = auth_problem(rec, token)
    assert problem is None, f"the chat request of {call} was not authenticated with your token: {problem}"
    assert rec.status == 200, (
        f"the chat request of {call} was answered with status {rec.status} ({describe_records([rec], token)}); "
        "check the model id and the provider name, and send a valid OpenAI-style chat request")
    return rec


def _check_answer(sim: Any, result: Any, rec: Any, call: str, token: str) -> None:
    """text and usage of a chat result against what the simulator sent."""
    sent = _sent_text(sim, rec)
    text = result["text"]
    assert isinstance(text, str), (
        f"{call} returned text={show(text, [token])}; it must be the reply as a str "
        "(output.choices[0].message.content)")
    assert text == sent, (
        f"{call} returned text={show(text, [token])}, but the provider answered {show(sent)}; return "
        "choices[0].message.content exactly as received (no stripping, no rewording)")
    usage = result["usage"]
    want = {"prompt_tokens": rec.tokens_in, "completion_tokens": rec.tokens_out}
    assert isinstance(usage, dict), (
        f"{call} returned usage={show(usage, [token])}; it must be a dict "
        f"{{'prompt_tokens': int, 'completion_tokens': int}} taken from the response's usage")
    got = {key: usage.get(key) for key in want}
    assert got == want, (
        f"{call} returned usage {got}, but the server reported {want}; copy the token counts from the "
        "response's usage (output.usage.prompt_tokens / completion_tokens) — never count characters or "
        "words yourself")


# -- chat with an explicit provider ----------------------------------------------------------------
def test_chat_explicit_provider(lab, hf_sim, thresholds, canary_token):
    for provider, seconds in EXPLICIT_CASES:
        _pace(hf_sim, provider, seconds)
    for number, (provider, seconds) in enumerate(EXPLICIT_CASES):
        messages = _messages(f"why does provider choice matter? (case {number})")
        kwargs = dict(model=CHAT_MODEL, provider=provider, max_tokens=48)
        call, obs, result = _observed(lab, hf_sim, "hf_chat.chat", messages, CHAT_KEYS, CHAT_RESULT, canary_token,
                                       **kwargs)
        rec = _the_chat_request(obs, call, canary_token)
        requested = (rec.extra or {}).get("requested_provider")
        assert rec.provider == provider and requested != "auto", (
            f"{call} must call the provider {provider!r}, but the request went to "
            f"{describe_records([rec], canary_token)}; pass the provider on: "
            "InferenceClient(provider=provider, ...) — do not leave it at the default 'auto'")
        assert rec.model == CHAT_MODEL, (
            f"{call} asked the provider for the model {rec.model!r}, not {CHAT_MODEL!r}; pass model=model to "
            "chat_completion")
        assert result["model"] == CHAT_MODEL, (
            f"{call} returned model={show(result['model'])}; return the model that was asked for ({CHAT_MODEL!r})")
        assert result["provider"] == provider, (
            f"{call} returned provider={show(result['provider'])}; return the provider that was asked for "
            f"({provider!r})")
        _check_answer(hf_sim, result, rec, call, canary_token)
        problem = judge_duration(f"{call}['latency_s']", result["latency_s"], server_s=rec.duration_s,
                                 thresholds=thresholds, what=f"the request to {provider!r}")
        assert problem is None, problem


# -- chat with provider="auto" ---------------------------------------------------------------------
def test_chat_auto_provider(lab, hf_sim, thresholds, canary_token):
    choice = _auto_choice(hf_sim, CHAT_MODEL)
    if choice:
        _pace(hf_sim, choice, AUTO_SECONDS)
    messages = _messages("what does the router do with provider auto?")
    kwargs = dict(model=CHAT_MODEL, provider="auto", max_tokens=40)
    call, obs, result = _observed(lab, hf_sim, "hf_chat.chat", messages, CHAT_KEYS, CHAT_RESULT, canary_token,
                                   **kwargs)
    rec = _the_chat_request(obs, call, canary_token)
    requested = (rec.extra or {}).get("requested_provider")
    assert requested == "auto", (
        f"{call} must let the Hugging Face router choose the provider, but the request named one itself "
        f"({describe_records([rec], canary_token)}); with provider='auto' create "
        "InferenceClient(provider='auto', ...) (its default) and send the model without a provider — "
        "do not pick or hard-code a provider yourself")
    assert choice is None or rec.provider == choice, (
        f"{call} was served by {rec.provider!r}, but for {CHAT_MODEL!r} the router picks {choice!r} (the "
        "first live provider of the model's mapping); send the model id exactly as given")
    assert rec.model == CHAT_MODEL, (
        f"{call} asked for the model {rec.model!r}, not {CHAT_MODEL!r}; pass model=model to chat_completion")
    assert result["provider"] == "auto", (
        f"{call} returned provider={show(result['provider'])}; the result's provider is the one asked for: "
        "'auto' stays 'auto' (the lab contract), even though the router chose "
        f"{rec.provider!r} behind the scenes")
    assert result["model"] == CHAT_MODEL, (
        f"{call} returned model={show(result['model'])}; return the model that was asked for ({CHAT_MODEL!r})")
    _check_answer(hf_sim, result, rec, call, canary_token)
    problem = judge_duration(f"{call}['latency_s']", result["latency_s"], server_s=rec.duration_s,
                             thresholds=thresholds, what="the request")
    assert problem is None, problem


# -- the OpenAI-compatible router ------------------------------------------------------------------
def test_chat_openai(lab, hf_sim, thresholds, canary_token):
    _pace(hf_sim, OPENAI_PROVIDER, OPENAI_SECONDS)
    model = f"{CHAT_MODEL}:{OPENAI_PROVIDER}"
    messages = _messages("why is an OpenAI-compatible API useful?")
    kwargs = dict(model=model, max_tokens=40)
    call, obs, result = _observed(lab, hf_sim, "hf_chat.chat_openai", messages, CHAT_KEYS, CHAT_RESULT,
                                   canary_token, **kwargs)
    rec = _the_chat_request(obs, call, canary_token)
    route = (rec.extra or {}).get("route")
    assert route == "router-chat" and rec.path.rstrip("/").endswith("/v1/chat/completions"), (
        f"{call} must call the router's OpenAI-compatible endpoint (https://router.huggingface.co/v1, "
        f"POST /v1/chat/completions), but it called {describe_records([rec], canary_token)}; use "
        "openai.OpenAI(base_url='https://router.huggingface.co/v1', api_key=token)")
    agent = (rec.headers or {}).get("user-agent", "")
    assert agent.startswith("OpenAI/Python"), (
        f"{call} must use the openai Python client, but the request came from {agent[:60]!r}; create "
        "openai.OpenAI(base_url='https://router.huggingface.co/v1', api_key=token) and call "
        "client.chat.completions.create(...)")
    sent_model = rec.body.get("model") if isinstance(rec.body, dict) else None
    assert sent_model == model, (
        f"{call} sent model={sent_model!r}; send the model exactly as given (here {model!r}: the "
        "':provider' suffix tells the router which provider to use)")
    assert rec.provider == OPENAI_PROVIDER, (
        f"{call} was served by {rec.provider!r}, not {OPENAI_PROVIDER!r}; keep the ':{OPENAI_PROVIDER}' "
        "suffix of the model")
    assert result["model"] == model, (
        f"{call} returned model={show(result['model'])}; return the model that was asked for ({model!r})")
    _check_answer(hf_sim, result, rec, call, canary_token)
    problem = judge_duration(f"{call}['latency_s']", result["latency_s"], server_s=rec.duration_s,
                             thresholds=thresholds, what="the request")
    assert problem is None, problem


# -- streaming -------------------------------------------------------------------------------------
def _stream(lab: Any, sim: Any, provider: str, topic: str, token: str) -> tuple[str, dict, Any]:
    messages = _messages(topic)
    kwargs = dict(model=CHAT_MODEL, provider=provider, max_tokens=24)
    call, obs, result = _observed(lab, sim, "hf_chat.stream_chat", messages, STREAM_KEYS, STREAM_RESULT, token,
                                  **kwargs)
    rec = _the_chat_request(obs, call, token)
    assert (rec.extra or {}).get("stream") is True, (
        f"{call} did not stream: the request had no \"stream\": true; call "
        "chat_completion(..., stream=True) and iterate over the chunks")
    assert rec.provider == provider, (
        f"{call} must call the provider {provider!r}, but the request went to "
        f"{describe_records([rec], token)}; pass InferenceClient(provider=provider, ...)")
    return call, result, rec


def test_stream_chat_ttft(lab, hf_sim, thresholds, canary_token):
    _pace_stream(hf_sim, TTFT_PROVIDER, TTFT_S, ITL_S, ROLE_CHUNK_AT)
    call, result, rec = _stream(lab, hf_sim, TTFT_PROVIDER, "what is time to first token?", canary_token)
    assert rec.t_first_content is not None and rec.t_end is not None, (
        f"the stream of {call} ended before any content was sent ({describe_records([rec], canary_token)}); "
        "read the stream to its end")
    truth = rec.t_first_content - rec.t_start
    problem = judge_duration(
        f"{call}['ttft_s']", result["ttft_s"], server_s=truth, thresholds=thresholds,
        overhead_key="ttft_client_overhead_s", what="the first chunk with content",
        how=("when the first chunk whose delta has content arrives — this provider first sends a chunk "
             "with only the role (delta.content is '' or None): that one does not count"))
    assert problem is None, problem
    problem = judge_duration(f"{call}['latency_s']", result["latency_s"], server_s=rec.duration_s,
                             thresholds=thresholds, what="the whole stream",
                             how="after the last chunk has arrived")
    assert problem is None, problem


def test_stream_chat_text_and_chunks(lab, hf_sim, canary_token):
    call, result, rec = _stream(lab, hf_sim, CHUNKS_PROVIDER, "why stream tokens?", canary_token)
    sent = _sent_text(hf_sim, rec)
    text = result["text"]
    assert text == sent, (
        f"{call} returned text={show(text, [canary_token])}, but the streamed reply was {show(sent)}; "
        "join delta.content of every chunk, in order (skip chunks whose content is empty or None)")
    chunks = result["chunks"]
    want = _content_chunks(rec)
    assert isinstance(chunks, int) and not isinstance(chunks, bool), (
        f"{call} returned chunks={show(chunks)}; it must be an int: the number of chunks with content")
    assert chunks == want, (
        f"{call} returned chunks={chunks}, but the provider sent {want} chunks with content (and others "
        "without: a first chunk with only the role, a last one with only usage or finish_reason); count "
        "only the chunks whose delta.content is a non-empty string")
