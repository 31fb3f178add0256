"""Canary tokens: fake Hugging Face tokens that make leaks detectable.

The worker's ``HF_TOKEN`` is a canary that looks exactly like a real user
token (``hf_`` + 34 letters), so student code treats it as one; the
checkpoints then look for it — and for anything shaped like an HF token —
wherever a token must never appear (notebook outputs, logs, URLs, git
history). The simulators accept it as valid credentials.

Usage::

    token = make_canary(seed)               # deterministic for a seed
    assert looks_like_hf_token(f"key={token}") == [token]
"""

from __future__ import annotations

import re
import secrets
import string

from grading.sims.seeds import rng_for

__all__ = ["CANARY_PREFIX", "CANARY_BODY_LEN", "make_canary", "looks_like_hf_token", "HF_TOKEN_RE"]

CANARY_PREFIX = "hf_"
CANARY_BODY_LEN = 34  # the length of real user access tokens' random part
_LETTERS = string.ascii_letters

# hf_ followed by a long alphanumeric run, not glued to a longer word on the
# left (so "xhf_..." or "my_hf_..." variable names are not flagged) — masked
# forms like "hf_…w9Qz" are too short to match.
HF_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}")


def make_canary(seed: int | None = None) -> str:
    """A fake HF token; the same seed always gives the same token."""
    if seed is None:
        body = "".join(secrets.choice(_LETTERS) for _ in range(CANARY_BODY_LEN))
    else:
        rng = rng_for(seed, "canary", "hf_token")
        body = "".join(rng.choice(_LETTERS) for _ in range(CANARY_BODY_LEN))
    return CANARY_PREFIX + body


def looks_like_hf_token(text: str) -> list[str]:
    """Every substring of ``text`` shaped like an HF token, in order."""
    return HF_TOKEN_RE.findall(text or "")
