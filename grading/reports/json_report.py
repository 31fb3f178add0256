"""``report.json``: serialisation, reading back, and the atomic file write all writers use.

Usage::

    from grading.reports.json_report import to_json, read_report, atomic_write_text

    atomic_write_text(out / "report.json", to_json(report))
    report = read_report(out / "report.json")      # parsed and validated
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from .schema import validate_report

__all__ = ["to_json", "read_report", "atomic_write_text"]


def to_json(data: Any) -> str:
    """Serialise ``data`` as pretty, strict JSON (NaN/inf raise ``ValueError``), newline-terminated.

    Non-ASCII text stays readable; if the data holds strings that cannot be encoded as
    UTF-8 (lone surrogates), everything is written with ``\\u`` escapes instead.

    >>> to_json({"score": 1.5})
    '{\\n  "score": 1.5\\n}\\n'
    """
    text = json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=2, ensure_ascii=True, allow_nan=False)
    return text + "\n"


def read_report(path: Path) -> dict:
    """Load a ``report.json`` and validate it (``ValueError`` if it is not a valid report)."""
    report = json.loads(Path(path).read_text(encoding="utf-8"))
    validate_report(report)
    return report


def atomic_write_text(path: Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The data goes to a hidden temporary file in the same folder, is flushed to disk, then
    ``os.replace``-d over ``path``. The file gets the usual permissions (0o666 minus umask).
    No newline translation is done (csv output keeps its ``\\r\\n``).

    >>> atomic_write_text(Path("/tmp/x.txt"), "hello\\n")  # doctest: +SKIP
    PosixPath('/tmp/x.txt')
    """
    path = Path(path)
    data = text.encode(encoding)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path
