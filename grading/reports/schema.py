"""Validation of report dicts, and the text hygiene every renderer shares.

The report dict (``docs/report-schema.md``) is the single source every output is
rendered from; ``schemas/report.schema.json`` (JSON Schema draft 2020-12) is its
machine-readable form.

Usage::

    from grading.reports.schema import validate_report

    validate_report(report)          # returns None, or raises ValueError:
    # ValueError: invalid report at $.checkpoints[0].tests[1].score: '2' is not of type 'number'
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import jsonschema

SCHEMA_PATH = Path(__file__).with_name("schemas") / "report.schema.json"

__all__ = ["SCHEMA_PATH", "validate_report", "clean_text", "truncate", "one_line"]


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _non_finite(value: Any, path: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """Path of the first NaN/inf float (JSON cannot carry them), else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path
    if isinstance(value, dict):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, child in items:
        found = _non_finite(child, path + (key,))
        if found is not None:
            return found
    return None


def validate_report(report: dict) -> None:
    """Check ``report`` against ``schemas/report.schema.json``.

    Raises ``ValueError`` naming the JSON path of the most relevant problem, e.g.
    ``invalid report at $.checkpoints[0].status: 'ok' is not one of [...]``.
    Numbers must be JSON numbers (``"2.0"`` is rejected, so is NaN/inf).

    >>> validate_report({"submission": "s", "tier": "sim", "score": 0,
    ...                  "max_score": 0, "checkpoints": []})
    """
    if not isinstance(report, dict):
        raise ValueError(f"invalid report at $: expected an object, got {type(report).__name__}")
    error = jsonschema.exceptions.best_match(_validator().iter_errors(report))
    if error is not None:
        raise ValueError(f"invalid report at {_json_path(error.absolute_path)}: {error.message}")
    bad = _non_finite(report)
    if bad is not None:
        raise ValueError(f"invalid report at {_json_path(bad)}: numbers must be finite")


# --- text hygiene shared by all renderers ------------------------------------------------

# ANSI escape sequences (CSI and OSC), removed whole rather than leaving "[31m" behind.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?")
# C0/C1 controls except \t and \n, DEL, lone surrogates, XML 1.0 non-characters, and the
# bidi overrides that let text display differently from what it is ("trojan source").
_ILLEGAL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]")


def clean_text(text: Any) -> str:
    """Return ``text`` as a string that is safe in XML 1.0, terminals and spreadsheets.

    Normalises newlines to ``\\n``, drops ANSI escapes and control characters.

    >>> clean_text("a\\x00b\\r\\nc\\x1b[31md")
    'ab\\ncd'
    """
    if text is None:
        return ""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")
    return _ILLEGAL.sub("", _ANSI.sub("", s))


def truncate(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters plus a note saying how much was cut.

    >>> truncate("abcdef", 3)
    'abc… [3 more characters]'
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} more characters]"


def one_line(text: Any, limit: int = 200) -> str:
    """``clean_text`` collapsed to a single line (whitespace runs become one space), truncated."""
    return truncate(" ".join(clean_text(text).split()), limit)
