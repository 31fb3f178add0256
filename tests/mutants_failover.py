"""Known-bad variants of reference/inference_lab/failover.py for the `failover` checkpoint.

Each is one realistic mistake; tests/test_checkpoint_failover.py grades it and checks that it loses
points on ``expect_lost`` with a message naming the problem. ("No jitter" — always waiting d — is not
here: it is inside [d/2, d], so the contract accepts it.)
"""

from __future__ import annotations

from dataclasses import replace

from mutants import Mutant

FAILOVER = "inference_lab/failover.py"
_MOVE_ON = "                if action == \"next\" or retries >= max_retries:\n                    break\n"

MUTANTS: list[Mutant] = [
    Mutant(
        "failover_no_failover", "failover",
        "gives up after the first provider instead of trying the next one",
        edits=[(FAILOVER, _MOVE_ON,
                "                if action == \"next\" or retries >= max_retries:\n"
                "                    # mistake: no failover, the first provider's failure is final\n"
                "                    raise AllProvidersFailed(_format_attempts(model, attempts), attempts) from exc\n")],
        expect_lost=("test_failover_to_next_provider", "test_client_errors_move_on", "test_timeout_per_attempt"),
        expect_message={
            "test_failover_to_next_provider": ("was not tried yet", "failover"),
            "test_client_errors_move_on": ("was not tried yet", "HTTP 404"),
        },
    ),
    Mutant(
        "failover_fixed_sleep", "failover",
        "sleeps backoff_base before every retry instead of an exponential backoff with jitter",
        edits=[(FAILOVER, "                    delay = random.uniform(d / 2, d)\n",
                "                    delay = backoff_base  # mistake: a fixed sleep\n")],
        expect_lost=("test_exponential_backoff_with_jitter",),
        expect_message={"test_exponential_backoff_with_jitter": ("fixed sleep", "[d/2, d]")},
    ),
    Mutant(
        "failover_ignores_retry_after", "failover",
        "never reads Retry-After: backs off as usual after a 429",
        edits=[(FAILOVER, "retry_after = _retry_after_s(_headers_of(exc)) if status is not None else None",
                "retry_after = None  # mistake: Retry-After is ignored")],
        expect_lost=("test_retry_after_honoured", "test_long_retry_after_moves_on"),
        expect_message={
            "test_retry_after_honoured": ("less than the Retry-After time", "at least 1 s"),
            "test_long_retry_after_moves_on": ("Retry-After: 120", "more than 60 s"),
        },
    ),
    Mutant(
        "failover_retries_401", "failover",
        "treats 401 like a server error and retries it",
        edits=[(FAILOVER, "        if status in (401,):\n            return status, \"stop\", _describe(exc)\n"
                          "        if status == 408",
                "        if status == 401 or status == 408")],   # mistake: 401 retried
        expect_lost=("test_unauthorized_not_retried",),
        expect_message={"test_unauthorized_not_retried": ("never retry 401/403",)},
    ),
    Mutant(
        "failover_no_min_interval", "failover",
        "ignores min_interval_s (no client-side rate limiting)",
        edits=[(FAILOVER, "            if last_start is not None and min_interval_s > 0:\n",
                "            if False:  # mistake: min_interval_s is ignored\n")],
        expect_lost=("test_min_interval_respected",),
        expect_message={"test_min_interval_respected": ("min_interval_s=0.2", "across providers")},
    ),
    Mutant(
        "failover_max_retries_off_by_one", "failover",
        "one retry more than max_retries (retries counted from 0 with <=)",
        edits=[(FAILOVER, "or retries >= max_retries:", "or retries > max_retries:")],
        expect_lost=("test_failover_to_next_provider", "test_all_fail_raises"),
        expect_message={
            "test_failover_to_next_provider": ("max_retries=1", "at most 1 retry after the first try"),
            "test_all_fail_raises": ("max_retries=1",),
        },
    ),
    Mutant(
        "failover_no_timeout", "failover",
        "does not pass the per-attempt timeout to the client",
        edits=[(FAILOVER, "result = chat(messages, model=model, provider=provider, timeout=timeout)",
                "result = chat(messages, model=model, provider=provider)  # mistake: no timeout")],
        expect_lost=("test_timeout_per_attempt",),
        expect_message={"test_timeout_per_attempt": ("timeout=0.3 is the limit of each attempt",)},
    ),
]


# One policy mistake can break several scripted scenarios (e.g. no failover also fails "all fail").
MUTANTS = [replace(m, others_must_pass=False) for m in MUTANTS]
