"""Checkpoint `hf_image`: text-to-image via Hugging Face Inference Providers, saved as PNG.

``inference_lab.hf_image.generate_image`` is called with three providers that answer in three
different ways (DESIGN.md, recorded traffic): ``hf-inference`` sends raw JPEG bytes, ``together`` a JSON
body with the image in base64, ``fal-ai`` a JSON body with a URL the client then downloads. Each time
the file at ``out_path`` (in the worker's folder) must be a real PNG — the magic bytes and a full
decode — of the requested width and height, holding the very pixels the provider generated for that
prompt and seed. The simulator logs each generated image's size and the SHA-256 of its decoded RGB
pixels; saving decoded pixels as PNG is lossless, so an exact match is expected. The result must name
the provider asked for, and ``latency_s`` must agree with the simulator's log.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

from grading.hf_checks import (FETCH_ROUTES, IMAGE_ROUTES, Observed, auth_problem, describe_records,
                               judge_duration, missing_keys, observe, show)
from grading.safe_read import RefusedFile, read_regular

IMAGE_MODEL = "black-forest-labs/FLUX.1-schnell"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
RESULT_KEYS = ("path", "width", "height", "provider", "latency_s")
MAX_IMAGE_BYTES = 32 * 2**20        # a PNG of the sizes asked for is well under 1 MiB
# provider -> (width, height, seed, seconds the provider takes): sizes that are not square and not
# the default 512 x 512, and latencies far enough apart that only measured times fit all three.
CASES: dict[str, tuple[int, int, int, float]] = {
    "hf-inference": (384, 256, 11, 0.05),   # raw image/jpeg bytes
    "together": (256, 320, 22, 0.40),       # {"data": [{"b64_json": ...}]}
    "fal-ai": (320, 192, 33, 0.15),         # {"images": [{"url": ...}]}, then a download
}
PROVIDERS = list(CASES)
HOW_TO_SAVE = ("InferenceClient.text_to_image(...) returns a PIL image whatever the provider sent; save it "
               "with image.save(out_path, format='PNG')")


def _prompt(provider: str) -> str:
    return f"a lighthouse on a cliff at dawn, watercolor ({provider})"


def _pace(sim: Any, provider: str, seconds: float) -> None:
    scale = float(sim.time_scale) or 1.0
    sim.set_behavior(provider, latency={"kind": "constant", "mean_s": seconds / scale, "stdev_s": 0.0})


# -- one call per provider, shared by the tests (cached per worker) ---------------------------------
_CALLS: dict[tuple[int, str], dict[str, Any]] = {}


def _generate(lab: Any, sim: Any, provider: str) -> dict[str, Any]:
    key = (id(lab), provider)
    if key in _CALLS:
        return _CALLS[key]
    width, height, seed, seconds = CASES[provider]
    _pace(sim, provider, seconds)
    folder = Path(lab.workdir) / "generated"
    folder.mkdir(exist_ok=True)
    out_path = folder / f"{provider}.png"
    kwargs = dict(model=IMAGE_MODEL, out_path=str(out_path), provider=provider, width=width, height=height,
                  seed=seed)
    call = (f"generate_image({_prompt(provider)!r}, model={IMAGE_MODEL!r}, out_path='…/generated/{provider}.png', "
            f"provider={provider!r}, width={width}, height={height}, seed={seed})")
    entry: dict[str, Any] = {"call": call, "out_path": out_path, "root": Path(lab.root), "width": width,
                             "height": height}
    try:
        obs = observe(lab, sim, "hf_image.generate_image", _prompt(provider), **kwargs)
    except Exception as exc:  # a StudentCodeError: every test of this provider fails with it
        entry["error"] = exc
    else:
        entry["obs"] = obs
        # read in the grader's process: only a regular file, not through a link, size-capped
        try:
            entry["bytes"] = read_regular(out_path, MAX_IMAGE_BYTES, root=Path(lab.workdir))
        except FileNotFoundError:
            entry["bytes"] = None
        except RefusedFile as exc:
            entry["bytes"], entry["refused"] = None, exc.reason
    _CALLS[key] = entry
    return entry


def _observed(entry: dict[str, Any]) -> Observed:
    if "error" in entry:
        raise entry["error"]
    return entry["obs"]


def _result(entry: dict[str, Any], token: str) -> dict[str, Any]:
    result = _observed(entry).value
    missing = missing_keys(result, RESULT_KEYS)
    assert not missing, (
        f"{entry['call']} returned {show(result, [token])}, without {', '.join(missing)}; it must return a dict "
        "with path, width, height, provider and latency_s")
    return result


def _image_request(entry: dict[str, Any], provider: str, token: str) -> Any:
    obs = _observed(entry)
    images = obs.routed(*IMAGE_ROUTES)
    assert images, (
        f"{entry['call']} returned, but no text-to-image request reached the (simulated) provider while it "
        f"ran (requests seen: {describe_records(obs.records, token)}); generate the image with "
        "huggingface_hub.InferenceClient(provider=provider, api_key=token).text_to_image(...)")
    assert len(images) == 1, (
        f"{entry['call']} made {len(images)} text-to-image requests for one call "
        f"({describe_records(images, token)}); one image is one request")
    rec = images[0]
    assert rec.provider == provider and (rec.extra or {}).get("requested_provider") != "auto", (
        f"{entry['call']} must call the provider {provider!r}, but the request went to "
        f"{describe_records([rec], token)}; pass the provider on: InferenceClient(provider=provider, ...)")
    problem = auth_problem(rec, token)
    assert problem is None, f"the text-to-image request of {entry['call']} was not authenticated: {problem}"
    assert rec.status in (200, 201), (
        f"the text-to-image request of {entry['call']} was answered with status {rec.status} "
        f"({describe_records([rec], token)}); check the model id, the provider and the parameters")
    return rec


def _file(entry: dict[str, Any], token: str) -> bytes:
    """The bytes of the file at out_path, once the result names it."""
    result = _result(entry, token)
    out_path: Path = entry["out_path"]
    data = entry.get("bytes")
    assert "refused" not in entry, (
        f"{entry['call']} returned, but the file at out_path ({out_path.name}) {entry.get('refused')}; write the "
        f"image itself to exactly the path in out_path. {HOW_TO_SAVE}")
    assert data is not None, (
        f"{entry['call']} returned, but there is no file at out_path ({out_path.name} in the folder it was "
        f"given); write the image to exactly the path in out_path. {HOW_TO_SAVE}")
    reported = result["path"]
    assert isinstance(reported, str) and reported, (
        f"{entry['call']} returned path={show(reported, [token])}; return the path of the file as a str")
    where = Path(reported)
    resolved = where if where.is_absolute() else entry["root"] / where  # relative to the worker's cwd
    assert resolved.resolve() == out_path.resolve(), (
        f"{entry['call']} returned path={show(reported, [token])}, but the image was to be written to "
        f"{str(out_path)!r}; return the path it was saved at (str(out_path))")
    return data


# -- pixels ----------------------------------------------------------------------------------------
# The simulator logs the SHA-256 of the RGB pixels a client gets by decoding its answer with Pillow
# (the worker's Pillow is the grader's). PNG is lossless, so a PNG written from those pixels has
# exactly them. Only when the provider answered JPEG and the student decoded it with another decoder
# (OpenCV, imageio, another libjpeg build) can correct pixels differ from Pillow's, by the decoders'
# rounding: a difference within these bounds is accepted. Re-encoding as JPEG, even at quality 95,
# changes pixels by far more (mean ~1-2, max tens).
JPEG_DECODER_MEAN_ABS = 0.5
JPEG_DECODER_MAX_ABS = 4


def _close_to_decoded_jpeg(sim: Any, rec: Any, made: dict[str, Any], rgb: Any) -> bool:
    """True when the provider sent JPEG and ``rgb`` is its decoding up to a decoder's rounding."""
    if made.get("format") != "jpeg":
        return False
    try:
        from PIL import Image, ImageChops, ImageStat

        from grading.sims.hf.images import _params, render

        kind = sim.catalogue["providers"][rec.provider]["image_response"]
        prompt = _params(kind, rec.body if isinstance(rec.body, dict) else {})[0]
        key = f"{sim.seed}\x00{rec.model}\x00{prompt}\x00{(rec.extra or {}).get('seed')}"
        data, info = render(int(made["width"]), int(made["height"]), key, "jpeg")
        if info.get("pixels_sha256") != made.get("pixels_sha256") or rgb.size != (info["width"], info["height"]):
            return False
        expected = Image.open(io.BytesIO(data)).convert("RGB")
        diff = ImageChops.difference(expected, rgb)
        mean = sum(ImageStat.Stat(diff).mean) / 3
        biggest = max(high for _, high in diff.getextrema())
        return mean <= JPEG_DECODER_MEAN_ABS and biggest <= JPEG_DECODER_MAX_ABS
    except Exception:  # noqa: BLE001 - no way to re-create the image: the exact match was required
        return False


