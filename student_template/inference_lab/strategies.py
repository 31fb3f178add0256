"""Measure and compare provider strategies ("auto" vs explicit providers)."""

from __future__ import annotations

__all__ = ["compare_providers"]


def compare_providers(messages, *, model, providers=("auto",), runs=5, timeout=30.0) -> list:
    """Send exactly ``runs`` chat requests to each provider and summarise what happened.

    Returns one dict per provider, in the order given::

        {"provider", "runs", "successes", "failures", "success_rate",
         "latency_p50_s", "latency_p95_s", "latency_mean_s", "latency_stdev_s"}

    TODO:
      - For each provider, call ``hf_chat.chat(messages, model=model, provider=p, timeout=timeout)``
        ``runs`` times. A run that raises is a failure - do not retry it (and if you use the
        ``openai`` client, pass ``max_retries=0``: it retries by itself otherwise).
      - Latency statistics use the successful runs only: ``numpy.percentile(latencies, 50)`` and
        ``95`` (linear interpolation), mean, standard deviation (``numpy.std``; 0.0 for a single
        success). With no success at all they are ``None``.
      - ``success_rate = successes / runs``.
    """
    raise NotImplementedError("TODO: implement strategies.compare_providers")
