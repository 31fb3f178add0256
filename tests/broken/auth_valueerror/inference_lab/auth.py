"""Authentication without exposing the token.

The token is read from the environment (``HF_TOKEN``) or from the login cache that
``hf auth login`` (formerly ``huggingface-cli login``) writes. It is passed to clients as
``api_key``/``token`` and is never hard-coded, printed, logged or put in a URL.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MissingTokenError", "get_token", "mask"]


class MissingTokenError(RuntimeError):
    """No Hugging Face token in the environment or in the login cache."""


_MISSING_MESSAGE = (
    "No Hugging Face token found. Set the HF_TOKEN environment variable "
    "(for example from a .env file that is never committed) or log in once with "
    "`hf auth login` (older versions: `huggingface-cli login`)."
)


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def _token_from_login_cache() -> str | None:
    """The token stored by ``hf auth login``.

    ``huggingface_hub.get_token()`` knows every place a login can live (the token file,
    Colab secrets, ...). Its token-file path is fixed when huggingface_hub is imported,
    so the file under the *current* ``HF_TOKEN_PATH`` / ``HF_HOME`` is read as well.
    """
    try:
        import huggingface_hub

        token = _clean(huggingface_hub.get_token())
        if token:
            return token
    except Exception:  # an unusable login (e.g. a failing OIDC exchange) is "no login"
        pass

    candidates = []
    if os.environ.get("HF_TOKEN_PATH"):
        candidates.append(Path(os.path.expanduser(os.environ["HF_TOKEN_PATH"])))
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        candidates.append(Path(os.path.expanduser(hf_home)) / "token")
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        candidates.append(Path(xdg) / "huggingface" / "token")
    for path in candidates:
        try:
            token = _clean(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            continue
        if token:
            return token
    return None


def get_token() -> str:
    """Return the Hugging Face token: env ``HF_TOKEN`` first, else the stored login.

    Raises:
        MissingTokenError: when neither is available (the message says how to fix it).
    """
    token = _clean(os.environ.get("HF_TOKEN"))
    if token:
        return token
    token = _token_from_login_cache()
    if token:
        return token
    raise ValueError("no token")


def mask(token: str) -> str:
    """A safe display form: the ``hf_`` prefix, an ellipsis and at most the last 4 characters.

    >>> mask("hf_abcdefghijklmnopqrstuvw9Qz")
    'hf_…w9Qz'

    Short values show no tail at all (the last 4 would be most of the secret).
    """
    if not token:
        return "…"
    token = str(token).strip()
    prefix = "hf_" if token.startswith("hf_") else ""
    body = token[len(prefix):]
    if len(body) >= 12:
        return f"{prefix}…{body[-4:]}"
    return f"{prefix}…"
