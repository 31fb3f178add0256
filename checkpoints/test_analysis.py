"""Checkpoint `analysis`: performance differences and use cases (REPORT.md and results/).

Static: the submission's ``results/<engine>-c<concurrency>.json`` (what ``bench.measure`` returned,
plus ``engine`` and ``model``) and ``REPORT.md`` are read as data; nothing of the submission runs.
The results files must be well-formed and consistent with themselves; every number of REPORT.md's
results table must be the results files' number, rounded; each claim of the ```claims block must
agree with the data; the required sections must be there with substance. Whether the reasoning and
the use-case recommendations are sound is judged by a person (the rubric's manual item).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grading import report_checks as rc
from grading.safe_read import RefusedFile

ENGINES = ("ollama", "vllm")
CONCURRENCIES = (1, 8)
REQUIRED_RUNS = [(e, c) for e in ENGINES for c in CONCURRENCIES]
# table column -> (words in its header, results key)
COLUMNS = {"ttft": (("ttft",), "ttft_p50_s"), "tokens": (("tokens",), "output_tokens_per_s"),
           "p95": (("p95",), "e2e_p95_s")}
SECTIONS = {  # key words of the heading -> (minimum words of prose, engines it must name)
    ("results",): (0, ()),
    ("ollama", "vllm"): (60, ("ollama", "vllm")),
    ("when", "use"): (60, ("ollama", "vllm")),
    ("hardware",): (30, ()),
    ("claims",): (0, ()),
}
# 7B parameters at 16 bits x 1.2 overhead (DESIGN.md's contract for estimate_memory_gb), in GB
FP16_7B_GB = 7e9 * 16 / 8 * 1.2 / 1e9


@pytest.fixture(scope="module")
def report(submission_dir: Path) -> str:
    try:
        return rc.read_report(submission_dir)
    except FileNotFoundError:
        raise AssertionError("there is no REPORT.md in the submission's top folder") from None
    except RefusedFile as exc:
        raise AssertionError(f"REPORT.md {exc.reason}; hand in REPORT.md as a plain text file") from None


@pytest.fixture(scope="module")
def results(submission_dir: Path) -> dict:
    found, _ = rc.load_results(submission_dir / "results")
    return found


def need_runs(results: dict, what: str) -> None:
    missing = [f"results/{e}-c{c}.json" for e, c in REQUIRED_RUNS if (e, c) not in results]
    assert not missing, (f"{what} needs the results files, but {', '.join(missing)} "
                         f"{'is' if len(missing) == 1 else 'are'} missing; run bench.measure for each engine at "
                         "concurrency 1 and 8 and save each result (plus engine and model)")


def test_results_files(submission_dir, thresholds):
    found, problems = rc.load_results(submission_dir / "results")
    rel = float(thresholds["derived_rel"])
    for (engine, concurrency), data in sorted(found.items()):
        problems += rc.check_result(f"{engine}-c{concurrency}.json", engine, concurrency, data, rel)
    missing = [f"results/{e}-c{c}.json" for e, c in REQUIRED_RUNS if (e, c) not in found]
    if missing:
        problems.insert(0, f"missing {', '.join(missing)}: run bench.measure against each engine (ollama, vllm) at "
                           "concurrency 1 and 8, and save each result with \"engine\" and \"model\" added")
    assert not problems, "\n".join(problems[:8]) + (f"\n(and {len(problems) - 8} more)" if len(problems) > 8 else "")


def test_table_matches_results(report, results):
    heading, body = rc.find_section(rc.sections(report), "results")
    assert heading is not None, "REPORT.md has no '## Results table' section"
    header, rows = rc.markdown_table(body)
    assert rows, "the '## Results table' section of REPORT.md has no table (a Markdown table with | ... |)"
    names = [h.lower() for h in header]

    def column(*words: str) -> int | None:
        return next((i for i, h in enumerate(names) if all(w in h for w in words)), None)

    cols = {key: column(*words) for key, (words, _) in COLUMNS.items()}
    base = {"engine": column("engine"), "model": column("model"), "concurrency": column("concurrency")}
    lost = [k for k, v in {**base, **cols}.items() if v is None]
    assert not lost, (f"the results table has no column for {', '.join(lost)}; keep the template's columns: "
                      "engine, model, concurrency, TTFT p50 (s), tokens/sec, p95 latency (s)")
    need_runs(results, "the results table")
    problems, seen = [], set()
    for row in rows:
        if len(row) < len(header):
            problems.append(f"the row {' | '.join(row)} has fewer cells than the header")
            continue
        engine, concurrency = row[base["engine"]].lower(), row[base["concurrency"]]
        if not concurrency.isdigit() or (engine, int(concurrency)) not in results:
            problems.append(f"the row for {engine} at concurrency {concurrency} has no results file "
                            f"(results/{engine}-c{concurrency}.json)")
            continue
        data, key = results[(engine, int(concurrency))], (engine, int(concurrency))
        seen.add(key)
        label = f"{engine} at concurrency {concurrency}"
        if row[base["model"]] != str(data.get("model")):
            problems.append(f"{label}: the table says model {row[base['model']]!r}, the results file {data.get('model')!r}")
        for name, (_, field) in COLUMNS.items():
            shown, value = row[cols[name]], data.get(field)
            if not rc.within_rounding(shown, value):
                problems.append(f"{label}: {header[cols[name]]} is {shown!r} in the table, but {field} in "
                                f"results/{engine}-c{concurrency}.json is {value!r} (seconds, tokens/s; copy "
                                "the number, rounded)")
            elif not rc.precise_enough(shown, value):
                problems.append(f"{label}: {header[cols[name]]} {shown!r} is too coarse for {value:.4g}; give at "
                                "least two significant digits")
    missing = [f"{e} at concurrency {c}" for e, c in REQUIRED_RUNS if (e, c) not in seen]
    if missing:
        problems.append(f"the table has no row for {', '.join(missing)}")
    assert not problems, "\n".join(problems[:8])


def test_claims_agree_with_data(report, results):
    block = rc.claims_block(report)
    assert block is not None, "REPORT.md has no ```claims block (keep the template's block and fill in its values)"
    claims = rc.parse_claims(block)
    need_runs(results, "the claims")
    tps = {e: results[(e, 8)]["output_tokens_per_s"] for e in ENGINES}
    ttft = {e: results[(e, 1)]["ttft_p50_s"] for e in ENGINES}
    truth = {
        "higher_throughput_at_c8": (max(ENGINES, key=lambda e: tps[e]),
                                    f"output_tokens_per_s at concurrency 8: ollama {tps['ollama']:.4g}, "
                                    f"vllm {tps['vllm']:.4g}"),
        "lower_ttft_single_request": (min(ENGINES, key=lambda e: ttft[e]),
                                      f"ttft_p50_s at concurrency 1: ollama {ttft['ollama']:.4g} s, "
                                      f"vllm {ttft['vllm']:.4g} s"),
        "fits_7b_fp16_on_8gb_gpu": ("true" if FP16_7B_GB <= 8 else "false",
                                    f"7B x 16 bits / 8 x 1.2 overhead = {FP16_7B_GB:.1f} GB against 8 GB"),
    }
    problems = []
    for key, (want, why) in truth.items():
        got = claims.get(key)
        if got is None:
            problems.append(f"the claims block has no {key}")
        elif got == "todo" or not got:
            problems.append(f"{key} is still TODO; your data say {want} ({why})")
        elif got != want:
            problems.append(f"{key}: {got}, but your own data say {want} ({why})")
    assert not problems, "\n".join(problems)


def test_sections_have_substance(report):
    parts = rc.sections(report)
    problems = []
    for words, (min_words, engines) in SECTIONS.items():
        heading, body = rc.find_section(parts, *words)
        title = " ".join(words)
        if heading is None:
            problems.append(f"REPORT.md has no section whose heading names {title!r} (keep the template's '## ...' "
                            "headings)")
            continue
        text = body.lower()
        if "todo" in rc.strip_comments(body).lower() and words != ("claims",):
            problems.append(f"'## {heading}' still has a TODO")
            continue
        count = rc.prose_words(body)
        if count < min_words:
            problems.append(f"'## {heading}' has {count} words of text; write at least {min_words}")
        absent = [e for e in engines if e not in text]
        if absent:
            problems.append(f"'## {heading}' does not mention {' or '.join(absent)}; compare both engines")
    assert not problems, "\n".join(problems)
