"""The vLLM-style OpenAI-compatible server of the grader (issue 7; tier ``sim``).

vLLM 0.32.0's surface (``/health``, ``/version``, ``/v1/models``, chat and text completions with SSE
streaming and ``stream_options.include_usage``, ``/tokenize``, ``/detokenize``, ``/metrics``, its error
bodies), paced to a configured TTFT and inter-token latency with continuous batching (engine.py), every
request logged with its true first-token/last-token times and token counts. In the worker, a stand-in
``vllm`` package (``standin/vllm``) answers ``vllm.LLM(...).generate(...)`` and records what it was asked.

Usage::

    from grading.sims.openai_server import create
    server = create(tier="sim", seed=7).start()
    server.url, server.model.name, server.truth()
    server.set_behavior(ttft_s=0.2, itl_s=0.02, batch_size=4)
    server.log.records(service="vllm", path="/v1/chat/completions")
    server.stop()

``python -m grading serve vllm [--port 8000]`` runs it in the foreground.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ...services import ServiceNotAvailable

if TYPE_CHECKING:
    from ..log import RequestLog
    from .server import VLLMServer

__all__ = ["create"]


def create(*, tier: str, seed: int, host: str = "127.0.0.1", port: int = 0, log: "RequestLog | None" = None,
           unix_path: str | None = None, **kwargs: Any) -> "VLLMServer":
    """The ``vllm`` service for ``tier`` (not started); ServiceNotAvailable where it cannot run.

    ``sim``: the simulator. ``local``: real vLLM-CPU behind a logging proxy (grading/engines/vllm_local.py;
    ServiceNotAvailable with the reason when vllm-cpu is not installed); ``live`` uses the student's own
    vLLM on port 8000.
    """
    if tier == "live":
        raise ServiceNotAvailable("the live tier uses the vLLM server running on this machine (port 8000)")
    if tier == "local":
        from ...engines import vllm_cpu

        why = vllm_cpu.unavailable()
        if why is not None:
            raise ServiceNotAvailable(f"tier local needs the real vLLM-CPU engine: {why}")
        from ...engines.vllm_local import VLLMLocalService

        return VLLMLocalService(seed=seed, host=host, port=port, log=log, unix_path=unix_path,  # type: ignore
                                **kwargs)
    if tier != "sim":
        raise ServiceNotAvailable(f"no vllm service for tier {tier!r}")
    from .server import VLLMServer

    return VLLMServer(seed=seed, host=host, port=port, log=log, unix_path=unix_path, **kwargs)