# -- the file --------------------------------------------------------------------------------------
def test_image_saved_as_png(lab, hf_sim, canary_token):
    for provider in PROVIDERS:
        entry = _generate(lab, hf_sim, provider)
        data = _file(entry, canary_token)
        if data.startswith(JPEG_MAGIC):
            raise AssertionError(
                f"{entry['call']} wrote a JPEG file named .png (it starts with the JPEG bytes FF D8 FF, not "
                f"the PNG signature); a file extension does not convert anything — "
                f"{'this provider answers JPEG bytes: ' if provider == 'hf-inference' else ''}decode the "
                f"image and re-encode it: {HOW_TO_SAVE}")
        assert data.startswith(PNG_MAGIC), (
            f"{entry['call']} wrote a file that is not a PNG (it starts with {data[:8].hex(' ')}, the PNG "
            f"signature is 89 50 4E 47 0D 0A 1A 0A); {HOW_TO_SAVE}")
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                fmt = image.format
        except Exception as exc:  # noqa: BLE001 - any decoding problem is the student's file
            raise AssertionError(
                f"{entry['call']} wrote a PNG file that does not decode ({type(exc).__name__}: {exc}); write "
                f"the whole image and close the file. {HOW_TO_SAVE}") from None
        assert fmt == "PNG", f"{entry['call']} wrote a {fmt} file, not a PNG; {HOW_TO_SAVE}"


