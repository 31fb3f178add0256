"""Notebooks, parsed with nbformat: cell sources and cell outputs are reported separately (an output
that shows a token is a leak even when the code that printed it looks harmless); a notebook that
does not parse is scanned as plain text, and anything in a notebook outside its cells (metadata) is
still found by a plain-text pass."""

from __future__ import annotations

import json

from grading.leaks.matcher import _masked_excerpt, _Matcher, _secrets_in
from grading.leaks.model import Leak
from grading.leaks.text import scan_text


def _notebook_parts(text: str) -> list[tuple[int, str, str]] | None:
    """(cell index, kind, text) of every cell source and output; None if it is not a notebook."""
    import nbformat

    try:
        nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except Exception:  # noqa: BLE001 - anything that does not parse is read as text
        return None
    cells = nb.get("cells")
    if cells is None:  # nbformat 3: worksheets
        cells = [c for ws in nb.get("worksheets", []) or [] for c in ws.get("cells", []) or []]
    if not isinstance(cells, list):
        return None
    parts: list[tuple[int, str, str]] = []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        source = cell.get("source", cell.get("input", ""))
        parts.append((index, "notebook-source", _joined(source)))
        for output in cell.get("outputs", []) or []:
            if isinstance(output, dict):
                parts.append((index, "notebook-output", _output_text(output)))
        for attachment in (cell.get("attachments") or {}).values():
            parts.append((index, "notebook-source", _output_text({"data": attachment})))
    return parts


def _joined(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v if isinstance(v, str) else json.dumps(v) for v in value)
    if value is None:
        return ""
    return json.dumps(value, default=str)


def _output_text(output: dict) -> str:
    """All the text an output carries: streams, every mimetype's data, errors and tracebacks."""
    pieces = []
    for key in ("text", "ename", "evalue"):
        if key in output:
            pieces.append(_joined(output[key]))
    if "traceback" in output:
        pieces.append("\n".join(_joined(line) for line in output["traceback"] or []))
    data = output.get("data")
    if isinstance(data, dict):
        for mimetype, value in data.items():
            if str(mimetype).startswith("image/") and not str(mimetype).startswith("image/svg"):
                continue  # base64 pixels
            pieces.append(_joined(value))
    metadata = output.get("metadata")
    if metadata:
        pieces.append(_joined(metadata))
    return "\n".join(pieces)


def _scan_notebook(text: str, rel: str, matcher: _Matcher) -> list[Leak]:
    parts = _notebook_parts(text)
    if parts is None:
        return scan_text(text, where=rel, kind="file", matcher=matcher)
    leaks: list[Leak] = []
    seen: set[str] = set()
    for index, kind, part in parts:
        found = scan_text(part, where=rel, kind=kind, matcher=matcher, cell=index)
        if found:
            leaks.extend(found)
            seen |= _secrets_in(part, matcher)
    # Anything else in the file (notebook or cell metadata, widget state): a plain-text pass.
    for leak_line, line in enumerate(text.splitlines(), start=1):
        spans = [s for s in matcher.spans(line) if line[s[0]:s[1]] not in seen]
        if spans:
            leaks.append(Leak(where=rel, line=leak_line, kind="file",
                              excerpt=_masked_excerpt(line, spans)))
    return leaks
