"""A stand-in ``vllm`` for the worker in tier ``sim`` (no engine, no GPU, no model download).

The grader puts this folder's parent on the worker's ``sys.path`` (``INFERGRADE_EXTRA_SYSPATH``) only in
tier ``sim``, so ``from vllm import LLM, SamplingParams`` in a student's ``offline_generate`` finds it.
It answers like vLLM's offline API - ``LLM(model, **engine_args).generate(prompts, sampling_params)``
returns one ``RequestOutput`` per prompt, in prompt order, with ``request_id`` (a per-``LLM`` counter as
a string, like vLLM's), ``prompt``, ``prompt_token_ids``, ``outputs[0].text`` / ``.token_ids`` /
``.finish_reason``, ``finished`` - with deterministic texts (grading/sims/openai_server/replies.py, seed
``INFERGRADE_VLLM_STANDIN_SEED``), and records every engine and call to the JSON file named by
``INFERGRADE_VLLM_STANDIN_RECORD`` (nothing is recorded when it is unset)::

    {"engines": [{"model": ..., "engine_args": {...}, "calls": [{"method": "generate", "prompts": [...],
      "sampling_params": [{...}], "request_ids": [...], "texts": [...]}]}]}
"""

from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any

from grading.sims.openai_server.replies import chat_reply, completion_reply, token_id
from grading.sims.text import count_prompt_tokens, message_text, tokenize

__all__ = ["LLM", "SamplingParams", "RequestOutput", "CompletionOutput", "__version__"]
__version__ = "0.32.0+sim"

STANDIN = True  # lets a test tell this module from the real one
_RECORD_ENV, _SEED_ENV = "INFERGRADE_VLLM_STANDIN_RECORD", "INFERGRADE_VLLM_STANDIN_SEED"
# EngineArgs fields a student may plausibly pass (anything else: TypeError, as EngineArgs(**kw) raises)
_ENGINE_ARGS = frozenset("""
tokenizer tokenizer_mode skip_tokenizer_init trust_remote_code allowed_local_media_path tensor_parallel_size
pipeline_parallel_size dtype quantization revision tokenizer_revision seed gpu_memory_utilization swap_space
kv_cache_memory_bytes cpu_offload_gb enforce_eager max_seq_len_to_capture disable_custom_all_reduce
disable_async_output_proc hf_token hf_overrides mm_processor_kwargs override_pooler_config compilation_config
max_model_len max_num_seqs max_num_batched_tokens enable_prefix_caching enable_chunked_prefill block_size
served_model_name download_dir load_format distributed_executor_backend kv_cache_dtype task runner
generation_config enable_lora max_lora_rank max_loras limit_mm_per_prompt disable_log_stats logprobs_mode
""".split())


@dataclass
class SamplingParams:
    """vLLM's defaults: n=1, temperature=1.0, top_p=1.0, top_k=0, max_tokens=16, seed=None, stop=None."""

    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: Any = None
    max_tokens: int | None = 16
    min_tokens: int = 0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    repetition_penalty: float = 1.0
    ignore_eos: bool = False
    logprobs: int | None = None
    detokenize: bool = True
    skip_special_tokens: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}.")
        if not math.isfinite(self.temperature):
            raise ValueError(f"temperature must be a finite number, got {self.temperature}.")
        if self.temperature < 0.0:
            raise ValueError(f"temperature must be non-negative, got {self.temperature}.")
        if self.temperature > 2.0:
            raise ValueError(f"temperature must be in [0, 2], got {self.temperature}.")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}.")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {self.max_tokens}.")
        if self.temperature < 1e-5 and self.n > 1:
            raise ValueError(f"n must be 1 when using greedy sampling, got {self.n}.")

    def to_data(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("n", "temperature", "top_p", "top_k", "seed", "stop", "max_tokens")}


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: Any = None
    finish_reason: str | None = None
    stop_reason: Any = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: Any
    outputs: list[CompletionOutput]
    finished: bool = True
    metrics: Any = None
    num_cached_tokens: int = 0
    kv_transfer_params: Any = field(default=None, repr=False)


