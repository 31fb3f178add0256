"""The Hugging Face simulator against the real clients and against recorded traffic.

Real ``huggingface_hub.InferenceClient`` and ``openai.OpenAI`` reach the simulator both
directly (``HF_ENDPOINT``/``base_url``) and through the transport redirect of the real
hosts; the simulator's answers have the shapes of the recorded ones
(tests/fixtures/hf_shapes/, derived from huggingface_hub's VCR cassettes) and the
installed InferenceClient parses them into the same fields; faults look like faults to
the clients; the reference solution runs against it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import httpx2
import openai
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, RepositoryNotFoundError
from huggingface_hub.hf_api import HfApi

from grading.sandbox import redirect
from grading.sims.hf import create
from grading.sims.hf.catalogue import load_catalogue, validate
from grading.sims.text import count_prompt_tokens, count_tokens
from hf_shape_tools import image_kind, parse_completion, parsed_skeleton, skeleton, stream_summary

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parent.parent
SHAPES = ROOT / "tests" / "fixtures" / "hf_shapes"
TOKEN = "hf_" + "S" * 34
SEED = 1234
LLAMA70 = "meta-llama/Llama-3.3-70B-Instruct"
FLUX = "black-forest-labs/FLUX.1-dev"
MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is deep learning?"}]
# the models of the recordings, per provider
RECORDED_CHAT = {"cerebras": LLAMA70, "fireworks-ai": LLAMA70, "hf-inference": "meta-llama/Llama-3.1-8B-Instruct",
                 "novita": "meta-llama/Llama-3.1-8B-Instruct", "together": "meta-llama/Meta-Llama-3-8B-Instruct"}

RECORDED_IMAGE = {"hf-inference": "CompVis/stable-diffusion-v1-4", "together": "stabilityai/stable-diffusion-xl-base-1.0",
                  "fal-ai": FLUX, "replicate": "ByteDance/SDXL-Lightning"}


def _clear_hub_caches() -> None:
    from huggingface_hub.inference._providers import _common, hf_inference

    _common._fetch_inference_provider_mapping.cache_clear()
    hf_inference._check_supported_task.cache_clear()


@pytest.fixture(scope="module")
def hf():
    sim = create(tier="sim", seed=SEED).start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(hf, monkeypatch):
    """The module's simulator, reset, with the real HF hosts redirected to it."""
    import huggingface_hub.constants as constants

    hf.reset()
    hf.expected_token = None
    monkeypatch.setattr(constants, "ENDPOINT", "https://huggingface.co")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    _clear_hub_caches()
    redirect.install({h: hf.url for h in hf.redirect_hosts})
    try:
        yield hf
    finally:
        redirect.uninstall()
        _clear_hub_caches()


def _router_to_sim(url: str, sim) -> str:
    return url.replace("https://router.huggingface.co", sim.url)


def _prepared(provider: str, model: str, task: str, inputs, parameters: dict, *, provider_route: bool = False):
    """The request the installed InferenceClient builds. ``provider_route``: the provider's own route
    (huggingface_hub 2.5+ sends chat with an hf_ token to the router's /v1/chat/completions as
    ``model:provider`` instead; the simulator serves both, and the recordings hold the provider routes)."""
    from huggingface_hub.inference._providers import get_provider_helper
    from huggingface_hub.inference._providers._common import TaskProviderHelper

    helper = get_provider_helper(provider, task=task, model=model)
    prepare = TaskProviderHelper.prepare_request.__get__(helper) if provider_route else helper.prepare_request
    return prepare(inputs=inputs, parameters=parameters, headers={}, model=model, api_key=TOKEN)


def _client_chat_route(provider: str, model: str) -> str:
    """The simulator's name of the route the installed InferenceClient takes for chat with ``provider``."""
    url = _prepared(provider, model, "conversational", MSGS, {}).url
    return "router-chat" if url == "https://router.huggingface.co/v1/chat/completions" else "provider-chat"


