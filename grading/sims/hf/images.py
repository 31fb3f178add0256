"""Text-to-image: real pictures of the requested size, answered the way each provider answers.

``render`` draws a gradient and shapes derived from a hash of (seed, model,
prompt, image seed) — distinct per prompt and seed, identical for the same
ones — and encodes it as PNG or JPEG. The provider's ``image_response``
(catalogue) decides the answer: ``raw`` bytes (hf-inference: JPEG even when
asked for PNG), ``b64_json`` (together, nscale), ``fal`` (a URL to fetch) or
``replicate`` (201 prediction with output URLs to fetch). URLs name the real
CDN hosts when the request came through the HF host redirect, else the
simulator itself; both are served by :func:`fetch_file`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import random
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from aiohttp import web
from PIL import Image, ImageDraw, ImageOps

from ..log import record_of
from .catalogue import by_provider_id
from .common import apply_fault, hf_error, read_json

if TYPE_CHECKING:
    from .server import HFSimulator

__all__ = ["render", "serve_image", "fetch_file", "replicate_prediction", "FAL_PRESETS"]

FAL_PRESETS = {"square_hd": (1024, 1024), "square": (512, 512), "portrait_4_3": (768, 1024),
               "portrait_16_9": (576, 1024), "landscape_4_3": (1024, 768), "landscape_16_9": (1024, 576)}
_ANIMALS = ("koala", "zebra", "penguin", "lion", "tiger", "rabbit", "panda", "otter")
MIN_SIDE, MAX_SIDE = 16, 2048


def render(width: int, height: int, key: str, fmt: str) -> tuple[bytes, dict[str, Any]]:
    """``(encoded bytes, info)``; info: width, height, format, sha256 (of the bytes), pixels_sha256."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    rng = random.Random(int.from_bytes(digest[:8], "big"))

    def color() -> tuple[int, int, int]:
        return (rng.randrange(256), rng.randrange(256), rng.randrange(256))

    gradient = Image.linear_gradient("L").rotate(rng.choice((0, 45, 90, 135, 180, 270)), expand=False)
    img = ImageOps.colorize(gradient.resize((width, height)), color(), color()).convert("RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 7)):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        x1 = min(width, x0 + rng.randint(max(2, width // 10), max(3, width // 2)))
        y1 = min(height, y0 + rng.randint(max(2, height // 10), max(3, height // 2)))
        shape = rng.choice(("ellipse", "rectangle"))
        getattr(draw, shape)([x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)], fill=color(), outline=color())
    buf = io.BytesIO()
    if fmt == "jpeg":
        img.save(buf, format="JPEG", quality=90)
        data = buf.getvalue()
        pixels = Image.open(io.BytesIO(data)).convert("RGB").tobytes()
    else:
        img.save(buf, format="PNG", compress_level=1)
        data = buf.getvalue()
        pixels = img.tobytes()
    info = {"width": width, "height": height, "format": fmt, "sha256": hashlib.sha256(data).hexdigest(),
            "pixels_sha256": hashlib.sha256(pixels).hexdigest()}
    return data, info


def _size(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise ValueError(f"image sides must be integers, got {value!r}")
    if not MIN_SIDE <= int(value) <= MAX_SIDE:
        raise ValueError(f"image sides must be within [{MIN_SIDE}, {MAX_SIDE}], got {value!r}")
    return int(value)


def _params(kind: str, body: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(prompt, width, height, seed) from a provider's request body."""
    if kind == "raw":
        p = body.get("parameters") or {}
        return body.get("inputs"), p.get("width"), p.get("height"), p.get("seed")
    if kind == "fal":
        size = body.get("image_size")
        if isinstance(size, str):
            if size not in FAL_PRESETS:
                raise ValueError(f"image_size must be one of {', '.join(FAL_PRESETS)} or {{width, height}}")
            size = dict(zip(("width", "height"), FAL_PRESETS[size]))
        size = size or {}
        return body.get("prompt"), size.get("width"), size.get("height"), body.get("seed")
    if kind == "replicate":
        inp = body.get("input") or {}
        return inp.get("prompt"), inp.get("width"), inp.get("height"), inp.get("seed")
    width, height = body.get("width"), body.get("height")
    if isinstance(body.get("size"), str) and "x" in body["size"]:
        w, _, h = body["size"].partition("x")
        width, height = (int(w), int(h)) if w.isdigit() and h.isdigit() else (w, h)
    return body.get("prompt"), width, height, body.get("seed")


def _lookup(sim: "HFSimulator", provider: str, kind: str, route_model: str | None, body: dict) -> str | None:
    cat = sim.catalogue
    if kind == "raw":
        entry = cat["models"].get(route_model or "", {}).get("providers", {}).get(provider)
        return route_model if entry and entry.get("task") == "text-to-image" else None
    if kind == "replicate" and route_model is None:
        version = str(body.get("version") or "")
        for model_id, m in cat["models"].items():
            pid = m.get("providers", {}).get(provider, {}).get("providerId", "")
            if version and pid.endswith(":" + version):
                return model_id
        return None
    wanted = route_model if kind in ("fal", "replicate") else body.get("model")
    return by_provider_id(cat, provider, str(wanted or ""), "text-to-image")


def _public_url(request: web.Request, sim: "HFSimulator", cdn_host: str, path: str) -> str:
    host = (request.headers.get("Host") or "").rsplit(":", 1)[0].lower()
    if host == "huggingface.co" or host.endswith(".huggingface.co"):
        return f"https://{cdn_host}{path}"
    return sim.url + path


async def serve_image(request: web.Request, sim: "HFSimulator", provider: str,
                      route_model: str | None) -> web.StreamResponse:
    """One text-to-image request to ``provider``'s own route."""
    rec = record_of(request)
    pdata = sim.catalogue["providers"][provider]
    kind = pdata["image_response"]
    body, _, parse_error = await read_json(request)
    if parse_error is not None or not isinstance(body, dict):
        return hf_error(400, f"Invalid JSON body: {parse_error or 'expected an object'}")
    model_id = _lookup(sim, provider, kind, route_model, body)
    if model_id is None:
        if kind == "raw":
            return hf_error(404, f"Model {route_model} does not exist")
        return hf_error(400, f"Model not supported by provider {provider}")
    if rec is not None:
        rec.provider, rec.model = provider, model_id
    try:
        prompt, width, height, seed = _params(kind, body)
        width, height = _size(width), _size(height)
    except ValueError as exc:
        return hf_error(422 if kind == "raw" else 400, str(exc))
    if not isinstance(prompt, str) or not prompt.strip():
        return hf_error(422 if kind == "raw" else 400, "a non-empty text prompt is required")
    default = pdata.get("default_size") or sim.catalogue["models"][model_id].get("default_size") or [1024, 1024]
    width, height = width or int(default[0]), height or int(default[1])
    if seed is None:
        seed = sim.controller.rng(provider, "image_seed").getrandbits(32)
    fmt = pdata.get("image_format", "png")

    fault = sim.controller.next_fault(provider)
    answered = await apply_fault(request, fault, style="hf", malformed_body={"images": [{"url": "https://"}]})
    if answered is not None:
        return answered
    t0 = rec.t_start if rec is not None else sim.clock.now()
    latency = sim.controller.sample(provider, "image_latency") * sim.time_scale
    key = f"{sim.seed}\x00{model_id}\x00{prompt}\x00{seed}"
    loop = asyncio.get_running_loop()
    data, info = await loop.run_in_executor(None, render, width, height, key, fmt)
    await sim.clock.pace_until(t0 + latency)
    if rec is not None:
        rec.extra["image"] = info
        rec.extra["planned"] = {"latency_s": latency}
        rec.extra["seed"] = seed
    mime = "image/jpeg" if fmt == "jpeg" else "image/png"
    provider_id = sim.catalogue["models"][model_id]["providers"][provider]["providerId"]
    if rec is not None:
        rec.mark_first_content()
    if kind == "raw":
        return web.Response(body=data, content_type=mime)
    b64 = base64.b64encode(data).decode("ascii")
    rng = sim.controller.rng(provider, "ids")
    if kind == "b64_json":
        if provider == "together":
            payload = {"id": "%016x-IAD" % rng.getrandbits(64), "model": provider_id, "object": "list",
                       "data": [{"timings": {"inference": int(latency * 1000)}, "index": 0, "b64_json": b64}]}
        else:
            payload = {"created": int(time.time()), "data": [{"b64_json": b64}]}
        return web.json_response(payload)
    token = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    if kind == "fal":
        path = f"/files/{rng.choice(_ANIMALS)}/{token}.{'jpeg' if fmt == 'jpeg' else 'png'}"
        sim.store_file(path, data, mime, provider, model_id, info)
        url = _public_url(request, sim, sim.catalogue["sim"].get("fal_cdn_host", "v3.fal.media"), path)
        return web.json_response({"images": [{"url": url, "width": width, "height": height, "content_type": mime}],
                                  "timings": {"inference": latency}, "seed": seed,
                                  "has_nsfw_concepts": [False], "prompt": prompt})
    path = f"/xezq/{token}/out-0.{'jpg' if fmt == 'jpeg' else 'png'}"
    sim.store_file(path, data, mime, provider, model_id, info)
    url = _public_url(request, sim, sim.catalogue["sim"].get("replicate_cdn_host", "replicate.delivery"), path)
    pred = _prediction(token[:26], provider_id, body, url)
    sim.predictions[pred["id"]] = pred
    headers = {"Preference-Applied": "wait=60"} if "wait" in request.headers.get("Prefer", "") else {}
    return web.json_response(pred, status=201, headers=headers)


def _prediction(pid: str, provider_id: str, body: dict[str, Any], url: str) -> dict[str, Any]:
    name, _, version = provider_id.partition(":")
    api = f"https://api.replicate.com/v1/predictions/{pid}"
    return {"id": pid, "model": name, "version": version or "hidden", "input": body.get("input") or {},
            "logs": "", "output": [url], "data_removed": False, "error": None, "status": "processing",
            "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "urls": {"cancel": api + "/cancel", "get": api,
                     "stream": f"https://stream.replicate.com/v1/files/{pid}"}}


async def replicate_prediction(request: web.Request, sim: "HFSimulator", pid: str) -> web.Response:
    """GET a prediction by id (finished: ``status`` "succeeded")."""
    pred = sim.predictions.get(pid)
    if pred is None:
        return web.json_response({"title": "Not found", "detail": "The requested resource could not be found.",
                                  "status": 404}, status=404)
    return web.json_response({**pred, "status": "succeeded"})


async def fetch_file(request: web.Request, sim: "HFSimulator") -> web.Response:
    """GET an image a fal-ai/replicate answer pointed to (no token needed, as on a CDN)."""
    rec = record_of(request)
    item = sim.files.get(request.path)
    if rec is not None:
        rec.extra["route"] = "image-fetch"
    if item is None:
        return web.Response(status=404, text="Not Found")
    data, mime, provider, model_id, info = item
    if rec is not None:
        rec.provider, rec.model = provider, model_id
        rec.extra["image"] = info
        rec.mark_first_content()
    return web.Response(body=data, content_type=mime)
