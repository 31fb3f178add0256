"""Known-bad variants of reference/inference_lab/strategies.py for the `provider_strategies` checkpoint.

Collected by tests/mutants.py (``MUTANTS``); graded by tests/test_checkpoint_provider_strategies.py.
Each is one realistic mistake in measuring providers: numbers not really measured, retried runs,
failures counted as successes, a wrong percentile, the wrong clock, "auto" renamed.
"""

from __future__ import annotations

from dataclasses import replace

from mutants import Mutant

STRATEGIES = "inference_lab/strategies.py"
HF_CHAT = "inference_lab/hf_chat.py"

_CALL = "                result = chat(messages, model=model, provider=provider, timeout=timeout)\n"
_APPEND = '            latencies.append(float(result["latency_s"]))\n'
_P95 = '"latency_p95_s": float(np.percentile(arr, 95)),'

MUTANTS: list[Mutant] = [
    Mutant(
        "strategies_constant_latency", "provider_strategies",
        "latency numbers written down instead of measured (the same value for every run)",
        edits=[(STRATEGIES, _APPEND,
                "            latencies.append(0.25)  # mistake: a typical latency, not this run's\n")],
        expect_lost=("test_latency_stats_match_log", "test_auto_measured_as_auto", "test_ranking_by_latency"),
        expect_message={"test_latency_stats_match_log": ("latencies look constant", "latency_p50_s 0.250 s"),
                        "test_ranking_by_latency": ("real order",)},
    ),
    Mutant(
        "strategies_retry_loop", "provider_strategies",
        "a failed run is retried (up to 3 attempts) before it counts as a failure",
        edits=[(STRATEGIES,
                "            try:\n" + _CALL +
                "            except Exception as exc:  # any failed run counts as a failure\n"
                "                errors.append(_short_error(exc))\n"
                "                continue\n",
                "            result = None\n"
                "            for attempt in range(3):  # mistake: a run is retried until it works\n"
                "                try:\n"
                "                    result = chat(messages, model=model, provider=provider, timeout=timeout)\n"
                "                    break\n"
                "                except Exception as exc:\n"
                "                    if attempt == 2:\n"
                "                        errors.append(_short_error(exc))\n"
                "            if result is None:\n"
                "                continue\n")],
        expect_lost=("test_exact_runs_no_retries",),
        expect_message={"test_exact_runs_no_retries": ("requests reached the provider for runs=5",
                                                       "Did you retry failed runs?")},
    ),
    Mutant(
        "strategies_openai_default_retries", "provider_strategies",
        "runs go through the openai client with its default retries (max_retries not set to 0)",
        edits=[(STRATEGIES, _CALL,
                '                routed = model if provider == "auto" else f"{model}:{provider}"\n'
                "                result = chat_openai(messages, model=routed, timeout=timeout)\n"),
               (STRATEGIES, "from .hf_chat import chat\n", "from .hf_chat import chat, chat_openai\n"),
               (HF_CHAT, "base_url=_router_base(), api_key=token, timeout=timeout, max_retries=0\n",
                "base_url=_router_base(), api_key=token, timeout=timeout  # mistake: retries left on\n")],
        expect_lost=("test_exact_runs_no_retries",),
        expect_message={"test_exact_runs_no_retries": ("max_retries=0",)},
    ),
    Mutant(
        "strategies_failures_as_successes", "provider_strategies",
        "every run that returned is counted as a success, failed ones included",
        edits=[(STRATEGIES, "        successes = len(latencies)\n",
                "        successes = runs  # mistake: a failed run still 'ran'\n")],
        expect_lost=("test_success_counts",),
        expect_message={"test_success_counts": ("success count differs", "must count as a failure",
                                                "'fireworks-ai'")},
    ),
    Mutant(
        "strategies_p95_is_max", "provider_strategies",
        "p95 taken as the slowest run",
        edits=[(STRATEGIES, _P95, '"latency_p95_s": float(np.max(arr)),  # mistake: the maximum')],
        expect_lost=("test_latency_stats_match_log",),
        expect_message={"test_latency_stats_match_log": ("latency_p95_s", "your p95 is the slowest run")},
    ),
    Mutant(
        "strategies_p95_is_p50", "provider_strategies",
        "p95 computed with the 50th percentile (a copy-paste slip)",
        edits=[(STRATEGIES, _P95, '"latency_p95_s": float(np.percentile(arr, 50)),  # mistake: copy-paste')],
        expect_lost=("test_latency_stats_match_log",),
        expect_message={"test_latency_stats_match_log": ("your p95 equals your p50: did you compute percentiles?",)},
    ),
    Mutant(
        "strategies_wall_clock", "provider_strategies",
        "the clock is started once before the runs: each 'latency' is the time since the first run began",
        edits=[(STRATEGIES, "        for _ in range(runs):\n",
                "        started = time.perf_counter()  # mistake: one clock for all runs\n"
                "        for _ in range(runs):\n"),
               (STRATEGIES, _APPEND, "            latencies.append(time.perf_counter() - started)\n"),
               (STRATEGIES, "import numpy as np\n", "import time\n\nimport numpy as np\n")],
        expect_lost=("test_latency_stats_match_log", "test_auto_measured_as_auto"),
        expect_message={"test_latency_stats_match_log": ("much longer than the requests took",)},
    ),
    Mutant(
        "strategies_auto_renamed", "provider_strategies",
        '"auto" reported under the name of the provider it resolves to',
        edits=[(STRATEGIES, '            "provider": provider,\n',
                '            "provider": _resolved(provider, model),  # mistake: "auto" renamed\n'),
               (STRATEGIES, "def _latency_stats(latencies: list) -> dict:\n",
                "def _resolved(provider, model):\n"
                '    """The provider "auto" stands for: the first one in the model\'s mapping."""\n'
                '    if provider != "auto":\n'
                "        return provider\n"
                "    from huggingface_hub.inference._providers._common import _fetch_inference_provider_mapping\n"
                "\n"
                "    return next(iter(_fetch_inference_provider_mapping(model))).provider\n"
                "\n\n"
                "def _latency_stats(latencies: list) -> dict:\n")],
        expect_lost=("test_auto_measured_as_auto",),
        expect_message={"test_auto_measured_as_auto": ("provider='novita'", 'keep "auto" as it was asked for')},
    ),
]

# Graded with a fresh random seed each run: these mistakes must show whatever the providers drew (and
# may, depending on the draw, cost neighbouring items too).
MUTANTS = [replace(m, seed=None, others_must_pass=False) for m in MUTANTS]
