"""Comparing a server's JSON with a recorded shape (keys and JSON types, not values).

    from json_shapes import same_shape

    same_shape(response.json(), json.loads(recorded.read_text()), exact=True)
"""

from __future__ import annotations

from typing import Any


def same_shape(got: Any, want: Any, where: str = "$", *, exact: bool = False, lists_match: bool = False,
               integers: bool = False) -> None:
    """``got`` has every key of ``want`` with the same JSON type, recursively (lists by first item).

    ``exact``: no keys beyond ``want``'s. ``lists_match``: a list is empty exactly when ``want``'s is.
    ``integers``: where ``want`` holds an integer, ``got`` must too (e.g. Ollama's durations in ns).
    """
    def check(got: Any, want: Any, where: str) -> None:
        if isinstance(want, dict):
            assert isinstance(got, dict), f"{where}: {type(got).__name__}, want an object"
            if exact:
                assert set(got) == set(want), f"{where}: keys {sorted(got)}, want {sorted(want)}"
            for key, value in want.items():
                assert key in got, f"{where}: no key {key!r} (has {sorted(got)})"
                check(got[key], value, f"{where}.{key}")
        elif isinstance(want, list):
            assert isinstance(got, list), f"{where}: {type(got).__name__}, want a list"
            if lists_match:
                assert bool(got) == bool(want), f"{where}: {len(got)} items, want {len(want)}"
            if want and got:
                check(got[0], want[0], f"{where}[0]")
        elif want is None:
            assert got is None, f"{where}: {got!r}, want null"
        elif isinstance(want, bool):
            assert isinstance(got, bool), f"{where}: {got!r}, want a bool"
        elif isinstance(want, (int, float)):
            assert isinstance(got, (int, float)) and not isinstance(got, bool), f"{where}: {got!r}, want a number"
            if integers and isinstance(want, int):
                assert isinstance(got, int), f"{where}: {got!r}, want an integer"
        else:
            assert isinstance(got, str), f"{where}: {got!r}, want a string"

    check(got, want, where)
