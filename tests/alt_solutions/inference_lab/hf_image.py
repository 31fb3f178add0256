"""Text-to-image, written differently from reference/: no provider-mapping prefetch (the first
request of a provider includes the Hub lookup), the answer's bytes re-encoded through an in-memory
buffer, times with ``time.monotonic``."""

import io
import time
from pathlib import Path

from .auth import get_token

__all__ = ["generate_image"]


def generate_image(prompt, *, model, out_path, provider="auto", width=512, height=512, seed=None, timeout=120.0):
    from huggingface_hub import InferenceClient

    client = InferenceClient(provider=provider, api_key=get_token(), timeout=timeout)
    began = time.monotonic()
    picture = client.text_to_image(prompt, model=model, width=width, height=height, seed=seed)
    took = time.monotonic() - began
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    target = Path(out_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(buffer.getvalue())
    return {"path": str(target), "width": picture.width, "height": picture.height, "provider": provider,
            "latency_s": took}
