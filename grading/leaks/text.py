"""Every leak in one text: the Hugging Face rule's, and (on request) detect-secrets'."""

from __future__ import annotations

from typing import Iterable

from grading.leaks.detect import _other_secrets
from grading.leaks.matcher import _masked_excerpt, _Matcher
from grading.leaks.model import Leak


def scan_text(text: str, *, where: str, kind: str, matcher: "_Matcher | None" = None,
              extra_secrets: Iterable[str] = (), cell: int | None = None,
              line_offset: int = 0, other_secrets: bool = False) -> list[Leak]:
    """Every line of ``text`` holding a token, as masked leaks (one per line).

    With ``other_secrets`` (or a matcher made with it), detect-secrets' findings too: one leak per
    line and secret type, unless the secret is (part of) a token the Hugging Face rule found.
    """
    matcher = matcher or _Matcher(extra_secrets, other_secrets)
    leaks = []
    if matcher.quick_check(text):
        for number, line in enumerate(text.splitlines(), start=1):
            spans = matcher.spans(line)
            if spans:
                leaks.append(Leak(where=where, line=number + line_offset, kind=kind,
                                  excerpt=_masked_excerpt(line, spans), cell=cell))
    if matcher.other_secrets:
        leaks.extend(_other_secrets(text, where=where, kind=kind, matcher=matcher, cell=cell,
                                    line_offset=line_offset))
    return leaks