# -- fidelity: the recorded shapes -----------------------------------------------------------
@pytest.mark.parametrize("provider", sorted(RECORDED_CHAT))
def test_chat_shapes_match_recordings(sim, provider):
    fixture = json.loads((SHAPES / f"chat_{provider}.json").read_text())
    model = RECORDED_CHAT[provider]
    # non-streamed: same route as recorded, same body skeleton, same parsed fields
    req = _prepared(provider, model, "conversational", MSGS, {"stream": False}, provider_route=True)
    rec = fixture["completion"]
    assert req.url == rec["request"]["url"]
    resp = httpx.post(_router_to_sim(req.url, sim), json=req.json, headers=req.headers)
    assert resp.status_code == rec["status"]
    assert resp.headers["content-type"].split(";")[0] == rec["content_type"]
    assert skeleton(resp.json()) == rec["skeleton"]
    assert parsed_skeleton(parse_completion(resp.content)) == rec["parsed"]
    # streamed: the framing (event classes in order, usage placement, [DONE]) and each class's shape
    req = _prepared(provider, model, "conversational", MSGS, {"stream": True, "max_tokens": 20}, provider_route=True)
    rec = fixture["stream"]
    assert sorted(req.json) == rec["request"]["body_keys"]
    resp = httpx.post(_router_to_sim(req.url, sim), json=req.json, headers=req.headers)
    assert resp.status_code == rec["status"]
    assert resp.headers["content-type"].split(";")[0] == rec["content_type"]
    got = stream_summary(resp.text)
    skip = set(rec.get("not_simulated", {}))
    assert got["order"] == [c for c in rec["order"] if c.rstrip("*") not in skip]
    for key in ("first", "done", "usage"):
        assert got[key] == rec[key], key
    assert got["skeletons"] == {k: v for k, v in rec["skeletons"].items() if k not in skip}
    assert got["parsed"] == {k: v for k, v in rec["parsed"].items() if k not in skip}


@pytest.mark.parametrize("provider", ["hf-inference", "together", "fal-ai", "replicate"])
def test_image_shapes_match_recordings(sim, provider):
    fixture = json.loads((SHAPES / f"image_{provider}.json").read_text())
    req = _prepared(provider, RECORDED_IMAGE[provider], "text-to-image", "An astronaut riding a horse on the moon.", {})
    headers = {**req.headers, "accept": "image/png"}
    steps = fixture["steps"]
    assert req.url == steps[0]["url"]  # InferenceClient 2.4 still takes the recorded route
    resp = httpx.post(_router_to_sim(req.url, sim), json=req.json, headers=headers)
    first = steps[0]
    assert (resp.status_code, resp.headers["content-type"].split(";")[0]) == (first["status"], first["content_type"])
    if "image" in first:  # hf-inference: the image itself, JPEG although PNG was asked for
        assert image_kind(resp.content) == first["image"]
        return
    body = resp.json()
    want = dict(first["skeleton"])
    if provider == "replicate":  # `input` echoes the request
        assert body.pop("input") == req.json["input"]
        want.pop("input")
    assert skeleton(body) == want
    if provider == "together":
        import base64

        assert image_kind(base64.b64decode(body["data"][0]["b64_json"])) == first["b64_image"]
        return
    url = body["images"][0]["url"] if provider == "fal-ai" else body["output"][0]
    assert url.startswith("http://127.0.0.1:")  # asked directly: the simulator's own URL
    fetched = httpx.get(url)
    assert (fetched.status_code, fetched.headers["content-type"]) == (steps[1]["status"], steps[1]["content_type"])
    assert image_kind(fetched.content) == steps[1]["image"]


