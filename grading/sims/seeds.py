"""Seeds and independent random streams for the simulators.

Every random choice a simulator makes (latencies, fault draws, canary
tokens, generated text) comes from a named stream derived from one run
seed, so a run is reproducible from the seed recorded in its report and
adding a new stream never shifts the numbers of an existing one.

Usage::

    seed = resolve_seed(None)            # random per official run
    rng = rng_for(seed, "hf", "together", "latency")
    rng.random()                         # same value for the same seed and names
"""

from __future__ import annotations

import hashlib
import random
import secrets

__all__ = ["resolve_seed", "rng_for", "derive_seed"]


def resolve_seed(seed: int | None) -> int:
    """Return ``seed`` itself, or a fresh random 31-bit seed when it is None.

    31 bits keep the seed a positive int that every tool (JSON, CSV,
    command-line flags, other languages' RNGs) carries without surprises.
    """
    if seed is None:
        return secrets.randbits(31)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int or None, not {type(seed).__name__}")
    return seed


def derive_seed(seed: int, *names: str) -> int:
    """A stable 64-bit integer derived from ``seed`` and ``names``.

    hashlib rather than ``hash()``: Python salts ``hash()`` of strings per
    process, which would make streams differ between the grader and a rerun.
    The separator byte keeps ``("ab", "c")`` and ``("a", "bc")`` apart.
    """
    h = hashlib.sha256(str(int(seed)).encode("ascii"))
    for name in names:
        h.update(b"\x00")
        h.update(str(name).encode("utf-8"))
    return int.from_bytes(h.digest()[:8], "big")


def rng_for(seed: int, *names: str) -> random.Random:
    """An independent ``random.Random`` for the stream named by ``names``.

    >>> rng_for(7, "a").random() == rng_for(7, "a").random()
    True
    >>> rng_for(7, "a").random() == rng_for(7, "b").random()
    False
    """
    return random.Random(derive_seed(seed, *names))
