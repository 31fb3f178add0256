"""What the simulated engine generates, shared by the server and the worker's stand-in ``vllm`` module.

No aiohttp here: the stand-in imports this inside the student's worker. Texts and token counts come
from grading/sims/text.py (one tokenizer for every simulator), so usage always matches the text.

* a chat request: ``chat_reply(seed, model, messages, max_tokens, index)``;
* a completion or an offline ``LLM.generate`` prompt: ``completion_reply(seed, model, prompt, max_tokens,
  index)`` - the prompt is the user's text, without a chat template;
* ``index`` > 0: the n-th extra sample of the same request (``n`` > 1), a different reply.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..seeds import derive_seed
from ..text import Reply, count_tokens, generate_reply

__all__ = ["chat_reply", "completion_reply", "completion_prompt_tokens", "token_id", "VOCAB_SIZE"]

VOCAB_SIZE = 49152      # SmolLM2's vocabulary size: the range of the token ids /tokenize reports


def _seed(seed: int, index: int) -> int:
    return int(seed) if index == 0 else derive_seed(int(seed), "vllm-sample", str(index))


def chat_reply(seed: int, model: str, messages: list[Any], max_tokens: int | None, index: int = 0) -> Reply:
    return generate_reply(_seed(seed, index), model, messages, max_tokens=max_tokens)


def completion_reply(seed: int, model: str, prompt: str, max_tokens: int | None, index: int = 0) -> Reply:
    return generate_reply(_seed(seed, index), model, [{"role": "user", "content": prompt}], max_tokens=max_tokens)


def completion_prompt_tokens(prompt: str) -> int:
    """A plain prompt's tokens (no chat template, no special tokens)."""
    return count_tokens(prompt)


def token_id(token: str) -> int:
    """A stable id for a token string (what /tokenize reports)."""
    return int.from_bytes(hashlib.sha256(token.encode("utf-8")).digest()[:4], "big") % VOCAB_SIZE