def test_hub_shapes_and_errors_match_recordings(sim):
    hub = json.loads((SHAPES / "hub.json").read_text())
    errors = json.loads((SHAPES / "errors.json").read_text())
    r = httpx.get(sim.url + f"/api/models/{LLAMA70}", params={"expand": "inferenceProviderMapping"})
    assert r.headers["content-type"].split(";")[0] == hub["mapping"]["content_type"]
    assert sorted(r.json()) == hub["mapping"]["top_keys"]
    assert isinstance(r.json()["inferenceProviderMapping"], dict)
    assert all(skeleton(e) == hub["mapping"]["entry"] for e in r.json()["inferenceProviderMapping"].values())
    info = httpx.get(sim.url + "/api/models/CompVis/stable-diffusion-v1-4").json()
    assert set(hub["model_info"]["common_keys"]) <= set(info)
    assert {k: skeleton(info[k]) for k in hub["model_info"]["skeleton"]} == hub["model_info"]["skeleton"]
    # 401 exactly as recorded
    want = errors["unauthorized"]
    r = httpx.post(sim.url + "/hf-inference/models/meta-llama/Llama-3.1-8B-Instruct/v1/chat/completions",
                   json={"model": "x", "messages": MSGS})
    assert (r.status_code, r.json()) == (want["status"], want["body"])
    assert {k: r.headers[k] for k in want["headers"]} == want["headers"]
    # TGI's 422 for a body that does not deserialize: plain text
    want = errors["tgi_422"]
    with pytest.raises(HfHubHTTPError) as info_:
        InferenceClient(provider="hf-inference", api_key=TOKEN).chat_completion(
            "please output 'Observation'", model="meta-llama/Llama-3.1-8B-Instruct", max_tokens=200)
    assert info_.value.response.status_code == want["status"]
    assert info_.value.response.headers["content-type"].startswith(want["content_type"])
    assert info_.value.response.text.startswith(want["body_prefix"])
    # unknown repo, bad token
    with pytest.raises(RepositoryNotFoundError):
        HfApi(token=TOKEN).model_info("nobody/nothing")
    sim.expected_token = TOKEN
    with pytest.raises(HfHubHTTPError) as info_:
        HfApi(token="hf_" + "x" * 34).model_info(LLAMA70)
    assert info_.value.response.status_code == 401


# -- the real clients ------------------------------------------------------------------------
@pytest.mark.parametrize("provider", ["together", "hf-inference", "fireworks-ai", "cerebras", "novita", "auto"])
def test_inference_client_chat(sim, provider):
    client = InferenceClient(provider=provider, api_key=TOKEN)
    out = client.chat_completion(MSGS, model=LLAMA70, max_tokens=24)
    text = out.choices[0].message.content
    assert out.usage.completion_tokens == count_tokens(text) <= 24
    assert out.usage.prompt_tokens == count_prompt_tokens(MSGS)
    served = "fireworks-ai" if provider == "auto" else provider
    rec = sim.log.records(path=lambda p: "chat/completions" in p)[-1]
    assert (rec.provider, rec.model, rec.status, rec.tokens_out) == (served, LLAMA70, 200, out.usage.completion_tokens)
    assert rec.extra["route"] == ("router-chat" if provider == "auto" else _client_chat_route(provider, LLAMA70))
    assert rec.extra["requested_provider"] == provider and rec.headers["authorization"] == f"Bearer {TOKEN}"
    chunks = list(client.chat_completion(MSGS, model=LLAMA70, max_tokens=24, stream=True))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == text  # deterministic for (seed, model, messages)
    usage = [c.usage for c in chunks if c.usage]
    if provider != "hf-inference":  # TGI streams carry no usage (recorded)
        assert usage[-1].completion_tokens == count_tokens(streamed)
    rec = sim.log.records(path=lambda p: "chat/completions" in p)[-1]
    assert rec.extra["stream"] and rec.t_first_content == rec.extra["content_times"][0]


@pytest.mark.parametrize("provider,fmt", [("hf-inference", "JPEG"), ("together", "JPEG"), ("fal-ai", "PNG"),
                                          ("replicate", "PNG")])
