"""Query a local Ollama server.

Ollama listens on http://localhost:11434 (its own port; vLLM's is 8000). Use the ``ollama``
Python client (``ollama.Client(host=...)``) for the native API and the ``openai`` client for its
OpenAI-compatible ``/v1``. The host: the ``host`` argument, else the environment variable
``OLLAMA_HOST``, else ``http://localhost:11434``.

Ollama reports durations in **nanoseconds** (``eval_duration``, ``load_duration``,
``total_duration``): divide by 1e9 for seconds. Token counts are ``eval_count`` (generated) and
``prompt_eval_count`` (prompt).

When nothing answers, raise ``ConnectionError`` with a message that names the URL (catch the
client's connection errors and re-raise).
"""

from __future__ import annotations

__all__ = ["list_models", "ensure_model", "generate", "chat", "chat_openai"]


def list_models(host=None) -> list:
    """Names of the models Ollama has locally (``GET /api/tags``), e.g. ``["llama3.2:1b"]``.

    TODO: ``ollama.Client(host=...).list()``; each entry's ``.model`` is its name.
    """
    raise NotImplementedError("TODO: implement ollama_client.list_models")


def ensure_model(model, host=None) -> bool:
    """Make sure ``model`` is available; pull it if not. Returns True if it had to pull.

    TODO: compare with ``list_models`` (``"llama3.2"`` means ``"llama3.2:latest"``); if missing,
    ``client.pull(model)`` (``POST /api/pull``) and return True; otherwise return False.
    """
    raise NotImplementedError("TODO: implement ollama_client.ensure_model")


def generate(prompt, *, model, host=None, options=None) -> dict:
    """One non-streamed ``/api/generate``.

    Returns ``{"text", "eval_count", "eval_duration_s", "tokens_per_s", "load_duration_s"}``.

    TODO: ``client.generate(model=model, prompt=prompt, options=options)``;
    ``tokens_per_s = eval_count / (eval_duration / 1e9)`` - generated tokens over the decode time
    the server measured (nanoseconds!), not over your wall clock.
    """
    raise NotImplementedError("TODO: implement ollama_client.generate")


def chat(messages, *, model, host=None, stream=False) -> dict:
    """``/api/chat``, streamed or not.

    Returns ``{"text", "ttft_s", "latency_s", "eval_count", "tokens_per_s"}``.

    TODO: ``client.chat(model=model, messages=messages, stream=stream)``. When streaming, iterate:
    ``ttft_s`` is the time to the first part whose ``message.content`` is not empty; the last part
    (``done`` true) carries ``eval_count`` and ``eval_duration``. Not streaming: ``ttft_s`` is
    ``None``.
    """
    raise NotImplementedError("TODO: implement ollama_client.chat")


def chat_openai(messages, *, model, base_url="http://localhost:11434/v1") -> dict:
    """Chat through Ollama's OpenAI-compatible API.

    Returns ``{"text", "latency_s", "usage": {"prompt_tokens", "completion_tokens"}}``.

    TODO: ``openai.OpenAI(base_url=base_url, api_key="ollama")`` - Ollama ignores the key but the
    client needs one. Never send your Hugging Face token to a local server.
    """
    raise NotImplementedError("TODO: implement ollama_client.chat_openai")
