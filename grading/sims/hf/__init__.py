"""The Hugging Face simulator (issue 5; interface in docs/hf-sim.md).

The Hub's model API (with the provider mapping), the inference router's
OpenAI-compatible ``/v1`` and the per-provider routes ``huggingface_hub``'s
InferenceClient takes, for chat (streamed and not) and text-to-image — wire
formats, stream framing and errors as the real services answer, pacing and
faults from ``catalogue.toml`` and the control API, every request logged.

Usage::

    from grading.sims.hf import create
    hf = create(tier="sim", seed=7).start()
    hf.url, hf.env()                 # {"HF_ENDPOINT": url, "OPENAI_BASE_URL": url + "/v1"}
    hf.set_behavior("together", latency={"kind": "constant", "mean_s": 0.4})
    hf.script("together", [{"kind": "status", "status": 429, "headers": {"Retry-After": "1"}}, "ok"])
    hf.log.records(provider="together")
    hf.stop()
"""

from __future__ import annotations

from typing import Any

from ...services import ServiceNotAvailable
from ..log import RequestLog
from .server import CDN_HOSTS, HFSimulator

__all__ = ["create", "HFSimulator", "CDN_HOSTS"]


def create(*, tier: str, seed: int, host: str = "127.0.0.1", port: int = 0, log: RequestLog | None = None,
           unix_path: str | None = None, canary: str | None = None, **kwargs: Any) -> HFSimulator:
    """The ``hf`` service for ``tier`` (not started).

    ``sim`` and ``local`` serve the simulator (there is no local Hugging Face);
    ``live`` uses the real one, so the simulator is not available there.
    ``canary``: the only token accepted (any ``hf_…`` token when None); it can
    also be set later as ``hf.expected_token``. Extra keyword arguments
    (``catalogue``, ``time_scale``) go to :class:`HFSimulator`.
    """
    if tier == "live":
        raise ServiceNotAvailable("the live tier uses the real Hugging Face, not the simulator")
    if tier not in ("sim", "local"):
        raise ServiceNotAvailable(f"no hf service for tier {tier!r}")
    return HFSimulator(seed=seed, host=host, port=port, log=log, unix_path=unix_path, canary=canary, **kwargs)
