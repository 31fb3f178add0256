"""Every byte searched: the Hugging Face rule over a stream of bytes, fed in chunks.

The text scan (:mod:`.text`, :mod:`.notebooks`) reads the start of a file as text and cannot read
binary data; a token past that start (after a 6 MiB notebook output) or in a file that is not text
(a ``.env`` that starts with a NUL byte) would go unseen. :class:`ByteScanner` searches all of it,
cheaply: the token's shape (``hf_`` and 30 or more letters and digits) and the extra secrets (the
canary), in UTF-8/ASCII and in UTF-16 (both byte orders), one C regex pass per encoding over each
chunk. Memory stays bounded: the chunk being searched plus a short carry, so a token that straddles
two chunks is found once, whole or (past the carry) at least as 30+ characters of it.

What it finds is reported by the scan that fed it, masked (``hf_…w9Qz``), when the text scan did not
already report that token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grading.leaks.matcher import _masked_excerpt, _Matcher, mask_secret

CHUNK_BYTES = 1 << 20
MAX_HITS = 50                 # distinct tokens kept per stream (more is noise)
CONTEXT_BYTES = 120           # of the line on each side of a hit, for its masked excerpt

_SHAPES = {  # TOKEN_RE's shape, per encoding
    "utf-8": rb"hf_[A-Za-z0-9]{30,}",
    "utf-16-le": rb"h\x00f\x00_\x00(?:[A-Za-z0-9]\x00){30,}",
    "utf-16-be": rb"\x00h\x00f\x00_(?:\x00[A-Za-z0-9]){30,}",
}
_SHAPE_MIN = {"utf-8": 33, "utf-16-le": 66, "utf-16-be": 66}
_LEADING_WORD = re.compile(rb"[A-Za-z0-9_]+")
_TRAILING_WORD = re.compile(rb"[A-Za-z0-9_]+\Z")


@dataclass(frozen=True)
class ByteHit:
    """One token found in the bytes. ``secret`` is the token itself: never show it, mask it."""

    secret: str
    offset: int               # of its first byte in the stream
    line: int | None          # 1-based, for UTF-8/ASCII hits (lines end with b"\n")
    excerpt: str              # its line, shortened, with every token masked


class ByteScanner:
    """``feed(chunk)`` the bytes of one file (or git object) in order, then ``finish()``: its tokens.

    With ``token_shape=False`` only the matcher's extra secrets are looked for (the runtime scan).
    """

    def __init__(self, matcher: _Matcher, *, token_shape: bool = True, max_hits: int = MAX_HITS) -> None:
        self.matcher = matcher
        self.max_hits = max_hits
        self.patterns: list[tuple[re.Pattern[bytes], str]] = []
        longest_min = 1
        for encoding, shape in _SHAPES.items():
            alternatives = [shape] if token_shape else []
            extras = [secret.encode(encoding) for secret in matcher.extras]
            alternatives += [re.escape(secret) for secret in extras]
            if not alternatives:
                continue
            self.patterns.append((re.compile(b"|".join(alternatives)), encoding))
            longest_min = max([longest_min] + ([_SHAPE_MIN[encoding]] if token_shape else [])
                              + [len(secret) for secret in extras])
        # A match that starts this close to the end of what has been fed may not be whole yet.
        self.overlap = longest_min - 1
        self.hits: list[ByteHit] = []
        self.more = 0                          # tokens found past max_hits, or again (not kept)
        self._seen: set[str] = set()
        self._carry = b""
        self._carry_at = 0                     # stream offset of _carry's first byte
        self._carry_newlines = 0               # newlines before _carry
        self._done_upto = 0                    # matches starting before this offset were handled
        self.total = 0

    def feed(self, data: bytes) -> None:
        if not data:
            return
        self.total += len(data)
        self._search(self._carry + data, final=False)

    def finish(self) -> list[ByteHit]:
        self._search(self._carry, final=True)
        self._carry = b""
        return self.hits

    def _search(self, buf: bytes, *, final: bool) -> None:
        at = self._carry_at
        # Matches that start from ``boundary`` on are left for the next round (they may still grow, and
        # their excerpt needs the bytes after them): the carry keeps them, with the bytes before them.
        boundary = len(buf) if final else max(0, len(buf) - self.overlap - CONTEXT_BYTES)
        if self.patterns and len(self.hits) < self.max_hits:
            found = []
            for pattern, encoding in self.patterns:
                for match in pattern.finditer(buf):
                    start = match.start()
                    if start >= boundary:
                        break
                    if at + start >= self._done_upto:
                        found.append((start, match.end(), encoding))
            found.sort()
            counted, newlines = 0, self._carry_newlines
            for start, end, encoding in found:
                secret = buf[start:end].decode(encoding, errors="replace")
                if secret in self._seen or len(self.hits) >= self.max_hits:
                    self.more += 1
                    continue
                self._seen.add(secret)
                line = None
                if encoding == "utf-8":
                    newlines += buf.count(b"\n", counted, start)
                    counted = start
                    line = newlines + 1
                    excerpt = self._excerpt(buf, start, end, secret, cut_left=at > 0, final=final)
                else:
                    excerpt = f"(UTF-16 text holding {mask_secret(secret)})"
                self.hits.append(ByteHit(secret=secret, offset=at + start, line=line, excerpt=excerpt))
        self._done_upto = at + boundary
        if final:
            return
        keep_from = max(0, boundary - CONTEXT_BYTES)
        self._carry_newlines += buf.count(b"\n", 0, keep_from)
        self._carry = buf[keep_from:]
        self._carry_at = at + keep_from

    def _excerpt(self, buf: bytes, start: int, end: int, secret: str, *, cut_left: bool, final: bool) -> str:
        """The hit's line, at most CONTEXT_BYTES on each side, every token in it masked; a word cut by
        the window's edge is dropped (it could be part of another token)."""
        line_start = buf.rfind(b"\n", 0, start) + 1
        left = max(line_start, start - CONTEXT_BYTES)
        newline = buf.find(b"\n", end)
        line_end = len(buf) if newline < 0 else newline
        right = min(line_end, end + CONTEXT_BYTES)
        if (left > line_start and _is_word(buf, left - 1)) or (left == 0 and cut_left):
            word = _LEADING_WORD.match(buf, left, start)
            if word:
                left = word.end()
        if (right < line_end and _is_word(buf, right)) or (right == len(buf) and not final):
            word = _TRAILING_WORD.search(buf, end, right)
            if word:
                right = word.start()
        text = buf[left:right].decode("utf-8", errors="replace")
        spans = self.matcher.spans(text)
        if not spans:
            return mask_secret(secret)
        return _masked_excerpt(text, spans)


def _is_word(buf: bytes, index: int) -> bool:
    return bool(_LEADING_WORD.match(buf, index, index + 1))


def covered(secret: str, known: set[str]) -> bool:
    """Whether the text scan already reported ``secret`` (or a part of it cut at the end of what it read)."""
    return any(secret.startswith(k) or k.startswith(secret) for k in known)
