"""vLLM: offline generation with ``vllm.LLM`` and its OpenAI-compatible server (port 8000).

``serve_command`` builds the ``vllm serve`` command line; ``chat``/``complete`` talk to the
server with the ``openai`` client. vLLM needs no API key, so a placeholder is sent (never the HF
token).
"""

from __future__ import annotations

import time

__all__ = ["serve_command", "offline_generate", "chat", "complete"]

DEFAULT_BASE_URL = "http://localhost:8000/v1"
OLLAMA_PORT = 11434
_REQUEST_TIMEOUT_S = 300.0


class VLLMUnreachable(ConnectionError, TimeoutError):
    """Nothing answered at the vLLM URL (a ``ConnectionError``; also a ``TimeoutError``)."""


def serve_command(
    model,
    *,
    host="127.0.0.1",
    port=8000,
    served_model_name=None,
    max_model_len=None,
    gpu_memory_utilization=None,
    extra_args=(),
) -> list:
    """The argv of an OpenAI-compatible vLLM server, e.g.
    ``["vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct", "--host", "127.0.0.1", "--port", "8000"]``.

    Raises ValueError for port 11434 (Ollama's) and for out-of-range values.
    """
    if not model or not str(model).strip():
        raise ValueError("model must name a Hugging Face model id or a local directory")
    port = int(port)
    if port == OLLAMA_PORT:
        raise ValueError(
            "port 11434 is Ollama's default port; serve vLLM on its own port (default 8000)"
        )
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    cmd = ["vllm", "serve", str(model), "--host", str(host), "--port", str(port)]
    if served_model_name is not None:
        cmd += ["--served-model-name", str(served_model_name)]
    if max_model_len is not None:
        if int(max_model_len) <= 0:
            raise ValueError("max_model_len must be positive")
        cmd += ["--max-model-len", str(max_model_len)]
    if gpu_memory_utilization is not None:
        value = float(gpu_memory_utilization)
        if not 0.0 < value <= 1.0:
            raise ValueError("gpu_memory_utilization is a fraction in (0, 1]")
        cmd += ["--gpu-memory-utilization", str(gpu_memory_utilization)]
    if isinstance(extra_args, str):
        raise TypeError("extra_args is a sequence of arguments, e.g. ['--dtype', 'float32']")
    cmd += [str(arg) for arg in extra_args]
    return cmd


def offline_generate(prompts, *, model, max_tokens=64, temperature=0.0, **engine_kwargs) -> list:
    """Generate with an in-process engine: ``vllm.LLM(model, **engine_kwargs).generate(...)``.

    Returns the generated texts in the order of ``prompts``. (A script doing this needs an
    ``if __name__ == "__main__":`` guard: vLLM starts worker processes.)
    """
    from vllm import LLM, SamplingParams

    if isinstance(prompts, str):
        prompts = [prompts]
    prompts = list(prompts)
    llm = LLM(model=model, **engine_kwargs)
    params = SamplingParams(max_tokens=int(max_tokens), temperature=float(temperature))
    outputs = list(llm.generate(prompts, params))
    try:
        outputs.sort(key=lambda o: int(o.request_id))
    except (TypeError, ValueError, AttributeError):
        pass  # keep the order generate() returned (it is the prompt order)
    texts = [o.outputs[0].text if o.outputs else "" for o in outputs]
    del llm
    return texts


def _openai_client(base_url: str):
    import openai

    return openai.OpenAI(
        base_url=base_url, api_key="EMPTY", max_retries=0, timeout=_REQUEST_TIMEOUT_S
    )


def _usage(usage) -> dict:
    return {
        "prompt_tokens": getattr(usage, "prompt_tokens", None),
        "completion_tokens": getattr(usage, "completion_tokens", None),
    }


def _unreachable(base_url: str, exc: BaseException) -> VLLMUnreachable:
    return VLLMUnreachable(
        f"vLLM is not answering at {base_url} ({type(exc).__name__}). Start it with "
        "`vllm serve MODEL --port 8000` and wait until /health answers."
    )


def chat(messages, *, model, base_url=DEFAULT_BASE_URL, max_tokens=256) -> dict:
    """``POST /v1/chat/completions`` -> ``{text, latency_s, usage: {prompt_tokens, completion_tokens}}``."""
    import openai

    base_url = str(base_url).rstrip("/")
    try:
        with _openai_client(base_url) as client:
            start = time.perf_counter()
            response = client.chat.completions.create(
                model=model, messages=list(messages), max_tokens=max_tokens
            )
            latency = time.perf_counter() - start
    except openai.APIConnectionError as exc:  # includes APITimeoutError
        raise _unreachable(base_url, exc) from exc
    return {
        "text": response.choices[0].message.content or "",
        "latency_s": latency,
        "usage": _usage(response.usage),
        "model": model,
    }


def complete(prompt, *, model, base_url=DEFAULT_BASE_URL, max_tokens=64) -> dict:
    """``POST /v1/completions`` -> ``{text, latency_s, usage: {prompt_tokens, completion_tokens}}``."""
    import openai

    base_url = str(base_url).rstrip("/")
    try:
        with _openai_client(base_url) as client:
            start = time.perf_counter()
            response = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens)
            latency = time.perf_counter() - start
    except openai.APIConnectionError as exc:
        raise _unreachable(base_url, exc) from exc
    return {
        "text": response.choices[0].text or "",
        "latency_s": latency,
        "usage": _usage(response.usage),
        "model": model,
    }