def test_inference_client_text_to_image(sim, provider, fmt):
    client = InferenceClient(provider=provider, api_key=TOKEN)
    image = client.text_to_image("a lighthouse at dusk", model=FLUX, width=320, height=192, seed=5)
    assert image.size == (320, 192) and image.format == fmt
    again = client.text_to_image("a lighthouse at dusk", model=FLUX, width=320, height=192, seed=5)
    other = client.text_to_image("a lighthouse at dawn", model=FLUX, width=320, height=192, seed=5)
    assert again.tobytes() == image.tobytes() and other.tobytes() != image.tobytes()
    recs = sim.log.records(extra=lambda e: e.get("route") == "provider-image")
    assert recs[-1].provider == provider and recs[-1].extra["image"]["width"] == 320
    if provider in ("fal-ai", "replicate"):
        fetch = sim.log.records(extra=lambda e: e.get("route") == "image-fetch")[-1]
        assert fetch.headers["host"] in ("v3.fal.media", "replicate.delivery") and fetch.provider == provider


def test_openai_client_direct_and_redirected(sim):
    for base_url in (sim.url + "/v1", "https://router.huggingface.co/v1"):
        oc = openai.OpenAI(base_url=base_url, api_key=TOKEN, max_retries=0)
        r = oc.chat.completions.create(model=LLAMA70, messages=MSGS, max_tokens=10)
        assert r.usage.completion_tokens == count_tokens(r.choices[0].message.content)
        parts, usage = [], None
        for ch in oc.chat.completions.create(model=LLAMA70 + ":together", messages=MSGS, max_tokens=10, stream=True,
                                             stream_options={"include_usage": True}):
            parts += [ch.choices[0].delta.content or ""] if ch.choices else []
            usage = ch.usage or usage
        assert usage.completion_tokens == count_tokens("".join(parts)) == 10
        oc.chat.completions.create(model=LLAMA70 + ":fastest", messages=MSGS, max_tokens=5)
        oc.chat.completions.create(model=LLAMA70 + ":cheapest", messages=MSGS, max_tokens=5)
        served = [(r.provider, r.extra["requested_provider"]) for r in sim.log.records(path="/v1/chat/completions")]
        assert served[-4:] == [("fireworks-ai", "auto"), ("together", "together"), ("cerebras", "fastest"),
                               ("novita", "cheapest")]
        models = oc.models.list().data
        assert any(m.id == LLAMA70 for m in models)
        with pytest.raises(openai.BadRequestError) as info:
            oc.chat.completions.create(model=LLAMA70 + ":replicate", messages=MSGS)
        assert info.value.body["code"] == "model_not_supported"


# -- faults ----------------------------------------------------------------------------------
def test_faults_as_the_clients_see_them(sim):
    client = InferenceClient(provider="together", api_key=TOKEN, timeout=0.5)
    sim.script("together", [{"status": 429, "headers": {"Retry-After": "2"}}, 502, 503, "reset", "malformed"])
    with pytest.raises(HfHubHTTPError) as info:
        client.chat_completion(MSGS, model=LLAMA70)
    assert info.value.response.status_code == 429 and info.value.response.headers["retry-after"] == "2"
    assert sim.log.records(status=429)[-1].extra["retry_after_s"] == 2.0
    for status in (502, 503):
        with pytest.raises(HfHubHTTPError) as info:
            client.chat_completion(MSGS, model=LLAMA70)
        assert info.value.response.status_code == status
    with pytest.raises(httpx2.TransportError):
        client.chat_completion(MSGS, model=LLAMA70)
    with pytest.raises(ValueError):  # a cut JSON body
        client.chat_completion(MSGS, model=LLAMA70)
    assert sim.controller.remaining("together") == 0
    sim.script("together", ["hang", "malformed"])
    with pytest.raises(InferenceTimeoutError):
        client.chat_completion(MSGS, model=LLAMA70)
    with pytest.raises(ValueError):  # a stream whose first event is cut
        list(client.chat_completion(MSGS, model=LLAMA70, stream=True))
    outcomes = [r.outcome for r in sim.log.records(provider="together")][-7:]
    assert outcomes == ["fault:status"] * 3 + ["fault:reset", "fault:malformed", "fault:hang", "fault:malformed"]
    # OpenAI client: 429 visible with its header; a wrong token is 401
    oc = openai.OpenAI(base_url=sim.url + "/v1", api_key=TOKEN, max_retries=0)
    sim.script("cerebras", [{"status": 429, "headers": {"Retry-After": "1"}}])
    with pytest.raises(openai.RateLimitError) as rl:
        oc.chat.completions.create(model=LLAMA70 + ":cerebras", messages=MSGS)
    assert rl.value.response.headers["retry-after"] == "1"
    sim.expected_token = TOKEN
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=sim.url + "/v1", api_key="hf_" + "w" * 34, max_retries=0).chat.completions.create(
            model=LLAMA70, messages=MSGS)
    assert httpx.post(sim.url + "/v1/chat/completions", json={"model": LLAMA70, "messages": MSGS}).status_code == 401


