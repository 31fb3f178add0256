"""The Hub API the clients call before inference.

- ``GET /api/models/{repo_id}[/revision/{rev}]``: model info. With
  ``?expand=inferenceProviderMapping`` (huggingface_hub's provider lookup) the
  answer is ``{_id, id, inferenceProviderMapping: {provider: {status,
  providerId, task}}}`` in the dict form the Hub returns; without ``expand`` the
  plain info huggingface_hub reads for hf-inference (``pipeline_tag``, ``tags``…).
- ``GET /api/whoami-v2`` (token checks) and ``GET /api/tasks`` (hf-inference
  without a model).

Public model info needs no token (as on the Hub); a token that is not the
canary gets 401 "Invalid credentials in Authorization header".
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..log import record_of
from .catalogue import hub_mapping
from .common import apply_fault, bearer_token, hub_unauthorized, repo_not_found, token_ok

if TYPE_CHECKING:
    from .server import HFSimulator

__all__ = ["handle_hub"]


def _hex(model_id: str, n: int) -> str:
    return hashlib.sha256(model_id.encode()).hexdigest()[:n]


def _full_info(model_id: str, m: dict[str, Any]) -> dict[str, Any]:
    author = model_id.split("/", 1)[0] if "/" in model_id else None
    digest = int(_hex(model_id, 8), 16)
    info: dict[str, Any] = {
        "_id": m.get("_id") or _hex(model_id, 24),
        "id": model_id,
        "private": False,
        "pipeline_tag": m["pipeline_tag"],
        "library_name": m.get("library_name"),
        "tags": list(m.get("tags", [])),
        "downloads": 10000 + digest % 5_000_000,
        "likes": 100 + digest % 5000,
        "modelId": model_id,
        "author": author,
        "sha": _hex(model_id + "@main", 40),
        "lastModified": "2025-01-20T12:00:00.000Z",
        "gated": m.get("gated", False),
        "disabled": False,
        "inference": "warm",
        "createdAt": "2024-07-18T08:56:00.000Z",
        "siblings": [{"rfilename": n} for n in (".gitattributes", "README.md", "config.json")],
        "spaces": [f"{author or 'community'}/{model_id.split('/')[-1].lower()}-demo"],
        "usedStorage": 1_000_000 + digest % 100_000_000_000,
        "model-index": None,
        "cardData": {"license": next((t.split(":", 1)[1] for t in m.get("tags", []) if t.startswith("license:")),
                                     "other"),
                     "tags": [t for t in m.get("tags", []) if ":" not in t][:6]},
        "widgetData": [{"text": "An astronaut riding a horse on the moon.", "example_title": "Astronaut"}]
        if m["pipeline_tag"] == "text-to-image" else [{"text": "Hi, what can you help me with?", "example_title": "Hi"}],
    }
    if m.get("library_name") == "diffusers":
        info["config"] = {"diffusers": {"_class_name": "DiffusionPipeline"}}
    else:
        info["config"] = {"architectures": ["ForCausalLM"], "model_type": "llama"}
        info["transformersInfo"] = {"auto_model": "AutoModelForCausalLM", "pipeline_tag": "text-generation",
                                    "processor": "AutoTokenizer"}
    return info


async def handle_hub(request: web.Request, sim: "HFSimulator") -> web.StreamResponse:
    rec = record_of(request)
    path = request.path
    token = bearer_token(request)
    has_auth = "Authorization" in request.headers
    if has_auth and not token_ok(sim, token):
        if rec is not None:
            rec.extra["route"] = "hub-whoami" if path.startswith("/api/whoami") else "hub-model"
        return hub_unauthorized()
    if path in ("/api/whoami-v2", "/api/whoami"):
        if rec is not None:
            rec.extra["route"] = "hub-whoami"
        if not has_auth:
            return web.json_response({"error": "Invalid credentials in Authorization header"}, status=401)
        return web.json_response({
            "type": "user", "id": _hex(str(token), 24), "name": "student", "fullname": "Course Student",
            "isPro": False, "canPay": False, "emailVerified": True, "orgs": [],
            "auth": {"type": "access_token",
                     "accessToken": {"displayName": "course", "role": "fineGrained",
                                     "createdAt": "2025-01-01T00:00:00.000Z"}},
        })
    if path == "/api/tasks":
        if rec is not None:
            rec.extra["route"] = "hub-tasks"
        tasks = sim.catalogue.get("tasks", {})
        return web.json_response({task: {"id": task, "label": task, "widgetModels": list(models)}
                                  for task, models in tasks.items()})
    if not path.startswith("/api/models/"):
        return web.json_response({"error": "Sorry, we can't find the page you are looking for."}, status=404)
    repo_id = path[len("/api/models/"):].strip("/")
    if "/revision/" in repo_id:
        repo_id = repo_id.split("/revision/", 1)[0]
    expand = [e for v in request.query.getall("expand", []) for e in v.split(",") if e]
    route = "hub-mapping" if "inferenceProviderMapping" in expand else "hub-model"
    if rec is not None:
        rec.model = repo_id
        rec.extra["route"] = route
    answered = await apply_fault(request, sim.controller.next_fault("hub"), style="hf")
    if answered is not None:
        return answered
    m = sim.catalogue["models"].get(repo_id)
    if m is None:
        return repo_not_found(authenticated=token is not None)
    if expand:
        full = _full_info(repo_id, m)
        out: dict[str, Any] = {"_id": full["_id"], "id": repo_id}
        for key in expand:
            if key == "inferenceProviderMapping":
                out[key] = hub_mapping(sim.catalogue, repo_id)
            elif key in full:
                out[key] = full[key]
        return web.json_response(out)
    return web.json_response(_full_info(repo_id, m))