def test_image_size_and_pixels(lab, hf_sim, canary_token):
    from PIL import Image

    for provider in PROVIDERS:
        entry = _generate(lab, hf_sim, provider)
        rec = _image_request(entry, provider, canary_token)
        width, height = entry["width"], entry["height"]
        made = (rec.extra or {}).get("image") or {}
        asked = (made.get("width"), made.get("height"))
        assert asked == (width, height), (
            f"{entry['call']} asked the provider for a {asked[0]} x {asked[1]} image, not {width} x {height}; "
            "pass width=width and height=height to text_to_image (resizing afterwards changes the picture)")
        data = _file(entry, canary_token)
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                size, rgb = image.size, image.convert("RGB")
        except Exception as exc:  # noqa: BLE001
            raise AssertionError(
                f"{entry['call']} wrote a file that does not open as an image ({type(exc).__name__}); "
                f"{HOW_TO_SAVE}") from None
        assert size == (width, height), (
            f"{entry['call']} saved a {size[0]} x {size[1]} image; it must be {width} x {height} as requested "
            "(width first, then height)")
        result = _result(entry, canary_token)
        assert (result["width"], result["height"]) == (width, height), (
            f"{entry['call']} returned width={show(result['width'])}, height={show(result['height'])}; "
            f"return the size of the saved image ({width}, {height})")
        digest = hashlib.sha256(rgb.tobytes()).hexdigest()
        assert digest == made.get("pixels_sha256") or _close_to_decoded_jpeg(hf_sim, rec, made, rgb), (
            f"{entry['call']} saved different pixels from those the provider generated for this prompt and "
            "seed; save the image exactly as decoded from the answer — no resizing, cropping, filters, "
            "colour conversion with loss (e.g. a palette) or JPEG re-encoding — and pass the prompt and "
            "seed unchanged")


def test_image_provider_and_latency(lab, hf_sim, thresholds, canary_token):
    for provider in PROVIDERS:
        entry = _generate(lab, hf_sim, provider)
        rec = _image_request(entry, provider, canary_token)
        assert rec.model == IMAGE_MODEL, (
            f"{entry['call']} asked for the model {rec.model!r}, not {IMAGE_MODEL!r}; pass model=model")
        result = _result(entry, canary_token)
        assert result["provider"] == provider, (
            f"{entry['call']} returned provider={show(result['provider'])}; return the provider that was asked "
            f"for ({provider!r})")
        obs = _observed(entry)
        fetches = [r for r in obs.routed(*FETCH_ROUTES) if r.t_start >= rec.t_start]
        timed = [rec, *fetches]
        server_s = sum(r.duration_s or 0.0 for r in timed)
        span_s = max(r.t_end or r.t_start for r in timed) - rec.t_start
        what = f"generating the image at {provider!r}" + (" and downloading it" if fetches else "")
        problem = judge_duration(f"{entry['call']}['latency_s']", result["latency_s"], server_s=server_s,
                                 span_s=span_s, thresholds=thresholds, what=what,
                                 how="when text_to_image has returned the image")
        assert problem is None, problem