def _record(update: Any) -> None:
    path = os.environ.get(_RECORD_ENV)
    if not path:
        return
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        data = {"engines": []}
    update(data)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, default=repr)
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return repr(value)


class LLM:
    """``vllm.LLM`` without an engine: records its arguments and answers deterministically."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - _ENGINE_ARGS)
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument '{unknown[0]}'")
        if not isinstance(model, str) or not model:
            raise ValueError("model must name a Hugging Face model id or a local directory")
        self.model = model
        self.engine_args = {k: _jsonable(v) for k, v in kwargs.items()}
        self.request_counter = itertools.count()
        self.seed = int(os.environ.get(_SEED_ENV, "0") or 0)

        def add(data: dict[str, Any]) -> None:
            data["engines"].append({"model": model, "engine_args": self.engine_args, "calls": []})
            self._slot = len(data["engines"]) - 1

        self._slot = -1
        _record(add)

    def _log_call(self, call: dict[str, Any]) -> None:
        def add(data: dict[str, Any]) -> None:
            if 0 <= self._slot < len(data["engines"]):
                data["engines"][self._slot]["calls"].append(call)

        _record(add)

    @staticmethod
    def _params_for(sampling_params: Any, count: int) -> list[SamplingParams]:
        if sampling_params is None:
            return [SamplingParams()] * count
        if isinstance(sampling_params, (list, tuple)):
            if len(sampling_params) != count:
                raise ValueError("The lengths of prompts and sampling_params must be the same.")
            return list(sampling_params)
        return [sampling_params] * count

    def _outputs(self, prompt: str | None, params: SamplingParams, replies: list[Any],
                 prompt_ids: list[int]) -> RequestOutput:
        outs = [CompletionOutput(i, r.text, [token_id(t) for t in r.tokens], finish_reason=r.finish_reason)
                for i, r in enumerate(replies)]
        return RequestOutput(str(next(self.request_counter)), prompt, prompt_ids, None, outs)

    def generate(self, prompts: Any, sampling_params: Any = None, use_tqdm: Any = True, **kwargs: Any) -> list:
        if isinstance(prompts, (str, dict)):
            prompts = [prompts]
        texts = []
        for p in prompts:
            if isinstance(p, dict) and isinstance(p.get("prompt"), str):
                texts.append(p["prompt"])
            elif isinstance(p, str):
                texts.append(p)
            else:
                raise TypeError(f"prompt must be a string or {{'prompt': str}}, got {type(p).__name__}")
        params = self._params_for(sampling_params, len(texts))
        results = []
        for text, sp in zip(texts, params):
            replies = [completion_reply(self.seed, self.model, text, sp.max_tokens, j) for j in range(sp.n)]
            results.append(self._outputs(text, sp, replies, [token_id(t) for t in tokenize(text)]))
        self._log_call({"method": "generate", "prompts": texts, "sampling_params": [sp.to_data() for sp in params],
                        "request_ids": [r.request_id for r in results],
                        "texts": [r.outputs[0].text for r in results]})
        return results

    def chat(self, messages: Any, sampling_params: Any = None, use_tqdm: Any = True, **kwargs: Any) -> list:
        conversations = [messages] if messages and isinstance(messages[0], dict) else list(messages)
        params = self._params_for(sampling_params, len(conversations))
        results = []
        for conv, sp in zip(conversations, params):
            plain = [{"role": m.get("role"), "content": message_text(m.get("content"))} for m in conv]
            replies = [chat_reply(self.seed, self.model, plain, sp.max_tokens, j) for j in range(sp.n)]
            results.append(self._outputs(None, sp, replies, [0] * count_prompt_tokens(plain)))
        self._log_call({"method": "chat", "messages": conversations,
                        "sampling_params": [sp.to_data() for sp in params],
                        "request_ids": [r.request_id for r in results],
                        "texts": [r.outputs[0].text for r in results]})
        return results
