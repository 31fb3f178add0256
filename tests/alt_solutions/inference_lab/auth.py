"""Hugging Face credentials, written without huggingface_hub: plain os.path and files.

Lookup order (the same one huggingface_hub uses for a plain access token):

1. the ``HF_TOKEN`` environment variable;
2. the file ``hf auth login`` writes: ``$HF_TOKEN_PATH`` if set, else ``$HF_HOME/token``, else
   ``$XDG_CACHE_HOME/huggingface/token``, else ``~/.cache/huggingface/token``.
"""

import os

__all__ = ["MissingTokenError", "get_token", "mask"]


class MissingTokenError(RuntimeError):
    def __init__(self, looked_in):
        places = ", ".join(looked_in)
        super().__init__(
            "Cannot authenticate to Hugging Face: the HF_TOKEN environment variable is empty and "
            f"no saved login was found (looked in: {places}). Export HF_TOKEN=<your token> or run "
            "'huggingface-cli login' (new CLI: 'hf auth login') and try again."
        )


def _login_file_candidates():
    explicit = os.environ.get("HF_TOKEN_PATH")
    if explicit:
        return [os.path.expanduser(os.path.expandvars(explicit))]
    hf_home = os.environ.get("HF_HOME")
    if hf_home:
        return [os.path.join(os.path.expanduser(os.path.expandvars(hf_home)), "token")]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return [os.path.join(cache, "huggingface", "token")]


def _read_first_line(path):
    if not os.path.isfile(path):
        return ""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    return line.strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return ""


def get_token():
    env_value = (os.environ.get("HF_TOKEN") or "").strip()
    if env_value:
        return env_value
    candidates = _login_file_candidates()
    for path in candidates:
        stored = _read_first_line(path)
        if stored:
            return stored
    raise MissingTokenError(candidates)


def mask(token):
    text = "" if token is None else str(token).strip()
    head = "hf_" if text.startswith("hf_") else ""
    rest = text[len(head):]
    if len(rest) < 16:
        return head + "****"
    return head + "****\u2026" + rest[-4:]
