"""What generates the tokens behind the Ollama API: the simulator's paced engine (tier ``sim``).

An engine has ``load(spec)``, ``unload(name)``, ``generate(spec, req, emit)`` and ``embed(spec,
texts)``. ``generate`` awaits ``emit(piece)`` for every token as it is produced and returns the
statistics Ollama reports (token counts and durations in nanoseconds, measured as they happened).
The ``local`` tier plugs a real llama.cpp engine in here (grading/engines/llamacpp.py).

The simulator's pacing: a prompt of P tokens takes P / prompt_eval_tok_s, then token i (from 0)
is emitted at prompt_end + (i + 1) / eval_tok_s. Text and counts come from grading/sims/text.py
(one tokenizer: the pieces streamed are exactly the tokens counted).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from ..clock import PacingClock
from ..seeds import derive_seed, rng_for
from ..text import count_prompt_tokens, count_tokens, generate_reply
from .catalogue import ModelSpec

__all__ = ["GenRequest", "GenStats", "SimEngine", "Emit"]

Emit = Callable[[str], Awaitable[None]]


@dataclass
class GenRequest:
    messages: list[dict[str, Any]]          # the chat (for /api/generate: [system?, user prompt])
    raw: bool = False                       # /api/generate raw: the prompt is counted as is
    num_predict: int | None = None          # None or < 0: no limit
    temperature: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass
class GenStats:
    prompt_eval_count: int
    prompt_eval_duration_ns: int
    eval_count: int
    eval_duration_ns: int
    done_reason: str                        # "stop" | "length"
    text: str
    content_times: list[float] = field(default_factory=list)   # monotonic time each piece was emitted


class SimEngine:
    """The simulated engine: deterministic replies for the run's seed, paced by the model's rates."""

    tier = "sim"

    def __init__(self, seed: int, clock: PacingClock | None = None) -> None:
        self.seed = int(seed)
        self.clock = clock or PacingClock()

    async def load(self, spec: ModelSpec) -> None:
        await self.clock.sleep(spec.load_s)

    def unload(self, name: str) -> None:
        pass

    def prompt_tokens(self, req: GenRequest) -> int:
        if req.raw:
            return sum(count_tokens(str(m.get("content") or "")) for m in req.messages)
        return count_prompt_tokens(req.messages)

    async def generate(self, spec: ModelSpec, req: GenRequest, emit: Emit) -> GenStats:
        n_prompt = self.prompt_tokens(req)
        seed = self.seed if req.seed is None else derive_seed(self.seed, "option-seed", str(req.seed))
        limit = None if req.num_predict is None or req.num_predict < 0 else int(req.num_predict)
        reply = generate_reply(seed, spec.name, req.messages, max_tokens=limit)
        tokens, done_reason = list(reply.tokens), reply.finish_reason
        if req.stop:
            text = ""
            for i, tok in enumerate(tokens):
                if any(s and s in text + tok for s in req.stop):
                    tokens, done_reason = tokens[:i], "stop"
                    break
                text += tok
        start = self.clock.now()
        await self.clock.pace_until(start + n_prompt / spec.prompt_eval_tok_s)
        prompt_end = self.clock.now()
        interval = 1.0 / spec.eval_tok_s
        times: list[float] = []
        for i, tok in enumerate(tokens):
            await self.clock.pace_until(prompt_end + (i + 1) * interval)
            times.append(time.monotonic())
            await emit(tok)
        end = self.clock.now()
        return GenStats(
            prompt_eval_count=n_prompt,
            prompt_eval_duration_ns=max(1, int((prompt_end - start) * 1e9)),
            eval_count=len(tokens),
            eval_duration_ns=max(1, int((end - prompt_end) * 1e9)) if tokens else 0,
            done_reason=done_reason,
            text="".join(tokens),
            content_times=times,
        )

    def embed(self, spec: ModelSpec, texts: list[str]) -> tuple[list[list[float]], int]:
        """Unit vectors, deterministic per (seed, model, text); and the prompt tokens counted."""
        out = []
        for text in texts:
            rng = rng_for(self.seed, "embed", spec.name, text)
            vec = [rng.gauss(0.0, 1.0) for _ in range(spec.embed_dim)]
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            out.append([v / norm for v in vec])
        return out, sum(count_tokens(t) for t in texts)
