"""Text-to-image through Hugging Face Inference Providers, saved as PNG."""

from __future__ import annotations

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
    """Generate an image and save it as a PNG file at ``out_path``.

    Returns ``{"path", "width", "height", "provider", "latency_s"}`` (path as a str; width and height
    of the saved image in pixels; ``provider`` the one you asked for).

    TODO:
      - ``InferenceClient(provider=provider, api_key=get_token(), timeout=timeout)``;
        ``image = client.text_to_image(prompt, model=model, width=width, height=height, seed=seed)``
        returns a ``PIL.Image.Image`` whatever the provider sent (JPEG bytes, base64, a URL).
      - Time the call with ``time.perf_counter()``.
      - Save as PNG: ``image.save(out_path, format="PNG")`` - some providers answer JPEG, and the
        file must really be a PNG. Create the parent folder if needed. The saved image must have the
        requested size.
    """
    raise NotImplementedError("TODO: implement hf_image.generate_image")
