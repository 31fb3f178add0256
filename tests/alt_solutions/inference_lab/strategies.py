"""Provider comparison written differently from reference/: one ``openai`` client (router /v1,
``max_retries=0``) reused for every run, the provider chosen with the ``model:provider`` suffix,
each request timed with ``time.monotonic`` around the request only; statistics from the
``statistics`` module (``quantiles(method="inclusive")`` is linear interpolation; the *sample*
standard deviation), not numpy."""

import os
import statistics
import time

from .auth import get_token

__all__ = ["compare_providers"]

ROUTER = "https://router.huggingface.co/v1"


def _percentile(values, q):
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _summary(name, runs, times):
    ok = len(times)
    return {
        "provider": name,
        "runs": runs,
        "successes": ok,
        "failures": runs - ok,
        "success_rate": ok / runs,
        "latency_p50_s": statistics.median(times) if times else None,
        "latency_p95_s": _percentile(times, 95) if times else None,
        "latency_mean_s": statistics.fmean(times) if times else None,
        "latency_stdev_s": (statistics.stdev(times) if ok > 1 else 0.0) if times else None,
    }


def compare_providers(messages, *, model, providers=("auto",), runs=5, timeout=30.0):
    import openai

    runs = int(runs)
    names = [providers] if isinstance(providers, str) else list(providers)
    base = os.environ.get("OPENAI_BASE_URL") or ROUTER
    out = []
    with openai.OpenAI(base_url=base, api_key=get_token(), timeout=timeout, max_retries=0) as client:
        for name in names:
            routed = model if name == "auto" else f"{model}:{name}"
            times = []
            for _ in range(runs):
                began = time.monotonic()
                try:
                    client.chat.completions.create(model=routed, messages=list(messages), max_tokens=256)
                except Exception:  # openai.APIError, a cut connection, a body that is not JSON
                    continue
                times.append(time.monotonic() - began)
            out.append(_summary(name, runs, times))
    return out
