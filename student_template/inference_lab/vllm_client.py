"""vLLM: offline generation and its OpenAI-compatible server.

vLLM's server listens on port 8000 by default (11434 is Ollama's). It needs no API key: give the
``openai`` client a placeholder such as ``"EMPTY"`` - never your Hugging Face token. When nothing
answers, raise ``ConnectionError`` with a message that names the URL.
"""

from __future__ import annotations

__all__ = ["serve_command", "offline_generate", "chat", "complete"]


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
    """The command line (a list of strings) that starts vLLM's OpenAI-compatible server.

    Example: ``["vllm", "serve", "Qwen/Qwen2.5-0.5B-Instruct", "--host", "127.0.0.1",
    "--port", "8000"]``.

    TODO: start with ``["vllm", "serve", model, "--host", host, "--port", str(port)]``; add
    ``--served-model-name``, ``--max-model-len``, ``--gpu-memory-utilization`` (each followed by its
    value as a string) only when given; then append ``extra_args``. Raise ``ValueError`` for
    port 11434 - that port belongs to Ollama.
    """
    raise NotImplementedError("TODO: implement vllm_client.serve_command")


def offline_generate(prompts, *, model, max_tokens=64, temperature=0.0, **engine_kwargs) -> list:
    """Generate in-process with ``vllm.LLM``; return the texts in the order of ``prompts``.

    TODO: import vllm inside the function (``from vllm import LLM, SamplingParams``: the rest of the
    package must work without vllm installed); ``LLM(model=model, **engine_kwargs)``;
    ``llm.generate(prompts, SamplingParams(max_tokens=max_tokens, temperature=temperature))``;
    each output's ``.outputs[0].text``. A script doing this needs an
    ``if __name__ == "__main__":`` guard (vLLM starts worker processes).
    """
    raise NotImplementedError("TODO: implement vllm_client.offline_generate")


def chat(messages, *, model, base_url="http://localhost:8000/v1", max_tokens=256) -> dict:
    """``POST /v1/chat/completions`` on the vLLM server.

    Returns ``{"text", "latency_s", "usage": {"prompt_tokens", "completion_tokens"}}``.
    ``model`` is the served model name (``--served-model-name``, else the model path/id).
    """
    raise NotImplementedError("TODO: implement vllm_client.chat")


def complete(prompt, *, model, base_url="http://localhost:8000/v1", max_tokens=64) -> dict:
    """``POST /v1/completions`` (plain text completion, no chat template).

    Returns ``{"text", "latency_s", "usage": {"prompt_tokens", "completion_tokens"}}``;
    the text is ``response.choices[0].text``.
    """
    raise NotImplementedError("TODO: implement vllm_client.complete")
