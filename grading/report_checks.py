"""Reading a submission's REPORT.md and results/ as data (the `analysis` checkpoint; never executed).

>>> sections("# R\\n## Claims\\ntext\\n")["Claims"]
'text'
>>> within_rounding("0.0357", 0.035712)
True
>>> parse_claims("a: vllm   # ollama | vllm\\nb: false\\n")
{'a': 'vllm', 'b': 'false'}
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any

from grading.safe_read import RefusedFile, read_regular, read_regular_text

RESULT_NAME = re.compile(r"^(?P<engine>[a-z0-9_.]+)-c(?P<concurrency>\d+)\.json$")
NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
INT_KEYS = ("requests", "concurrency", "errors", "output_tokens")
FLOAT_KEYS = ("duration_s", "output_tokens_per_s", "requests_per_s")
STAT_KEYS = ("ttft_p50_s", "ttft_p95_s", "tpot_mean_s", "itl_p50_s", "e2e_p50_s", "e2e_p95_s")
RESULT_KEYS = INT_KEYS + FLOAT_KEYS + STAT_KEYS + ("engine", "model")
MAX_RESULTS_BYTES = 2**20           # one results file (what bench.measure returns is a few hundred bytes)
MAX_REPORT_BYTES = 2**20            # REPORT.md


def strip_comments(text: str) -> str:
    return re.sub(r"<!--.*?-->", "", text, flags=re.S)


def sections(text: str) -> dict[str, str]:
    """``## Heading`` -> its body (the heading without a trailing colon), comments removed."""
    out: dict[str, str] = {}
    current = None
    lines: list[str] = []
    in_fence = False
    for line in strip_comments(text).splitlines():
        if line.strip().startswith("```"):
            in_fence = not in_fence
        if not in_fence and re.match(r"^##\s+\S", line) and not line.startswith("###"):
            if current is not None:
                out[current] = "\n".join(lines).strip()
            current, lines = line.lstrip("#").strip().rstrip(":"), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        out[current] = "\n".join(lines).strip()
    return out


def find_section(parts: dict[str, str], *words: str) -> tuple[str | None, str]:
    """The first section whose heading contains every word (case-insensitive)."""
    for heading, body in parts.items():
        if all(w.lower() in heading.lower() for w in words):
            return heading, body
    return None, ""


def prose_words(body: str) -> int:
    """Words outside tables, code fences and comments (what a reader reads)."""
    body = re.sub(r"```.*?```", "", body, flags=re.S)
    lines = [ln for ln in body.splitlines() if not ln.strip().startswith("|")]
    return len(re.findall(r"[A-Za-z][A-Za-z'-]+", "\n".join(lines)))


