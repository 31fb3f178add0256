"""Known-bad variants of reference/ for the `throughput` checkpoint (graded by
tests/test_checkpoint_throughput.py). Loaded by ``mutants.py`` (``MUTANTS`` here joins its registry).
"""

from __future__ import annotations

from mutants import Mutant

BENCH = "inference_lab/bench.py"
_OPENAI_TEXT = '        rec.text = "".join(parts)\n    if rec.output_tokens is None:\n        # the server sent no usage'
_OLLAMA_TEXT = '        rec.text = "".join(parts)\n    if not done:\n'


def _after_text(line: str) -> list[tuple[str, str, str]]:
    """Edits that put ``line`` right after the streamed text is joined, on both APIs."""
    return [(BENCH, _OPENAI_TEXT, _OPENAI_TEXT.replace('"".join(parts)\n', f'"".join(parts)\n        {line}\n', 1)),
            (BENCH, _OLLAMA_TEXT, _OLLAMA_TEXT.replace('"".join(parts)\n', f'"".join(parts)\n        {line}\n', 1))]


MUTANTS = [
    Mutant(
        "throughput_chars_as_tokens", "throughput",
        "output tokens counted as the characters of the generated text",
        edits=_after_text("rec.output_tokens = len(rec.text)  # mistake: characters are not tokens"),
        expect_lost=("test_output_tokens_from_usage", "test_token_latencies", "test_throughput_and_duration"),
        expect_message={"test_output_tokens_from_usage": ("characters", "usage.completion_tokens"),
                        "test_token_latencies": ("tpot_mean_s",),
                        "test_throughput_and_duration": ("output_tokens_per_s",)},
    ),
    Mutant(
        "throughput_chunks_as_tokens", "throughput",
        "output tokens counted as the streamed chunks with content (a chunk may hold several tokens)",
        edits=_after_text("rec.output_tokens = rec.content_chunks  # mistake: chunks are not tokens"),
        expect_lost=("test_output_tokens_from_usage", "test_token_latencies", "test_throughput_and_duration"),
        expect_message={"test_output_tokens_from_usage": ("chunks",),
                        "test_token_latencies": ("tpot_mean_s",),
                        "test_throughput_and_duration": ("output_tokens_per_s",)},
    ),
    Mutant(
        "throughput_ttft_at_end", "throughput",
        "TTFT taken when the whole answer is in, not at the first content chunk",
        edits=[(BENCH, "            one(client, url, model, prompt, max_tokens, rec)\n",
                "            one(client, url, model, prompt, max_tokens, rec)\n"
                "            if rec.ttft is not None:  # mistake: TTFT measured at the end of the response\n"
                "                rec.ttft = time.perf_counter() - rec.start\n")],
        expect_lost=("test_ttft_to_first_content", "test_token_latencies"),
        expect_message={"test_ttft_to_first_content": ("ttft_p50_s", "not when the response has ended"),
                        "test_token_latencies": ("tpot_mean_s",)},
    ),
    Mutant(
        "throughput_sequential", "throughput",
        "a sequential loop passed off as concurrency (concurrency only echoed in the result)",
        edits=[(BENCH, "            records = list(pool.map(lambda p: run(client, p), prompts))\n",
                "            records = [run(client, p) for p in prompts]  # mistake: one request after another\n")],
        expect_lost=("test_really_concurrent",),
        expect_message={"test_really_concurrent": ("one after another", "ThreadPoolExecutor")},
    ),
    Mutant(
        "throughput_constant_numbers", "throughput",
        "the requests are sent, but the timings reported are typical numbers, not measured ones",
        edits=[(BENCH, '        "error_messages": sorted(set(errors))[:5],\n',
                '        "error_messages": sorted(set(errors))[:5],\n'
                "        # mistake: numbers that \"look right\" instead of the measured ones\n"
                '        "duration_s": 1.0, "ttft_p50_s": 0.1, "ttft_p95_s": 0.15, "tpot_mean_s": 0.02,\n'
                '        "itl_p50_s": 0.02, "e2e_p50_s": 0.3, "e2e_p95_s": 0.35, "output_tokens_per_s": 40.0,\n'
                '        "requests_per_s": 3.0,\n')],
        expect_lost=("test_ttft_to_first_content", "test_token_latencies", "test_throughput_and_duration",
                     "test_really_concurrent"),
        expect_message={"test_ttft_to_first_content": ("the server's log gives",),
                        "test_token_latencies": ("the server's log gives",),
                        "test_throughput_and_duration": ("duration_s",),
                        "test_really_concurrent": ("output_tokens_per_s",)},
    ),
    Mutant(
        "throughput_errors_hidden", "throughput",
        "failed requests are left out silently: errors always 0",
        edits=[(BENCH, '        "errors": len(errors),\n', '        "errors": 0,  # mistake: failures hidden\n')],
        expect_lost=("test_errors_counted",),
        expect_message={"test_errors_counted": ("errors=0", "never hide")},
    ),
]
