"""Known-bad variants of reference/ for the `vllm` checkpoint (graded by tests/test_checkpoint_vllm.py).

Loaded by ``mutants.py`` (``MUTANTS`` here joins its registry).
"""

from __future__ import annotations

from mutants import Mutant

CLIENT = "inference_lab/vllm_client.py"
_OLLAMA_CHECK = ('    if port == OLLAMA_PORT:\n        raise ValueError(\n            "port 11434 is Ollama\'s default port; '
                 'serve vLLM on its own port (default 8000)"\n        )\n')
_SERVED = '    if served_model_name is not None:\n        cmd += ["--served-model-name", str(served_model_name)]\n'
_COMPLETE = ("        with _openai_client(base_url) as client:\n            start = time.perf_counter()\n"
             "            response = client.completions.create(model=model, prompt=prompt, max_tokens=max_tokens)\n")

MUTANTS = [
    Mutant(
        "vllm_serve_on_ollama_port", "vllm",
        "the server command defaults to 11434 (Ollama's port) and accepts it",
        edits=[(CLIENT, "    port=8000,\n", "    port=11434,  # mistake: Ollama's port\n"),
               (CLIENT, _OLLAMA_CHECK, "")],
        expect_lost=("test_serve_command", "test_serve_command_refuses_ollama_port"),
        expect_message={"test_serve_command": ("port=11434", "8000"),
                        "test_serve_command_refuses_ollama_port": ("ValueError", "Ollama")},
    ),
    Mutant(
        "vllm_no_served_model_name", "vllm",
        "serve_command() drops --served-model-name, so the server answers only to the model path",
        edits=[(CLIENT, _SERVED, "    # mistake: served_model_name ignored\n")],
        expect_lost=("test_serve_command", "test_serve_command_really_starts"),
        expect_message={"test_serve_command": ("served_model_name", "--served-model-name")},
    ),
    Mutant(
        "vllm_port_ignored", "vllm",
        "serve_command() always serves on 8000, whatever port was asked for",
        edits=[(CLIENT, '"--port", str(port)]', '"--port", "8000"]  # mistake: the port asked for is ignored')],
        expect_lost=("test_serve_command", "test_serve_command_really_starts"),
        expect_message={"test_serve_command": ("port=8000", "8123", "--port")},
    ),
    Mutant(
        "vllm_offline_out_of_order", "vllm",
        "offline outputs sorted by request_id as a string ('10' < '2'), so they leave prompt order",
        edits=[(CLIENT, "outputs.sort(key=lambda o: int(o.request_id))",
                "outputs.sort(key=lambda o: o.request_id)  # mistake: string order")],
        expect_lost=("test_offline_generate",),
        expect_message={"test_offline_generate": ("out of order", "int(request_id)")},
    ),
    Mutant(
        "vllm_complete_via_chat", "vllm",
        "complete() sends the prompt as a chat message to /v1/chat/completions",
        edits=[(CLIENT, "            response = client.completions.create(model=model, prompt=prompt, "
                        "max_tokens=max_tokens)\n",
                "            response = client.chat.completions.create(  # mistake: the chat endpoint\n"
                "                model=model, messages=[{\"role\": \"user\", \"content\": prompt}], "
                "max_tokens=max_tokens)\n"),
               (CLIENT, '        "text": response.choices[0].text or "",\n',
                '        "text": response.choices[0].message.content or "",\n')],
        expect_lost=("test_complete",),
        expect_message={"test_complete": ("chat endpoint", "/v1/completions")},
    ),
    Mutant(
        "vllm_complete_wrong_endpoint", "vllm",
        "complete() drops /v1 from the base URL, so it posts to /completions (404)",
        edits=[(CLIENT, _COMPLETE, _COMPLETE.replace(
            "_openai_client(base_url) as client:",
            '_openai_client(base_url.removesuffix("/v1")) as client:  # mistake: no /v1'))],
        expect_lost=("test_complete",),
        expect_message={"test_complete": ("NotFoundError", "POST /completions", "404")},
    ),
    Mutant(
        "vllm_chat_ignores_max_tokens", "vllm",
        "chat() does not pass max_tokens on, so the server's default length applies",
        edits=[(CLIENT, "                model=model, messages=list(messages), max_tokens=max_tokens\n",
                "                model=model, messages=list(messages)  # mistake: max_tokens not sent\n")],
        expect_lost=("test_chat",),
        expect_message={"test_chat": ("max_tokens=None", "pass max_tokens=9")},
    ),
]
