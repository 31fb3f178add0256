"""Text-to-image through Hugging Face Inference Providers, saved as PNG."""

from __future__ import annotations

import os
import time
from pathlib import Path

from .auth import get_token
from .hf_chat import _prepare_provider

__all__ = ["generate_image"]


def generate_image(
    prompt,
    *,
    model,
    out_path,
    provider="auto",
    width=512,
    height=512,
    seed=None,
    timeout=120.0,
) -> dict:
    """Generate an image with ``InferenceClient.text_to_image`` and save it as a PNG.

    Returns ``{path, width, height, provider, latency_s}``. Providers answer JPEG, PNG, base64 or
    a URL; ``text_to_image`` hands back a PIL image either way, which is written as PNG (whatever
    the extension of ``out_path``) at the requested size.
    """
    from huggingface_hub import InferenceClient

    from PIL import Image

    token = get_token()
    width, height = int(width), int(height)
    Image.init()  # load PIL's format plugins now, not inside the timed call
    _prepare_provider(provider, "text-to-image", model)
    with InferenceClient(provider=provider, api_key=token, timeout=timeout) as client:
        start = time.perf_counter()
        image = client.text_to_image(
            prompt, model=model, width=width, height=height, seed=seed
        )
        image.load()  # decode now: a broken image fails here, inside the measured call
        latency = time.perf_counter() - start

    if image.mode not in ("RGB", "RGBA", "L", "LA"):
        has_alpha = "A" in image.mode or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.LANCZOS)
    path = Path(os.fspath(out_path))
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG")
    return {
        "path": str(path),
        "width": image.size[0],
        "height": image.size[1],
        "provider": provider,
        "latency_s": latency,
    }