def test_random_failures_and_latencies_are_seeded():
    def run(seed):
        with create(tier="sim", seed=seed, time_scale=0.001) as s:
            s.set_behavior("novita", failure_rate=0.5)
            codes = [httpx.post(s.url + "/novita/v3/openai/chat/completions", headers={"Authorization": f"Bearer {TOKEN}"},
                                json={"model": "meta-llama/llama-3.3-70b-instruct", "messages": MSGS}).status_code
                     for _ in range(12)]
            planned = [r.extra.get("planned", {}).get("latency_s") for r in s.log.records()]
            return codes, planned
    a, b, c = run(7), run(7), run(8)
    assert a == b and a != c and set(a[0]) == {200, 503}


def test_stream_ttft_is_the_first_content_chunk(sim):
    sim.set_behavior("cerebras", ttft={"kind": "constant", "mean_s": 4.0}, itl={"kind": "constant", "mean_s": 0.2},
                     role_chunk_at=0.25)  # x0.05: TTFT 0.2 s, ITL 10 ms, role chunk at 50 ms
    client = InferenceClient(provider="cerebras", api_key=TOKEN)
    t0 = time.perf_counter()
    arrivals = []
    for chunk in client.chat_completion(MSGS, model=LLAMA70, max_tokens=10, stream=True):
        content = chunk.choices[0].delta.content if chunk.choices else None
        arrivals.append((time.perf_counter() - t0, bool(content)))
    rec = sim.log.records(provider="cerebras")[-1]
    log_ttft = rec.t_first_content - rec.t_start
    assert 0.2 <= log_ttft < 0.25
    assert arrivals[0][1] is False and arrivals[0][0] < 0.15  # the role-only chunk comes early
    first_content = next(t for t, c in arrivals if c)
    assert abs(first_content - log_ttft) < 0.05
    gaps = [b - a for a, b in zip(rec.extra["content_times"], rec.extra["content_times"][1:])]
    assert len(gaps) == 9 and abs(sum(gaps) / 9 - 0.01) < 0.004


def test_control_api_and_catalogue(hf):
    hf.reset()
    before = hf.behavior("together")
    hf.set_behavior("together", latency=0.5, failure_rate=0.2)
    assert hf.behavior("together").latency.mean_s == 0.5 and hf.behavior("together").failure_rate == 0.2
    hf.script("together", [429, "ok"])
    assert hf.controller.remaining("together") == 2
    hf.reset()
    assert hf.behavior("together") == before and hf.controller.remaining("together") == 0
    with pytest.raises(KeyError):
        hf.set_behavior("nope", latency=1)
    assert hf.env() == {"HF_ENDPOINT": hf.url, "OPENAI_BASE_URL": hf.url + "/v1"}
    assert hf.auto_provider(FLUX, "text-to-image") == "fal-ai" and hf.time_scale == 0.05
    bad = load_catalogue()
    bad["models"][LLAMA70]["providers"]["nowhere"] = {"status": "live", "providerId": "x", "task": "conversational"}
    with pytest.raises(ValueError, match="nowhere"):
        validate(bad)


