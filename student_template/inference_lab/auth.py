"""Authentication without exposing the token.

Rules for the whole lab: the Hugging Face token is read at run time, from the environment
(``HF_TOKEN``) or from the login that ``hf auth login`` stored. It is passed to clients as
``api_key=`` / ``token=``. Never write it in code or in a notebook, never print or log it (print
``mask(token)`` instead), never put it in a URL, never commit ``.env``.
"""

from __future__ import annotations

__all__ = ["MissingTokenError", "get_token", "mask"]


class MissingTokenError(RuntimeError):
    """No Hugging Face token in the environment or in the login cache. (Part of the contract: keep it.)"""


def get_token() -> str:
    """Return the Hugging Face token.

    TODO:
      1. If the environment variable ``HF_TOKEN`` is set (and not empty), return it. Read
         ``os.environ`` inside this function on every call, not once at import time.
      2. Otherwise fall back to the token stored by ``hf auth login`` (older: ``huggingface-cli
         login``): ``huggingface_hub.get_token()`` returns it (it lives in ``$HF_HOME/token``,
         by default ``~/.cache/huggingface/token``).
      3. If there is none, raise ``MissingTokenError`` with a message that tells the user how to
         fix it: name ``HF_TOKEN`` and ``hf auth login``. The message must not contain a token.
    """
    raise NotImplementedError("TODO: implement auth.get_token")


def mask(token: str) -> str:
    """A safe display form of a token, e.g. ``"hf_…w9Qz"``.

    TODO: show at most the ``hf_`` prefix, an ellipsis and the last 4 characters. Handle empty
    and short strings too (return e.g. ``"…"`` or ``"hf_…"``: for a short token the last 4
    characters would give most of it away). Never return the token itself.
    """
    raise NotImplementedError("TODO: implement auth.mask")
