"""The Hugging Face rule and masking: what a token is, where it sits in a text, how it is shown.

A *token* is anything matching ``hf_[A-Za-z0-9]{30,}`` (the shape of real user access tokens) or one
of ``extra_secrets`` (the grader's canary). Excerpts are masked (``hf_…w9Qz``): a full token is never
put in a result, a message or a log.
"""

from __future__ import annotations

import re
from typing import Iterable

# The shape of a real Hugging Face user access token. Placeholders ("hf_your_token_here",
# "hf_xxx", masked forms like "hf_…w9Qz") do not match: "_" and "…" are not in the class.
TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{30,}")

MIN_EXTRA_SECRET_LEN = 8            # shorter "secrets" would match everywhere
EXCERPT_CHARS = 160
HF_RULE = "hf-token"


# -- masking ---------------------------------------------------------------------------------------
def mask_secret(secret: str) -> str:
    """``hf_…w9Qz``: the ``hf_`` prefix (if any) and at most the last 4 characters."""
    prefix = "hf_" if secret.startswith("hf_") else ""
    tail = secret[-4:] if len(secret) >= 16 else ""
    return f"{prefix}…{tail}"


def _occurrences(text: str, secret: str) -> list[tuple[int, int]]:
    """(start, end) of every occurrence of ``secret`` in ``text``, overlapping ones included."""
    found = []
    start = text.find(secret)
    while start != -1:
        found.append((start, start + len(secret)))
        start = text.find(secret, start + 1)
    return found


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


class _Matcher:
    def __init__(self, extra_secrets: Iterable[str], other_secrets: bool = False) -> None:
        extras = sorted({s for s in (extra_secrets or ()) if isinstance(s, str)
                         and len(s) >= MIN_EXTRA_SECRET_LEN}, key=len, reverse=True)
        self.extras = extras
        self.extras_bytes = [s.encode("utf-8") for s in extras]
        self.other_secrets = other_secrets

    def spans(self, text: str) -> list[tuple[int, int]]:
        found = [(m.start(), m.end()) for m in TOKEN_RE.finditer(text)]
        for secret in self.extras:
            found.extend(_occurrences(text, secret))
        return _merged(found)

    def quick_check(self, text: str) -> bool:
        return "hf_" in text or any(secret in text for secret in self.extras)


def _masked_excerpt(line: str, spans: list[tuple[int, int]]) -> str:
    """The line with every span replaced by its masked form, shortened around the first one."""
    pieces: list[str] = []
    last, first_at = 0, 0
    for number, (start, end) in enumerate(spans):
        pieces.append(line[last:start])
        if number == 0:
            first_at = len("".join(pieces))
        pieces.append(mask_secret(line[start:end]))
        last = end
    pieces.append(line[last:])
    masked = "".join(ch if ch.isprintable() else " " for ch in "".join(pieces))
    leading = len(masked) - len(masked.lstrip())
    masked = masked.strip()
    first_at = max(0, first_at - leading)
    if len(masked) > EXCERPT_CHARS:
        start = max(0, min(first_at - EXCERPT_CHARS // 3, len(masked) - EXCERPT_CHARS))
        end = start + EXCERPT_CHARS
        masked = ("…" if start else "") + masked[start:end] + ("…" if end < len(masked) else "")
    return masked


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """``text`` with every token (and every ``extra_secrets`` value) masked, for messages and logs."""
    text = str(text)
    matcher = _Matcher(extra_secrets)
    if not matcher.quick_check(text):
        return text
    pieces, last = [], 0
    for start, end in matcher.spans(text):
        pieces += [text[last:start], mask_secret(text[start:end])]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _secrets_in(text: str, matcher: _Matcher) -> set[str]:
    return {text[start:end] for start, end in matcher.spans(text)}

