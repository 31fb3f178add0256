"""Load and query ``catalogue.toml``: the HF simulator's providers and models, as data.

Usage::

    cat = load_catalogue()                    # the packaged catalogue.toml (validated)
    cat["providers"]["together"]["framing"]   # "together"
    mapping(cat, "black-forest-labs/FLUX.1-dev")          # {provider: {status, providerId, task}}
    first_live(cat, "meta-llama/Llama-3.3-70B-Instruct", "conversational")   # "fireworks-ai"
    by_provider_id(cat, "together", "meta-llama/Llama-3.3-70B-Instruct-Turbo", "conversational")
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from ..clock import LatencyModel

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CATALOGUE_PATH",
    "FRAMINGS",
    "IMAGE_RESPONSES",
    "MAPPING_KEYS",
    "load_catalogue",
    "validate",
    "mapping",
    "hub_mapping",
    "first_live",
    "by_provider_id",
    "route_regexes",
]

CATALOGUE_PATH = Path(__file__).with_name("catalogue.toml")
FRAMINGS = ("tgi", "together", "fireworks", "cerebras", "novita", "openai")
IMAGE_RESPONSES = ("raw", "b64_json", "fal", "replicate")
#: the keys of a mapping entry the Hub itself returns (the rest is simulator data)
MAPPING_KEYS = ("status", "providerId", "task", "adapter", "adapterWeightsPath", "type")
_LATENCIES = ("latency", "image_latency", "ttft", "itl")


def load_catalogue(path: str | Path | None = None) -> dict[str, Any]:
    """Parse and validate a catalogue file (the packaged one by default)."""
    with open(path or CATALOGUE_PATH, "rb") as fh:
        data = tomllib.load(fh)
    validate(data)
    return data


def validate(cat: dict[str, Any]) -> None:
    """Raise ValueError naming the first problem in ``cat``."""
    sim = cat.get("sim", {})
    if not float(sim.get("time_scale", 1.0)) > 0:
        raise ValueError("catalogue: [sim].time_scale must be > 0")
    providers = cat.get("providers")
    if not isinstance(providers, dict) or not providers:
        raise ValueError("catalogue: [providers] is missing")
    for name, p in providers.items():
        where = f"catalogue: providers.{name}"
        if p.get("chat_routes") and p.get("framing") not in FRAMINGS:
            raise ValueError(f"{where}: framing must be one of {FRAMINGS}")
        if p.get("image_routes") and p.get("image_response") not in IMAGE_RESPONSES:
            raise ValueError(f"{where}: image_response must be one of {IMAGE_RESPONSES}")
        if p.get("image_routes") and p.get("image_format") not in ("png", "jpeg"):
            raise ValueError(f"{where}: image_format must be png or jpeg")
        for key in _LATENCIES:
            if key in p:
                LatencyModel.from_data(p[key])  # raises on bad data
        if not 0.0 <= float(p.get("failure_rate", 0.0)) <= 1.0:
            raise ValueError(f"{where}: failure_rate must be within [0, 1]")
        for key in ("chat_routes", "image_routes"):
            for route in p.get(key, []):
                if not route.startswith("/"):
                    raise ValueError(f"{where}: route {route!r} must start with /")
    models = cat.get("models")
    if not isinstance(models, dict) or not models:
        raise ValueError("catalogue: [models] is missing")
    for model_id, m in models.items():
        where = f"catalogue: models.{model_id}"
        if not m.get("pipeline_tag"):
            raise ValueError(f"{where}: pipeline_tag is missing")
        for prov, entry in m.get("providers", {}).items():
            if prov not in providers:
                raise ValueError(f"{where}: provider {prov!r} is not in [providers]")
            for key in ("status", "providerId", "task"):
                if not entry.get(key):
                    raise ValueError(f"{where}.providers.{prov}: {key} is missing")
            if entry["status"] not in ("live", "staging", "error"):
                raise ValueError(f"{where}.providers.{prov}: status must be live, staging or error")
            routes = "chat_routes" if entry["task"] == "conversational" else "image_routes"
            if not providers[prov].get(routes):
                raise ValueError(f"{where}.providers.{prov}: the provider has no {routes}")


def mapping(cat: dict[str, Any], model_id: str) -> dict[str, dict[str, Any]]:
    """The model's provider mapping with the simulator's extra keys (empty if unknown)."""
    return dict(cat["models"].get(model_id, {}).get("providers", {}))


def hub_mapping(cat: dict[str, Any], model_id: str) -> dict[str, dict[str, Any]]:
    """The mapping exactly as the Hub answers it: ``{provider: {status, providerId, task}}``."""
    return {
        prov: {k: entry[k] for k in MAPPING_KEYS if k in entry}
        for prov, entry in mapping(cat, model_id).items()
    }


def first_live(cat: dict[str, Any], model_id: str, task: str | None = None) -> str | None:
    """The provider "auto" picks: the first live one in mapping order (None if none)."""
    for prov, entry in mapping(cat, model_id).items():
        if entry.get("status") == "live" and (task is None or entry.get("task") == task):
            return prov
    return None


def by_provider_id(cat: dict[str, Any], provider: str, provider_id: str, task: str) -> str | None:
    """The Hub model id a provider's own model id stands for (None if it serves none such).

    Also accepts the Hub id itself (hf-inference uses it; other providers'
    real APIs would refuse it, so only when the provider id equals it).
    """
    for model_id, m in cat["models"].items():
        entry = m.get("providers", {}).get(provider)
        if entry and entry.get("task") == task and entry.get("providerId") == provider_id:
            return model_id
    # replicate: "owner/name" without the ":version" part also names the model
    for model_id, m in cat["models"].items():
        entry = m.get("providers", {}).get(provider)
        if entry and entry.get("task") == task and entry.get("providerId", "").split(":", 1)[0] == provider_id:
            return model_id
    return None


def route_regexes(routes: list[str]) -> list[re.Pattern[str]]:
    """Compile route templates: ``{model}`` matches one or more path segments."""
    out = []
    for route in routes:
        pattern = re.escape(route).replace(r"\{model\}", r"(?P<model>.+?)")
        out.append(re.compile("^" + pattern + "$"))
    return out
