"""Known-bad variants of reference/ for the `ollama` checkpoint (graded by tests/test_checkpoint_ollama.py).

Loaded by ``mutants.py`` (``MUTANTS`` here joins its registry).
"""

from __future__ import annotations

from mutants import Mutant

CLIENT = "inference_lab/ollama_client.py"

MUTANTS = [
    Mutant(
        "ollama_ns_as_seconds", "ollama",
        "tokens/sec computed with eval_duration taken as seconds (it is nanoseconds)",
        edits=[(CLIENT, "    return eval_count / (eval_duration_ns / 1e9)\n",
                "    return eval_count / eval_duration_ns  # mistake: eval_duration is in nanoseconds\n")],
        expect_lost=("test_generate_tokens_per_s", "test_chat_sends_history"),
        expect_message={"test_generate_tokens_per_s": ("tokens_per_s", "nanoseconds"),
                        "test_chat_sends_history": ("tokens_per_s", "nanoseconds")},
    ),
    Mutant(
        "ollama_always_pulls", "ollama",
        "ensure_model() pulls every time, present or not",
        edits=[(CLIENT, "    if _with_tag(model) in present:\n        return False\n",
                "    # mistake: no check, always pull\n")],
        expect_lost=("test_ensure_model_pulls_only_when_missing",),
        expect_message={"test_ensure_model_pulls_only_when_missing": ("already on the server", "pulled again")},
    ),
    Mutant(
        "ollama_wrong_port", "ollama",
        "the default host is vLLM's port 8000 instead of Ollama's 11434",
        edits=[(CLIENT, 'DEFAULT_HOST = "http://localhost:11434"\n',
                'DEFAULT_HOST = "http://localhost:8000"  # mistake: vLLM\'s port\n')],
        expect_lost=("test_default_port_11434",),
        expect_message={"test_default_port_11434": ("11434",)},
    ),
    Mutant(
        "ollama_ignores_env", "ollama",
        "OLLAMA_HOST is ignored: host None always means localhost:11434",
        edits=[(CLIENT, '    return _normalize_host(host or os.environ.get("OLLAMA_HOST") or DEFAULT_HOST)\n',
                "    return _normalize_host(host or DEFAULT_HOST)  # mistake: OLLAMA_HOST ignored\n")],
        expect_lost=("test_ollama_host_from_env",),
        expect_message={"test_ollama_host_from_env": ("OLLAMA_HOST",)},
    ),
    Mutant(
        "ollama_chat_without_history", "ollama",
        "chat() sends only the last message, not the conversation",
        edits=[(CLIENT, "    msgs = [dict(m) for m in messages]\n",
                "    msgs = [dict(messages[-1])]  # mistake: only the last message\n")],
        expect_lost=("test_chat_sends_history",),
        expect_message={"test_chat_sends_history": ("whole history",)},
    ),
    Mutant(
        "ollama_ttft_at_end", "ollama",
        "the streamed TTFT is taken when the stream has ended",
        edits=[(CLIENT, "                latency = time.perf_counter() - start\n            else:\n",
                "                latency = time.perf_counter() - start\n"
                "                ttft = latency  # mistake: measured at the end of the stream\n            else:\n")],
        expect_lost=("test_stream_chat_ttft",),
        expect_message={"test_stream_chat_ttft": ("ttft_s", "first chunk with content")},
    ),
]