def markdown_table(body: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, data rows) of the first pipe table in ``body`` (cells stripped of ` and *)."""
    rows: list[list[str]] = []
    for line in body.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if rows:
                break
            continue
        cells = [c.strip().strip("`*").strip() for c in line.strip().strip("|").split("|")]
        if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
            continue
        rows.append(cells)
    return (rows[0], rows[1:]) if rows else ([], [])


def within_rounding(shown: str, value: float) -> bool:
    """``shown`` equals ``value`` rounded to the digits shown (half a unit of the last digit)."""
    text = shown.strip()
    if not NUMBER.match(text) or not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    mantissa = text.lower().split("e")[0]
    exponent = int(text.lower().split("e")[1]) if "e" in text.lower() else 0
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half_unit = 0.5 * 10 ** (exponent - decimals)
    return abs(float(text) - float(value)) <= half_unit * (1 + 1e-9) + 1e-12


def precise_enough(shown: str, value: float, rel: float = 0.05) -> bool:
    """At least about two significant digits: half a unit of the last digit shown is <= rel of the value."""
    text = shown.strip().lower()
    mantissa, _, exp = text.partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    half_unit = 0.5 * 10 ** ((int(exp) if exp else 0) - decimals)
    return half_unit <= rel * abs(value) + 1e-12


def claims_block(text: str) -> str | None:
    match = re.search(r"^```\s*claims\s*\n(.*?)^```", strip_comments(text), flags=re.S | re.M)
    return None if match is None else match.group(1)


def parse_claims(block: str) -> dict[str, str]:
    """Flat ``key: value  # comment`` lines (the template's YAML subset), values lower-cased."""
    claims: dict[str, str] = {}
    for line in block.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or ":" not in line:
            continue
        key, _, value = line.partition(":")
        claims[key.strip()] = value.strip().strip("'\"").lower()
    return claims


def load_results(folder: Path, *, root: Path | None = None,
                 limit: int = MAX_RESULTS_BYTES) -> tuple[dict[tuple[str, int], dict[str, Any]], list[str]]:
    """{(engine, concurrency): data} of ``results/<engine>-c<N>.json`` and the problems found reading them.

    Read in the grader's process, so only as data the student cannot turn against it (grading/safe_read.py):
    a file is read only when it is a regular file of at most ``limit`` bytes, reached from ``root`` (the
    submission; default: the folder holding ``folder``) through no symbolic link. Anything else (a link
    to someone else's results, a named pipe that would block the read for ever, /dev/zero) is a problem.
    """
    found: dict[tuple[str, int], dict[str, Any]] = {}
    problems: list[str] = []
    folder = Path(folder)
    root = Path(root) if root is not None else folder.parent
    if folder.is_symlink():
        return found, ["results/ is a symbolic link, not a folder of the submission (links are not followed: hand "
                       "in the folder itself)"]
    if not folder.is_dir():
        return found, ["there is no results/ folder"]
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        return found, [f"results/ could not be read ({exc.strerror or exc})"]
    for name in names:
        if name.startswith(".") or not name.endswith(".json"):
            continue
        match = RESULT_NAME.match(name)
        if match is None:
            problems.append(f"results/{name}: the name must be <engine>-c<concurrency>.json, e.g. ollama-c8.json")
            continue
        try:
            raw = read_regular(folder / name, limit, root=root)
        except FileNotFoundError:
            continue
        except RefusedFile as exc:
            problems.append(f"results/{name} {exc.reason}")
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append(f"results/{name} is not valid JSON ({exc})")
            continue
        if not isinstance(data, dict):
            problems.append(f"results/{name} must hold one JSON object (what bench.measure returned)")
            continue
        found[(match["engine"], int(match["concurrency"]))] = data
    return found, problems


def read_report(submission: Path, limit: int = MAX_REPORT_BYTES) -> str:
    """The submission's REPORT.md as text: a regular file of at most ``limit`` bytes, not a link.

    Raises ``FileNotFoundError`` when there is none, :class:`~grading.safe_read.RefusedFile` (its
    ``reason`` follows the name: "REPORT.md is a named pipe (FIFO), not a regular file") otherwise.
    """
    return read_regular_text(Path(submission) / "REPORT.md", limit, root=Path(submission))


def _num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_result(name: str, engine: str, concurrency: int, data: dict[str, Any], rel: float) -> list[str]:
    """Everything wrong with one results file (an empty list when it is consistent)."""
    where = f"results/{name}"
    missing = [k for k in RESULT_KEYS if k not in data]
    if missing:
        return [f"{where} has no {', '.join(missing)} (save what bench.measure returned, plus engine and model)"]
    out = []
    if data["engine"] != engine:
        out.append(f"{where} says engine={data['engine']!r}, but its name says {engine!r}")
    if not isinstance(data["model"], str) or not data["model"].strip():
        out.append(f"{where}: model must name the model benchmarked")
    for key in INT_KEYS:
        if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 0:
            out.append(f"{where}: {key} must be a whole number >= 0, not {data[key]!r}")
    for key in FLOAT_KEYS:
        if not _num(data[key]) or data[key] < 0:
            out.append(f"{where}: {key} must be a number >= 0, not {data[key]!r}")
    if out:
        return out
    if data["concurrency"] != concurrency:
        out.append(f"{where} says concurrency={data['concurrency']}, but its name says c{concurrency}")
    requests, errors, duration = data["requests"], data["errors"], data["duration_s"]
    completed = requests - errors
    if requests < 1 or errors > requests:
        out.append(f"{where}: requests={requests}, errors={errors} is impossible")
    if duration <= 0:
        return out + [f"{where}: duration_s must be > 0"]
    if "completed" in data and data["completed"] != completed:
        out.append(f"{where}: completed={data['completed']} but requests - errors = {completed}")
    for key, want, words in (("output_tokens_per_s", data["output_tokens"] / duration, "output_tokens / duration_s"),
                             ("requests_per_s", completed / duration, "(requests - errors) / duration_s")):
        if abs(data[key] - want) > rel * abs(want) + 1e-9:
            out.append(f"{where}: {key}={data[key]:.6g}, but {words} = {want:.6g}; the results must come from one "
                       "run, unedited")
    stats = {k: data[k] for k in STAT_KEYS}
    if completed > 0:
        bad = [k for k, v in stats.items() if v is not None and (not _num(v) or v < 0)]
        nones = [k for k in ("ttft_p50_s", "ttft_p95_s", "e2e_p50_s", "e2e_p95_s") if stats[k] is None]
        if bad or nones:
            return out + [f"{where}: {', '.join(bad + nones)} must be numbers of seconds >= 0 when requests succeeded"]
        for low, high in (("ttft_p50_s", "ttft_p95_s"), ("e2e_p50_s", "e2e_p95_s"), ("ttft_p50_s", "e2e_p50_s"),
                          ("ttft_p95_s", "e2e_p95_s")):
            if stats[low] > stats[high] * (1 + rel) + 1e-9:
                out.append(f"{where}: {low}={stats[low]:.6g} > {high}={stats[high]:.6g}, which no run can produce")
        if stats["e2e_p95_s"] > duration * (1 + rel) + 1e-9:
            out.append(f"{where}: e2e_p95_s={stats['e2e_p95_s']:.6g} is longer than the whole run "
                       f"(duration_s={duration:.6g})")
    return out
