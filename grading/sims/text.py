"""The simulators' tokenizer and deterministic reply text.

One tokenizer for every simulator, so ``usage`` always agrees with the text
that was sent: a token is a run of word characters or one punctuation
character, each carrying the whitespace in front of it. Joining a text's
tokens gives the text back (as long as it does not end in whitespace, which
generated replies never do), so "one token per chunk" streams concatenate to
exactly the reply.

Usage::

    tokenize("Deep learning, simply.")      # ['Deep', ' learning', ',', ' simply', '.']
    count_tokens("Deep learning, simply.")  # 5
    count_prompt_tokens([{"role": "user", "content": "Hi"}])
    reply = generate_reply(seed, "org/model", messages, max_tokens=64)
    reply.tokens, reply.text, reply.finish_reason   # "length" when max_tokens cut it
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable

from .seeds import rng_for

__all__ = [
    "TOKEN_RE",
    "tokenize",
    "count_tokens",
    "message_text",
    "count_prompt_tokens",
    "PROMPT_OVERHEAD_PER_MESSAGE",
    "PROMPT_OVERHEAD_PER_REQUEST",
    "Reply",
    "generate_reply",
]

TOKEN_RE = re.compile(r"\s*(?:\w+|[^\w\s])", re.UNICODE)
#: chat-template tokens counted per message (role markers) and once per request (assistant prefix)
PROMPT_OVERHEAD_PER_MESSAGE = 4
PROMPT_OVERHEAD_PER_REQUEST = 3


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` (each with its leading whitespace)."""
    return TOKEN_RE.findall(text or "")


def count_tokens(text: str) -> int:
    """How many tokens ``text`` has under :func:`tokenize`."""
    return len(tokenize(text))


def message_text(content: Any) -> str:
    """The text of a chat message's ``content`` (a string or OpenAI content parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return " ".join(parts)
    return str(content)


def count_prompt_tokens(messages: Iterable[Any]) -> int:
    """Prompt tokens of a chat request: content tokens plus a fixed template overhead.

    ``sum(count_tokens(content) + 4 for each message) + 3`` — the 4 stand for a
    chat template's role markers, the 3 for the assistant prefix.
    """
    total = PROMPT_OVERHEAD_PER_REQUEST
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else getattr(m, "content", None)
        total += count_tokens(message_text(content)) + PROMPT_OVERHEAD_PER_MESSAGE
    return total


_WORDS = (
    "model models token tokens inference provider providers latency throughput request requests "
    "response stream streaming batch batches memory cache layer layers weights attention context "
    "prompt prompts output input GPU CPU server servers router route answer answers result results "
    "learning network networks data training fast faster quick small large simple clear useful "
    "good better best first next each every many most some other this that these those it they "
    "is are was can will should may often usually also then so because when while where which "
    "the a an of to in on for with by from as at and or but not more less than into over under "
    "measure compare choose run runs send sends read reads write writes keep keeps use uses "
    "time times second seconds token-level per rate rates cost costs price quality accuracy"
).split()
_WORDS = tuple(w for w in _WORDS if re.fullmatch(r"\w+", w))
_OPENERS = ("Sure", "Certainly", "In", "Here", "Generally", "Yes", "Overall", "Briefly", "Put")


@dataclass(frozen=True)
class Reply:
    """A generated reply: ``tokens`` joined give ``text``; ``finish_reason`` is "stop" or "length"."""

    tokens: tuple[str, ...]
    finish_reason: str

    @property
    def text(self) -> str:
        return "".join(self.tokens)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)


def _natural_tokens(rng: Any, prompt_words: list[str], length: int) -> list[str]:
    tokens: list[str] = [rng.choice(_OPENERS)]
    since_punct = 1
    sentence_len = rng.randint(6, 14)
    while len(tokens) < length:
        remaining = length - len(tokens)
        if since_punct >= sentence_len and remaining >= 2:
            tokens.append(".")
            nxt = rng.choice(_OPENERS)
            tokens.append(("\n\n" if rng.random() < 0.2 else " ") + nxt)
            since_punct, sentence_len = 1, rng.randint(6, 14)
            continue
        if since_punct >= 3 and rng.random() < 0.08 and remaining >= 2:
            tokens.append(",")
            since_punct += 1
            continue
        pool = prompt_words if prompt_words and rng.random() < 0.25 else _WORDS
        tokens.append(" " + rng.choice(pool))
        since_punct += 1
    if len(tokens) > 1 and tokens[-1] != "." and length > 1:
        tokens[-1] = "."  # a natural reply ends its sentence (same token count)
    return tokens


def generate_reply(seed: int, model: str, messages: Iterable[Any], *, max_tokens: int | None = None,
                   min_len: int = 12, max_len: int = 96) -> Reply:
    """A deterministic reply for ``(seed, model, messages)``.

    The natural length is drawn from ``[min_len, max_len]``; ``max_tokens``
    smaller than that cuts the reply (``finish_reason="length"``), the same
    prefix as the uncut reply. ``max_tokens=0`` gives an empty reply.
    """
    msgs = list(messages)
    key = json.dumps(
        [[m.get("role"), message_text(m.get("content"))] if isinstance(m, dict) else str(m) for m in msgs],
        sort_keys=True, ensure_ascii=False,
    )
    rng = rng_for(seed, "text", model, key)
    natural = rng.randint(min_len, max(min_len, max_len))
    last_user = next((message_text(m.get("content")) for m in reversed(msgs)
                      if isinstance(m, dict) and m.get("role") == "user"), "")
    prompt_words = [w for w in re.findall(r"\w+", last_user) if len(w) > 3][:24]
    tokens = _natural_tokens(rng, prompt_words, natural)
    if max_tokens is not None and max_tokens < len(tokens):
        return Reply(tuple(tokens[: max(0, int(max_tokens))]), "length")
    return Reply(tuple(tokens), "stop")
