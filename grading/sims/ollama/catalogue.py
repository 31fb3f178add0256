"""The models the Ollama simulator knows: present at start, or pullable from the "library".

Sizes, families and quantizations are those of the real library entries; the pacing numbers
(seconds to load, prompt-eval and eval rates in tokens/s, seconds a pull takes) are the simulator's
ground truth, chosen like a small CPU would do. Everything is data: a test or a checkpoint changes
it through ``OllamaServer.set_model`` (see server.py), never by editing this file.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["ModelSpec", "LIBRARY", "DEFAULT_PRESENT", "normalize_name", "digest_of", "VERSION"]

#: what ``/api/version`` answers (and ``ollama --version`` prints)
VERSION = "0.9.0"


@dataclass(frozen=True)
class ModelSpec:
    name: str                          # "smollm2:135m" (always with a tag)
    family: str
    parameter_size: str
    quantization_level: str
    size: int                          # bytes on disk
    context_length: int = 8192
    embedding_length: int = 576
    capabilities: tuple[str, ...] = ("completion",)
    load_s: float = 0.25               # first use (or after keep_alive expired)
    prompt_eval_tok_s: float = 400.0
    eval_tok_s: float = 60.0
    pull_s: float = 0.4                # a whole pull, streamed as progress lines
    embed_dim: int = 384
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return digest_of(self.name)

    def with_(self, **changes: Any) -> "ModelSpec":
        return replace(self, **changes)


def normalize_name(name: str) -> str:
    """``llama3.2`` -> ``llama3.2:latest``; names are case-insensitive in Ollama (kept lower-case here)."""
    name = (name or "").strip()
    for prefix in ("registry.ollama.ai/library/", "registry.ollama.ai/"):
        if name.lower().startswith(prefix):
            name = name[len(prefix):]
    last = name.rsplit("/", 1)[-1]
    if name and ":" not in last:
        name += ":latest"
    return name.lower()


def digest_of(name: str) -> str:
    """A stable sha256 hex digest for a model name (the manifest's digest in /api/tags)."""
    return hashlib.sha256(("infergrade-ollama:" + name).encode()).hexdigest()


_MODELS = [
    ModelSpec("smollm2:135m", "llama", "134.52M", "F16", 270_898_672, context_length=8192,
              embedding_length=576, load_s=0.20, prompt_eval_tok_s=900.0, eval_tok_s=80.0),
    ModelSpec("llama3.2:1b", "llama", "1.2B", "Q8_0", 1_321_098_329, context_length=131072,
              embedding_length=2048, capabilities=("completion", "tools"), load_s=0.40,
              prompt_eval_tok_s=300.0, eval_tok_s=30.0),
    ModelSpec("llama3.2:latest", "llama", "3.2B", "Q4_K_M", 2_019_393_189, context_length=131072,
              embedding_length=3072, capabilities=("completion", "tools"), load_s=0.60,
              prompt_eval_tok_s=150.0, eval_tok_s=15.0),
    ModelSpec("qwen2.5:0.5b", "qwen2", "494.03M", "Q4_K_M", 397_821_319, context_length=32768,
              embedding_length=896, capabilities=("completion", "tools"), load_s=0.25,
              prompt_eval_tok_s=600.0, eval_tok_s=50.0),
    ModelSpec("gemma3:1b", "gemma3", "999.89M", "Q4_K_M", 815_319_791, context_length=32768,
              embedding_length=1152, load_s=0.35, prompt_eval_tok_s=350.0, eval_tok_s=40.0),
    ModelSpec("nomic-embed-text:latest", "nomic-bert", "137M", "F16", 274_302_450, context_length=2048,
              embedding_length=768, capabilities=("embedding",), load_s=0.15, embed_dim=768),
]
#: every model a pull can fetch, by normalized name
LIBRARY: dict[str, ModelSpec] = {m.name: m for m in _MODELS}
#: the models on disk when the simulator starts (or after reset())
DEFAULT_PRESENT: tuple[str, ...] = ("smollm2:135m", "llama3.2:1b", "nomic-embed-text:latest")
