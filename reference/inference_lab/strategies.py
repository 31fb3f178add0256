"""Measure and compare provider strategies ("auto" vs explicit providers)."""

from __future__ import annotations

import numpy as np

from .auth import get_token
from .hf_chat import chat

__all__ = ["compare_providers"]


def _short_error(exc: BaseException) -> str:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = str(exc).splitlines()[0] if str(exc) else ""
    label = type(exc).__name__ + (f" (HTTP {status})" if status else "")
    return f"{label}: {text}"[:300]


def _latency_stats(latencies: list) -> dict:
    if not latencies:
        return {
            "latency_p50_s": None,
            "latency_p95_s": None,
            "latency_mean_s": None,
            "latency_stdev_s": None,
        }
    arr = np.asarray(latencies, dtype=float)
    return {
        "latency_p50_s": float(np.percentile(arr, 50)),
        "latency_p95_s": float(np.percentile(arr, 95)),
        "latency_mean_s": float(np.mean(arr)),
        # population standard deviation (numpy's default, as `vllm bench serve`): 0.0 for one value
        "latency_stdev_s": float(np.std(arr)),
    }


def compare_providers(messages, *, model, providers=("auto",), runs=5, timeout=30.0) -> list:
    """Send exactly ``runs`` chat requests to each provider (in order), without retries.

    One dict per provider: ``provider, runs, successes, failures, success_rate`` and the
    ``latency_p50_s / latency_p95_s / latency_mean_s / latency_stdev_s`` of the successful runs
    (``None`` when nothing succeeded). A failed run is a failure, never retried. Extras:
    ``latencies_s`` (successful runs, in order) and ``errors`` (one line per failure).
    """
    runs = int(runs)
    if runs < 1:
        raise ValueError("runs must be at least 1")
    if isinstance(providers, str):
        providers = (providers,)
    get_token()  # no token: say so once, instead of counting every run as a failure

    report = []
    for provider in providers:
        latencies: list = []
        errors: list = []
        for _ in range(runs):
            try:
                result = chat(messages, model=model, provider=provider, timeout=timeout)
            except Exception as exc:  # any failed run counts as a failure
                errors.append(_short_error(exc))
                continue
            latencies.append(float(result["latency_s"]))
        successes = len(latencies)
        entry = {
            "provider": provider,
            "runs": runs,
            "successes": successes,
            "failures": runs - successes,
            "success_rate": successes / runs,
        }
        entry.update(_latency_stats(latencies))
        entry["latencies_s"] = latencies
        entry["errors"] = errors
        report.append(entry)
    return report