# -- the reference solution, the serve command ----------------------------------------------
def test_reference_solution_against_the_simulator(sim, tmp_path):
    before = time.monotonic()
    sim.script("together", [503, {"status": 429, "headers": {"Retry-After": "0"}}])
    sim.script("hf-inference", [{"status": 404, "body": {"error": "Model not found"}}])
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(ROOT / 'reference')!r})
        from grading.sandbox import redirect
        redirect.install_from_env()
        from inference_lab import hf_chat, hf_image, strategies, failover
        msgs = [{{"role": "user", "content": "Explain TTFT."}}]
        out = {{}}
        out["chat"] = hf_chat.chat(msgs, model={LLAMA70!r}, provider="auto", max_tokens=16)
        out["chat_openai"] = hf_chat.chat_openai(msgs, model={LLAMA70!r} + ":cerebras", max_tokens=16)
        out["stream"] = hf_chat.stream_chat(msgs, model={LLAMA70!r}, provider="novita", max_tokens=16)
        out["image"] = hf_image.generate_image("a red kite", model={FLUX!r}, out_path={str(tmp_path / 'k.png')!r},
                                               provider="fal-ai", width=256, height=128, seed=1)
        out["compare"] = strategies.compare_providers(msgs, model={LLAMA70!r}, providers=["cerebras", "novita"], runs=3)
        out["failover"] = failover.chat_with_failover(msgs, model={LLAMA70!r}, providers=["hf-inference", "together"],
                                                      backoff_base=0.01, backoff_max=0.02)
        print(json.dumps(out))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OPENAI_"))}
    env.update(HF_TOKEN=TOKEN, HF_ENDPOINT=sim.url, OPENAI_BASE_URL=sim.url + "/v1", PYTHONPATH=str(ROOT),
               INFERGRADE_REDIRECTS=json.dumps({h: sim.url for h in sim.redirect_hosts if h != "huggingface.co"}))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["chat"]["provider"] == "auto" and out["chat"]["usage"]["completion_tokens"] == count_tokens(out["chat"]["text"])
    assert out["chat_openai"]["provider"] == "cerebras"
    rec = [r for r in sim.log.records(provider="novita") if r.extra.get("stream")][-1]
    assert abs(out["stream"]["ttft_s"] - (rec.t_first_content - rec.t_start)) < 0.05
    assert out["stream"]["chunks"] == rec.tokens_out == count_tokens(out["stream"]["text"])
    from PIL import Image

    assert Image.open(out["image"]["path"]).size == (256, 128)
    assert [(c["provider"], c["successes"]) for c in out["compare"]] == [("cerebras", 3), ("novita", 3)]
    assert out["compare"][0]["latency_mean_s"] < out["compare"][1]["latency_mean_s"]
    attempts = [(a["provider"], a["status"]) for a in out["failover"]["attempts"]]
    assert attempts == [("hf-inference", 404), ("together", 503), ("together", 429), ("together", 200)]
    hub = sim.log.records(path=lambda p: p.startswith("/api/models/"), t_start=lambda t: t > before)
    assert hub and all(r.headers["host"].startswith("127.0.0.1") for r in hub)  # via HF_ENDPOINT


def test_serve_command(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    with subprocess.Popen([sys.executable, "-m", "grading", "serve", "hf", "--port", "0", "--seed", "3"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            line = proc.stdout.readline()
            assert "listening on http://127.0.0.1:" in line, line
            url = line.rsplit(" ", 1)[-1].strip()
            assert httpx.get(url + "/v1/models").json()["object"] == "list"
            proc.terminate()
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 0 and "GET /v1/models 200" in err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
