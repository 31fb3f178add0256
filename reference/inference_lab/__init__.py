"""inference_lab — reference solution for the chapter "Hugging Face Platform and Local Inference".

Modules (the lab contract; names, signatures and return keys are fixed):

- ``auth``        get_token, mask, MissingTokenError
- ``hf_chat``     chat, chat_openai, stream_chat          (Hugging Face Inference Providers)
- ``hf_image``    generate_image                          (text-to-image via providers)
- ``strategies``  compare_providers                       (latency/stability of provider strategies)
- ``failover``    chat_with_failover, AllProvidersFailed  (timeouts, backoff, Retry-After, failover)
- ``ollama_client``  list_models, ensure_model, generate, chat, chat_openai
- ``vllm_client``    serve_command, offline_generate, chat, complete
- ``bench``       measure                                 (TTFT, TPOT, ITL, e2e, tokens/s)
- ``hardware``    detect, estimate_memory_gb, fits, sample_usage

Every function is synchronous, returns plain JSON-able data, and reports times in seconds.
"""

from .auth import MissingTokenError
from .failover import AllProvidersFailed

__all__ = [
    "MissingTokenError",
    "AllProvidersFailed",
    "auth",
    "hf_chat",
    "hf_image",
    "strategies",
    "failover",
    "ollama_client",
    "vllm_client",
    "bench",
    "hardware",
]
