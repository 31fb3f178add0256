"""The inference router: OpenAI-compatible ``/v1`` and the per-provider routes.

- ``POST /v1/chat/completions``: ``model`` is a Hub id, optionally suffixed
  ``:provider`` or a policy ``:fastest`` (highest throughput now), ``:cheapest``
  (lowest output price), ``:preferred`` (= no suffix: the first live provider in
  the mapping order, what "auto" means). The provider's own answer is passed
  through, framing included. Errors are OpenAI-style.
- ``GET /v1/models``: chat models with their providers (status, context_length,
  pricing, supports_tools, supports_structured_output).
- ``POST /{provider}/...``: the routes InferenceClient builds for each provider
  (catalogue ``chat_routes`` / ``image_routes``), ``GET
  /replicate/v1/predictions/{id}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..log import record_of
from .catalogue import by_provider_id, mapping, route_regexes
from .chat import ChatJob, serve_chat, validate_chat
from .common import bearer_token, hf_error, openai_error, read_json, router_unauthorized, token_ok
from .images import replicate_prediction, serve_image

if TYPE_CHECKING:
    from .server import HFSimulator

__all__ = ["handle_v1", "handle_provider", "resolve_router_model", "POLICIES"]

POLICIES = ("fastest", "cheapest", "preferred")


def _price(sim: "HFSimulator", provider: str, entry: dict[str, Any]) -> tuple[float, float]:
    pricing = entry.get("pricing") or sim.catalogue["providers"][provider].get("pricing") or {}
    return float(pricing.get("output", float("inf"))), float(pricing.get("input", float("inf")))


def resolve_router_model(sim: "HFSimulator", model: str) -> tuple[str, str, str] | web.Response:
    """``(hub model id, provider, requested)`` for a router ``model`` field, or the error answer."""
    base, sep, suffix = model.rpartition(":") if ":" in model else (model, "", "")
    requested = suffix if sep else "auto"
    entries = {p: e for p, e in mapping(sim.catalogue, base).items() if e.get("task") == "conversational"}
    live = [p for p, e in entries.items() if e.get("status") == "live"]
    if not live:
        return openai_error(400, f"The requested model '{base}' is not supported by any provider you have enabled.",
                            param="model", code="model_not_supported")
    if requested in ("auto", "preferred"):
        provider = live[0]
    elif requested == "fastest":
        def speed(p: str) -> tuple[float, float]:
            b = sim.controller.behavior(p)
            return (b.itl.mean_s or 1e-9, b.ttft.mean_s)
        provider = min(live, key=speed)
    elif requested == "cheapest":
        provider = min(live, key=lambda p: _price(sim, p, entries[p]))
    elif requested in live:
        provider = requested
    else:
        return openai_error(400, f"The requested model '{base}' is not supported by provider '{requested}'.",
                            param="model", code="model_not_supported")
    return base, provider, requested


async def handle_v1(request: web.Request, sim: "HFSimulator") -> web.StreamResponse:
    rec = record_of(request)
    path = request.path.rstrip("/")
    if path == "/v1/models":
        if rec is not None:
            rec.extra["route"] = "models"
        if request.method != "GET":
            return openai_error(405, "Method Not Allowed")
        if "Authorization" in request.headers and not token_ok(sim, bearer_token(request)):
            return router_unauthorized()
        return web.json_response(_models(sim))
    if path != "/v1/chat/completions":
        return openai_error(404, f"Unknown route {request.method} {request.path}")
    if rec is not None:
        rec.extra["route"] = "router-chat"
    if request.method != "POST":
        return openai_error(405, "Method Not Allowed")
    if not token_ok(sim, bearer_token(request)):
        return router_unauthorized()
    body, raw, parse_error = await read_json(request)
    error = validate_chat(body, raw, parse_error, "openai")
    if error is not None:
        return error
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return openai_error(400, "Missing required parameter: 'model'.", param="model",
                            code="missing_required_parameter")
    resolved = resolve_router_model(sim, model)
    if isinstance(resolved, web.Response):
        if rec is not None:
            rec.model = model.rpartition(":")[0] if ":" in model else model
            rec.extra["requested_provider"] = model.rpartition(":")[2] if ":" in model else "auto"
        return resolved
    model_id, provider, requested = resolved
    if rec is not None:
        rec.extra["requested_provider"] = requested
    provider_model = sim.catalogue["models"][model_id]["providers"][provider]["providerId"]
    job = ChatJob(provider, model_id, provider_model, body, "openai")
    return await serve_chat(request, sim, job)


def _models(sim: "HFSimulator") -> dict[str, Any]:
    data = []
    for model_id, m in sim.catalogue["models"].items():
        providers = []
        for prov, entry in m.get("providers", {}).items():
            if entry.get("task") != "conversational":
                continue
            pdata = sim.catalogue["providers"][prov]
            pricing = entry.get("pricing") or pdata.get("pricing")
            item: dict[str, Any] = {"provider": prov, "status": entry["status"],
                                    "context_length": entry.get("context_length", pdata.get("context_length"))}
            if pricing:
                item["pricing"] = {"input": pricing["input"], "output": pricing["output"]}
            item.update(supports_tools=prov != "hf-inference", supports_structured_output=True)
            providers.append(item)
        if providers:
            data.append({"id": model_id, "object": "model", "created": 1730000000,
                         "owned_by": model_id.split("/", 1)[0], "providers": providers})
    return {"object": "list", "data": data}


async def handle_provider(request: web.Request, sim: "HFSimulator") -> web.StreamResponse:
    rec = record_of(request)
    _, provider, rest = (request.path.split("/", 2) + [""])[:3]
    rest = "/" + rest
    pdata = sim.catalogue["providers"].get(provider)
    if pdata is None:
        return hf_error(404, "Not Found")
    if rec is not None:
        rec.provider = provider
    if provider == "replicate" and request.method == "GET" and rest.startswith("/v1/predictions/"):
        if rec is not None:
            rec.extra["route"] = "provider-image"
        if not token_ok(sim, bearer_token(request)):
            return router_unauthorized()
        return await replicate_prediction(request, sim, rest.rsplit("/", 1)[-1])
    for regex in route_regexes(pdata.get("chat_routes", [])):
        match = regex.match(rest)
        if match:
            if rec is not None:
                rec.extra["route"] = "provider-chat"
            if request.method != "POST":
                return hf_error(405, "Method Not Allowed")
            return await _provider_chat(request, sim, provider, match.groupdict().get("model"))
    for regex in route_regexes(pdata.get("image_routes", [])):
        match = regex.match(rest)
        if match and request.method == "POST":
            if rec is not None:
                rec.extra["route"] = "provider-image"
            if not token_ok(sim, bearer_token(request)):
                return router_unauthorized()
            return await serve_image(request, sim, provider, match.groupdict().get("model"))
    return hf_error(404, "Not Found")


async def _provider_chat(request: web.Request, sim: "HFSimulator", provider: str,
                         route_model: str | None) -> web.StreamResponse:
    rec = record_of(request)
    if not token_ok(sim, bearer_token(request)):
        return router_unauthorized()
    framing = sim.catalogue["providers"][provider].get("framing", "openai")
    style = "tgi" if framing == "tgi" else "openai"
    body, raw, parse_error = await read_json(request)
    error = validate_chat(body, raw, parse_error, style)
    if error is not None:
        return error
    if route_model is not None:  # hf-inference: the Hub id is in the path
        entry = sim.catalogue["models"].get(route_model, {}).get("providers", {}).get(provider)
        if rec is not None:
            rec.model = route_model
        if sim.catalogue["models"].get(route_model) is None:
            return hf_error(404, f"Model {route_model} does not exist")
        if not entry or entry.get("task") != "conversational":
            return hf_error(400, f"Model {route_model} is not supported by provider {provider} for chat completion")
        model_id, provider_model = route_model, route_model
    else:
        wanted = body.get("model")
        model_id = by_provider_id(sim.catalogue, provider, str(wanted or ""), "conversational")
        if model_id is None:
            return hf_error(400, f"Model not supported by provider {provider}")
        provider_model = str(wanted)
    if rec is not None:
        rec.extra["requested_provider"] = provider
    return await serve_chat(request, sim, ChatJob(provider, model_id, provider_model, body, style))
