"""Known-bad variants of reference/ for the `notebooks` and `analysis` checkpoints
(graded by tests/test_checkpoint_notebooks.py and tests/test_checkpoint_analysis.py).

Loaded by ``mutants.py`` (``MUTANTS`` here joins its registry). Notebook edits are made on the .ipynb
JSON text, so each fragment is written JSON-escaped (:func:`j`). The analysis mutants read the
reference's generated REPORT.md and results/ at import time (they are produced by
scripts/make_reference_results.py, so their numbers change when it is rerun) and derive their edits
from them: each edit still occurs exactly once, or :func:`mutants.build` fails loudly.
"""

from __future__ import annotations

import json
import re

from mutants import REFERENCE, Mutant

IMAGE = "image_generation_practice.ipynb"
CHAT = "chat_inference_practice.ipynb"
OLLAMA = "ollama_practice.ipynb"
REPORT = "REPORT.md"


def j(text: str) -> str:
    """``text`` as it appears inside a JSON string."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


MUTANTS = [
    # -- notebooks --------------------------------------------------------------------------------
    Mutant(
        "nb_cell_error", "notebooks",
        "a cell indexes past the end of a list (IndexError) and the notebook stops being runnable",
        edits=[(OLLAMA, j("print(ollama_client.list_models())"), j("print(ollama_client.list_models()[7])"))],
        expect_lost=("test_notebook_runs",),
        expect_message={"test_notebook_runs": ("ollama_practice.ipynb, cell 5", "IndexError",
                                               "print(ollama_client.list_models()[7])")},
    ),
    Mutant(
        "nb_hanging_cell", "notebooks",
        "a cell waits forever (a polling loop with no way out)",
        edits=[(OLLAMA, j('print("via /v1:", same["usage"])'),
                j('print("via /v1:", same["usage"])\nimport time\nwhile True:\n    time.sleep(0.5)'))],
        expect_lost=("test_notebook_runs",),
        expect_message={"test_notebook_runs": ("ollama_practice.ipynb, cell 11", "did not finish within 30 s")},
    ),
    Mutant(
        "nb_not_json", "notebooks",
        "a notebook damaged by a merge conflict: not valid JSON",
        edits=[(CHAT, '"nbformat": 4,', '<<<<<<< HEAD\n "nbformat": 4,')],
        expect_lost=("test_notebook_runs", "test_provider_table"),
        expect_message={"test_notebook_runs": ("chat_inference_practice.ipynb is not a valid notebook",),
                        "test_provider_table": ("not a valid notebook",)},
    ),
    Mutant(
        "nb_image_not_shown", "notebooks",
        "the image is saved but never displayed in the tagged cell",
        edits=[(IMAGE, j('Image(filename=result["path"])'), j('result["path"]'))],
        expect_lost=("test_image_output",),
        expect_message={"test_image_output": ("shows no image", "answer:image")},
    ),
    Mutant(
        "nb_image_wrong_size", "notebooks",
        "the image is generated at 512 x 256 instead of the 384 x 256 asked for",
        edits=[(IMAGE, "width=384, height=256, seed=42", "width=512, height=256, seed=42")],
        expect_lost=("test_image_output",),
        expect_message={"test_image_output": ("512x256", "384x256")},
    ),
    Mutant(
        "nb_table_not_shown", "notebooks",
        "the provider comparison is printed as a raw list, not shown as a table",
        edits=[(CHAT, j('display(Markdown("\\n".join(lines)))'), j("print(rows)"))],
        expect_lost=("test_provider_table",),
        expect_message={"test_provider_table": ("shows no table",)},
    ),
    Mutant(
        "nb_tokens_per_s_words", "notebooks",
        "tokens/sec counted in words of the reply instead of the server's eval_count",
        edits=[(OLLAMA, j('result["tokens_per_s"]'), j('len(result["text"].split()) / result["eval_duration_s"]'))],
        expect_lost=("test_tokens_per_s",),
        expect_message={"test_tokens_per_s": ("tokens/s", "eval_duration")},
    ),
]


# -- analysis: edits derived from the reference's generated REPORT.md and results/ --------------------
def _report() -> str:
    return (REFERENCE / REPORT).read_text(encoding="utf-8")


def _table_row(engine: str, concurrency: int) -> str:
    for line in _report().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) >= 6 and cells[0] == engine and cells[2] == str(concurrency):
            return line
    raise AssertionError(f"reference/REPORT.md has no results row for {engine} c{concurrency}")


def _row_with_tokens_off() -> tuple[str, str]:
    row = _table_row("ollama", 1)
    cells = row.strip().strip("|").split("|")
    value = float(cells[4])
    cells[4] = f" {value * 1.2:.4g} "
    return row, "|" + "|".join(cells) + "|"


def _claim(key: str) -> tuple[str, str]:
    match = re.search(rf"^{key}: (ollama|vllm)", _report(), flags=re.M)
    assert match, f"reference/REPORT.md has no claim {key}"
    other = "vllm" if match.group(1) == "ollama" else "ollama"
    return match.group(0), f"{key}: {other}"


def _results_line(name: str, key: str) -> str:
    text = (REFERENCE / "results" / name).read_text(encoding="utf-8")
    match = re.search(rf'^  "{key}": .*$', text, flags=re.M)
    assert match, f"reference/results/{name} has no {key}"
    return match.group(0)


def _hardware_section() -> str:
    text = _report()
    start = text.index("## Hardware notes")
    return text[start:text.index("## Claims")]


def _analysis_mutants() -> list[Mutant]:
    if not (REFERENCE / "results" / "ollama-c8.json").exists():
        return []   # not generated yet: scripts/make_reference_results.py
    row, bad_row = _row_with_tokens_off()
    claim, flipped = _claim("lower_ttft_single_request")
    tokens_line = _results_line("ollama-c8.json", "output_tokens")
    tokens = int(tokens_line.split(":")[1].strip().rstrip(","))
    return [
        Mutant(
            "report_table_mismatch", "analysis",
            "a number in the results table that is not the results file's (a run that was later redone)",
            edits=[(REPORT, row, bad_row)],
            expect_lost=("test_table_matches_results",),
            expect_message={"test_table_matches_results": ("ollama at concurrency 1", "output_tokens_per_s")},
        ),
        Mutant(
            "report_claim_contradicts_data", "analysis",
            "a claim written from expectations, not from the data",
            edits=[(REPORT, claim, flipped)],
            expect_lost=("test_claims_agree_with_data",),
            expect_message={"test_claims_agree_with_data": ("lower_ttft_single_request", "your own data say")},
        ),
        Mutant(
            "results_tokens_inconsistent", "analysis",
            "a results file whose output_tokens were edited by hand (tokens/sec no longer tokens / duration)",
            edits=[("results/ollama-c8.json", tokens_line, tokens_line.replace(str(tokens), str(tokens + 40)))],
            expect_lost=("test_results_files",),
            expect_message={"test_results_files": ("results/ollama-c8.json", "output_tokens / duration_s")},
        ),
        Mutant(
            "report_missing_section", "analysis",
            "the hardware notes were never written (the section is gone)",
            edits=[(REPORT, _hardware_section(), "")],
            expect_lost=("test_sections_have_substance",),
            expect_message={"test_sections_have_substance": ("hardware",)},
        ),
    ]


MUTANTS += _analysis_mutants()
