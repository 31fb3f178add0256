"""Libraries imported once by a process that forks (the zygote, the kernel forker), and what each fork
does so that they behave as if it had imported them itself, under its own environment.

Two of the libraries student code uses read the environment when imported: ``huggingface_hub`` fixes
its token and cache paths from ``HF_HOME`` / ``XDG_CACHE_HOME`` / ``HOME`` (``constants.HF_TOKEN_PATH``
and copies of it), ``ollama`` builds its default client from ``OLLAMA_HOST``. A fork may differ from its
forker only in its home (:data:`PER_FORK`: every checkpoint's worker has a home of its own); it takes
its environment with :func:`use_environment`, which re-reads ``huggingface_hub.constants`` and moves
every copy of the old home's paths to the new one. Any other difference that could matter
(:func:`env_conflict`) means no fork: the caller starts a fresh interpreter instead.

>>> failed = import_modules(["openai", "huggingface_hub.inference._client"])   # doctest: +SKIP
>>> env_conflict(os.environ, worker_env)      # None: fork; else start a fresh one   # doctest: +SKIP
>>> # ... fork; in the child:
>>> use_environment(worker_env)                                                 # doctest: +SKIP
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
from pathlib import PurePath
from types import FunctionType
from typing import Any, Iterable, Mapping

__all__ = ["PER_FORK", "import_modules", "env_conflict", "use_environment"]

#: may differ between the forker and a fork (:func:`use_environment` makes the libraries follow)
PER_FORK = ("HOME", "HF_HOME", "XDG_CACHE_HOME")
#: set by bubblewrap for the zygote (its starting folder), read by no library
NOT_READ = ("PWD",)
#: libraries that read the environment at import: a fork whose environment differs elsewhere from its
#: forker's cannot use them as imported (see :func:`env_conflict`)
READ_AT_IMPORT = ("huggingface_hub", "ollama")


def import_modules(names: Iterable[str]) -> list[str]:
    """Import ``names``, then freeze everything loaded; return ``"name: error"`` for each that failed
    (the fork imports it itself, and reports what is wrong where the student's code needs it).

    What is imported now lives as long as every fork: out of the collector's sight (``gc.freeze``), a
    fork's collections neither walk it nor touch (copy) the pages it shares with its forker."""
    failed = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - a missing or broken library is the student's to see
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    gc.collect()
    gc.freeze()
    return failed


def _loaded(prefixes: Iterable[str]) -> list[str]:
    prefixes = tuple(prefixes)
    return [name for name in list(sys.modules)
            if any(name == p or name.startswith(p + ".") for p in prefixes)]


def env_conflict(own: Mapping[str, str], wanted: Mapping[str, str], *, ignore: Iterable[str] = ()) -> str | None:
    """Why a fork with environment ``wanted`` cannot inherit what this process (environment ``own``)
    imported, or ``None`` when it can: where a library of :data:`READ_AT_IMPORT` is loaded, every
    variable but :data:`PER_FORK` and ``ignore`` must be the same."""
    if not _loaded(READ_AT_IMPORT):
        return None
    skip = {*PER_FORK, *NOT_READ, *ignore}
    differ = sorted(k for k in set(own) | set(wanted) if k not in skip and own.get(k) != wanted.get(k))
    if differ:
        return f"its environment differs in {', '.join(differ[:5])} from the one preloaded libraries were imported with"
    return None


def use_environment(env: Mapping[str, str]) -> None:
    """In a fork: make ``env`` its whole environment, and the preloaded libraries that read the home at
    import use its home instead of the forker's."""
    inherited = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    _follow_home(inherited)


def _follow_home(old: Mapping[str, str]) -> None:
    """Re-read ``huggingface_hub.constants`` and move the paths under ``old``'s homes to ``os.environ``'s."""
    moves = [(old[k], os.environ[k]) for k in PER_FORK
             if old.get(k) and os.environ.get(k) and old[k] != os.environ[k]]
    if not moves or "huggingface_hub.constants" not in sys.modules:
        return
    importlib.reload(sys.modules["huggingface_hub.constants"])
    moves.sort(key=lambda move: len(move[0]), reverse=True)   # HF_HOME before the HOME it lies under
    for name in _loaded(["huggingface_hub"]):
        if name != "huggingface_hub.constants":
            _move_paths(vars(sys.modules[name]), moves)


def _moved(value: Any, moves: list[tuple[str, str]]) -> Any:
    """``value`` with its old home replaced, if it is a path (str or PurePath) under one; else itself."""
    text = str(value) if isinstance(value, PurePath) else value
    if not isinstance(text, str):
        return value
    for before, after in moves:
        if text == before or text.startswith(before + os.sep):
            new = after + text[len(before):]
            return type(value)(new) if isinstance(value, PurePath) else new
    return value


def _move_paths(namespace: dict[str, Any], moves: list[tuple[str, str]]) -> None:
    """Module globals (``from .constants import HF_HUB_CACHE``), default arguments of its functions
    and the attributes and methods of its classes."""
    for key, value in list(namespace.items()):
        if isinstance(value, (str, PurePath)):
            moved = _moved(value, moves)
            if moved is not value:
                namespace[key] = moved
        elif isinstance(value, FunctionType):
            _move_defaults(value, moves)
        elif isinstance(value, type) and value.__module__ == namespace.get("__name__"):
            attrs = {k: v for k, v in vars(value).items() if isinstance(v, (str, PurePath))}
            for k, v in attrs.items():
                moved = _moved(v, moves)
                if moved is not v:
                    setattr(value, k, moved)
            for member in vars(value).values():
                function = getattr(member, "__func__", member)   # classmethod, staticmethod
                if isinstance(function, FunctionType):
                    _move_defaults(function, moves)


def _move_defaults(function: FunctionType, moves: list[tuple[str, str]]) -> None:
    if function.__defaults__:
        function.__defaults__ = tuple(_moved(v, moves) for v in function.__defaults__)
    if function.__kwdefaults__:
        function.__kwdefaults__ = {k: _moved(v, moves) for k, v in function.__kwdefaults__.items()}
