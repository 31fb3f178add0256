"""Load ``catalogue.toml``: the served model and its pacing truth (see the comments there).

Usage::

    cfg = load_catalogue()                 # {"version", "sim": {"time_scale"}, "model": {...}}
    spec = ModelConfig.from_catalogue(cfg) # served names, root, max_model_len, ttft_s, itl_s, batch_size
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["CATALOGUE_PATH", "ModelConfig", "load_catalogue"]

CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")


@dataclass(frozen=True)
class ModelConfig:
    """The served model and its pacing (seconds before time_scale)."""

    served_model_names: tuple[str, ...]
    root: str
    max_model_len: int
    ttft_s: float
    itl_s: float
    batch_size: int
    # Tokens per streamed content chunk (the last chunk may carry fewer). Real vLLM can send several
    # tokens in one chunk, which is why tokens are counted from usage, never from chunks.
    tokens_per_chunk: int = 1

    @property
    def name(self) -> str:
        """The name the server reports (the first served name)."""
        return self.served_model_names[0]

    @classmethod
    def from_catalogue(cls, cat: dict[str, Any]) -> "ModelConfig":
        m = cat["model"]
        return cls(served_model_names=tuple(m.get("served_model_names") or [m["root"]]), root=str(m["root"]),
                   max_model_len=int(m["max_model_len"]), ttft_s=float(m["ttft_s"]), itl_s=float(m["itl_s"]),
                   batch_size=int(m["batch_size"]),
                   tokens_per_chunk=int(m.get("tokens_per_chunk", 1))).checked()

    def checked(self) -> "ModelConfig":
        if not self.served_model_names or not all(isinstance(n, str) and n for n in self.served_model_names):
            raise ValueError("served_model_names must be non-empty strings")
        if self.max_model_len < 1:
            raise ValueError("max_model_len must be >= 1")
        if not (self.ttft_s >= 0 and self.itl_s >= 0):
            raise ValueError("ttft_s and itl_s must be >= 0")
        if self.batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if self.tokens_per_chunk < 1:
            raise ValueError("tokens_per_chunk must be >= 1")
        return self

    def with_(self, **changes: Any) -> "ModelConfig":
        if "served_model_names" in changes:
            names = changes["served_model_names"]
            changes["served_model_names"] = (names,) if isinstance(names, str) else tuple(names)
        return replace(self, **changes).checked()

    def to_data(self) -> dict[str, Any]:
        data = asdict(self)
        data["served_model_names"] = list(self.served_model_names)
        return data


def load_catalogue(path: str | Path | None = None) -> dict[str, Any]:
    """The catalogue as a dict (validated: a bad file fails loudly at start, not mid-grading)."""
    with open(path or CATALOGUE_PATH, "rb") as fh:
        cat = tomllib.load(fh)
    ModelConfig.from_catalogue(cat)
    scale = float(cat.get("sim", {}).get("time_scale", 1.0))
    if not scale > 0:
        raise ValueError("sim.time_scale must be > 0")
    return cat
