"""Chat inference through Hugging Face Inference Providers.

Three ways to call the same models:

- ``chat``         ``huggingface_hub.InferenceClient(provider=..., api_key=token).chat_completion(...)``
- ``chat_openai``  the ``openai`` client pointed at the router's OpenAI-compatible API
                   (``openai.OpenAI(base_url="https://router.huggingface.co/v1", api_key=token)``)
- ``stream_chat``  ``chat_completion(..., stream=True)``, measuring time to first token (TTFT)

Times are seconds as floats: take ``time.perf_counter()`` just before the request and after it.
Token counts come from the server's ``usage`` (``prompt_tokens``, ``completion_tokens``): they are
model tokens, not characters or words.
"""

from __future__ import annotations

__all__ = ["chat", "chat_openai", "stream_chat"]


def chat(
    messages,
    *,
    model,
    provider="auto",
    max_tokens=256,
    temperature=0.0,
    timeout=30.0,
) -> dict:
    """One chat completion through ``InferenceClient``.

    ``messages`` is an OpenAI-style list such as ``[{"role": "user", "content": "Hi"}]``;
    ``model`` a Hub model id (``"meta-llama/Llama-3.1-8B-Instruct"``); ``provider`` a provider name
    (``"together"``, ``"novita"``, ``"hf-inference"`` ...) or ``"auto"`` (the router picks).

    Returns ``{"text", "model", "provider", "latency_s", "usage": {"prompt_tokens",
    "completion_tokens"}}``. ``provider`` is the one you asked for ("auto" stays "auto").

    TODO:
      - token = ``auth.get_token()``; ``InferenceClient(provider=provider, api_key=token,
        timeout=timeout)``; call ``client.chat_completion(messages, model=model,
        max_tokens=max_tokens, temperature=temperature)``.
      - text: ``output.choices[0].message.content``; usage from ``output.usage``.
      - Let errors propagate (``HfHubHTTPError`` has ``.response.status_code`` and
        ``.response.headers``): ``failover.py`` builds on them.
      - Never print or log the token.
    """
    raise NotImplementedError("TODO: implement hf_chat.chat")


def chat_openai(messages, *, model, max_tokens=256, timeout=30.0) -> dict:
    """One chat completion through the router's OpenAI-compatible ``/v1`` with the ``openai`` client.

    Same keys as ``chat``. ``model`` may pick a provider with a suffix,
    ``"meta-llama/Llama-3.1-8B-Instruct:together"``; without one the router chooses ("auto").

    TODO:
      - ``openai.OpenAI(base_url=..., api_key=get_token(), timeout=timeout, max_retries=0)``.
        base_url: the environment variable ``OPENAI_BASE_URL`` if set, else
        ``"https://router.huggingface.co/v1"``.
      - ``max_retries=0``: the openai client silently retries 408/409/429/5xx twice by default;
        one call here should be one request.
      - ``client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens)``.
    """
    raise NotImplementedError("TODO: implement hf_chat.chat_openai")


def stream_chat(messages, *, model, provider="auto", max_tokens=256) -> dict:
    """A streamed chat completion.

    Returns ``{"text", "ttft_s", "latency_s", "chunks"}``:

    - ``ttft_s``: from sending the request to the first chunk that carries **content**. Some
      providers first send a chunk with only ``{"role": "assistant"}`` - that is not a token yet.
    - ``latency_s``: from sending the request to the end of the stream.
    - ``chunks``: the number of chunks with content. A chunk may hold several tokens, so this is
      not a token count.

    TODO: ``client.chat_completion(messages, model=model, max_tokens=max_tokens, stream=True)``
    returns an iterator; for each chunk read ``chunk.choices[0].delta.content`` (``choices`` may be
    empty, e.g. in a final usage chunk).
    """
    raise NotImplementedError("TODO: implement hf_chat.stream_chat")
