"""Host redirection, the services registry and the `run`/`serve` commands, over loopback.

Real clients (httpx, httpx2, requests, huggingface_hub) ask for
https://huggingface.co/... and must reach a loopback SimServer with the
original Host header; nothing here touches the network.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import httpx
import httpx2
import pytest
import requests
from aiohttp import web

from grading import services as services_mod
from grading.canary import make_canary
from grading.commands import run as run_cmd
from grading.sandbox import redirect
from grading.services import ServiceNotAvailable, ServiceSet, load_factory, start_services
from grading.sims import SimServer, record_of

pytestmark = pytest.mark.timeout(60)
TOKEN = "hf_" + "Q" * 34
ROOT = Path(__file__).resolve().parent.parent


def make_hub_app(server: SimServer) -> web.Application:
    """Answers every path with a model-info-shaped JSON echoing host and path."""

    async def any_path(request: web.Request) -> web.Response:
        record_of(request).provider = "hub"
        return web.json_response(
            {
                "_id": "1",
                "id": "org/model",
                "modelId": "org/model",
                "private": False,
                "sha": "a" * 40,
                "tags": [],
                "siblings": [],
                "host": request.host,
                "path": request.path_qs,
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", any_path)
    return app


@pytest.fixture(scope="module")
def hub():
    with SimServer(make_hub_app, name="hf") as sim:
        yield sim


@pytest.fixture
def redirected(hub):
    redirect.install({"huggingface.co": hub.url, "router.huggingface.co": hub.url})
    hub.log.clear()
    yield hub
    redirect.uninstall()


def last(hub: SimServer):
    return hub.log.records()[-1]


def test_httpx_and_httpx2_sync(redirected):
    for lib in (httpx, httpx2):
        resp = lib.get("https://huggingface.co/api/models/x?expand=inferenceProviderMapping&a=1")
        assert resp.json()["path"] == "/api/models/x?expand=inferenceProviderMapping&a=1"
        assert str(resp.request.url).startswith("https://huggingface.co/")  # caller sees its URL
        rec = last(redirected)
        assert rec.headers["host"] == "huggingface.co"
        assert rec.query == {"expand": "inferenceProviderMapping", "a": "1"}
    resp = httpx2.post("https://router.huggingface.co/v1/chat/completions", json={"model": "m"})
    assert resp.json()["host"] == "router.huggingface.co" and last(redirected).body == {"model": "m"}


def test_httpx_and_httpx2_async(redirected):
    async def go() -> list[str]:
        hosts = []
        for lib in (httpx, httpx2):
            async with lib.AsyncClient() as client:
                resp = await client.get("https://router.huggingface.co/together/v1/models")
                hosts.append(resp.json()["host"])
        return hosts

    assert asyncio.run(go()) == ["router.huggingface.co"] * 2
    assert last(redirected).path == "/together/v1/models"


def test_requests(redirected):
    resp = requests.get("https://huggingface.co/api/whoami-v2?x=1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.json()["path"] == "/api/whoami-v2?x=1" and resp.url.startswith("https://huggingface.co/")
    rec = last(redirected)
    assert rec.headers["host"] == "huggingface.co" and rec.headers["authorization"] == f"Bearer {TOKEN}"
    with requests.Session() as session:  # explicit proxies are bypassed for redirected hosts
        session.proxies = {"https": "http://127.0.0.1:9", "http": "http://127.0.0.1:9"}
        assert session.get("https://huggingface.co/api/models/y").json()["host"] == "huggingface.co"


def test_huggingface_hub_model_info(redirected):
    import huggingface_hub

    info = huggingface_hub.HfApi(endpoint="https://huggingface.co", token=TOKEN).model_info("org/model")
    assert info.id == "org/model"
    rec = redirected.log.records(path="/api/models/org/model")[-1]
    assert rec.headers["host"] == "huggingface.co"
    assert rec.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in rec.path and TOKEN not in json.dumps(rec.query)


def test_other_hosts_untouched_and_clients_built_before_install(hub):
    redirect.uninstall()
    client = httpx2.Client()  # built before install: the class patch still covers it
    try:
        redirect.install({"huggingface.co": hub.url})
        assert client.get("https://huggingface.co/api/models/z").json()["host"] == "huggingface.co"
        direct = httpx.get(hub.url + "/direct").json()
        assert direct["host"] == hub.url.split("//")[1]
    finally:
        client.close()
        redirect.uninstall()


def test_install_is_idempotent_and_uninstall_restores(hub):
    original = httpx.HTTPTransport.handle_request
    redirect.install({"huggingface.co": hub.url})
    wrapped = httpx.HTTPTransport.handle_request
    redirect.install({"huggingface.co": hub.url + "/prefix"})
    assert httpx.HTTPTransport.handle_request is wrapped
    assert getattr(wrapped, "__infergrade_redirect_original__") is original
    assert redirect.installed() == {"huggingface.co": hub.url + "/prefix"}
    assert httpx.get("https://huggingface.co/api/x").json()["path"] == "/prefix/api/x"
    redirect.uninstall()
    assert httpx.HTTPTransport.handle_request is original
    assert requests.adapters.HTTPAdapter.send.__name__ == "send" and redirect.installed() == {}


def test_rewrite_url_and_install_from_env(hub):
    try:
        assert redirect.install_from_env({}) == {}
        mapping = {"HuggingFace.co": "http://127.0.0.1:5/base/"}
        assert redirect.install_from_env({redirect.ENV_VAR: json.dumps(mapping)}) == mapping
        assert redirect.rewrite_url("https://huggingface.co/a/b?c=d") == "http://127.0.0.1:5/base/a/b?c=d"
        assert redirect.rewrite_url("https://example.org/a") is None
        with pytest.raises(ValueError):
            redirect.install_from_env({redirect.ENV_VAR: '["not", "a", "dict"]'})
        with pytest.raises(ValueError):
            redirect.install({"huggingface.co": "ftp://x"})
    finally:
        redirect.uninstall()


# -- the `run` command ------------------------------------------------------------------
CHILD = textwrap.dedent(
    """
    import os, sys, json
    assert "requests" not in sys.modules          # patched on import, after sitecustomize
    import requests
    token = os.environ["HF_TOKEN"]
    resp = requests.get("https://huggingface.co/api/whoami-v2", headers={"Authorization": "Bearer " + token})
    print(json.dumps({"token": token, "answer": resp.json(), "chained": os.environ.get("CHAINED"),
                      "proxy": os.environ.get("HTTPS_PROXY")}))
    sys.exit(7)
    """
)


def test_run_with_services_child_reaches_simulator(hub, tmp_path, capfd):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    old_site = tmp_path / "oldsite"
    old_site.mkdir()
    (old_site / "sitecustomize.py").write_text("import os\nos.environ['CHAINED'] = 'yes'\n")
    canary = make_canary(11)
    services = ServiceSet(redirects={"huggingface.co": hub.url})
    base_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(old_site), "HTTPS_PROXY": "http://127.0.0.1:9"}
    hub.log.clear()
    rc = run_cmd.run_with_services([sys.executable, str(script)], services, canary=canary, base_env=base_env)
    out = capfd.readouterr()
    assert rc == 7, out.err
    result = json.loads(out.out.strip().splitlines()[-1])
    assert result["token"] == canary and result["chained"] == "yes" and result["proxy"] is None
    assert result["answer"]["host"] == "huggingface.co"
    rec = hub.log.records(path="/api/whoami-v2")[-1]
    assert rec.headers["host"] == "huggingface.co" and rec.headers["authorization"] == f"Bearer {canary}"


def test_run_main_uses_started_services_and_forwards_exit(hub, monkeypatch, capfd, tmp_path):
    script = tmp_path / "child.py"
    script.write_text("import os, sys; print(os.environ['INFERGRADE_REDIRECTS']); sys.exit(5)\n")
    started = []

    def fake_start(tier, seed, names=None, **kw):
        started.append((tier, seed))
        return ServiceSet(tier=tier, seed=seed, redirects={"huggingface.co": hub.url})

    monkeypatch.setattr(run_cmd, "start_services", fake_start)
    parser = argparse.ArgumentParser()
    run_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["run", "--seed", "4", "--", sys.executable, str(script)])
    assert args.func(args) == 5
    out = capfd.readouterr()
    assert started == [("sim", 4)] and "seed 4" in out.err
    assert json.loads(out.out.strip()) == {"huggingface.co": hub.url}
    assert args.func(parser.parse_args(["run"])) == 2


# -- services registry and serve ------------------------------------------------------
def _register_fake(monkeypatch, name: str = "hf") -> None:
    module = types.ModuleType("_infergrade_fake_sim")

    def create(*, tier, seed, host="127.0.0.1", port=0, log=None, unix_path=None):
        if tier != "sim":
            raise ServiceNotAvailable(f"no {tier} engine here")
        return SimServer(make_hub_app, name=name, host=host, port=port, log=log)

    module.create = create
    monkeypatch.setitem(sys.modules, "_infergrade_fake_sim", module)
    monkeypatch.setitem(services_mod.SERVICE_FACTORIES, name, "_infergrade_fake_sim:create")


def test_unavailable_services_are_skipped_with_reason(monkeypatch):
    monkeypatch.setitem(services_mod.SERVICE_FACTORIES, "vllm", "grading.sims.no_such_sim:create")
    with pytest.raises(ServiceNotAvailable, match="vllm simulator is not part of this version yet"):
        load_factory("vllm")
    _register_fake(monkeypatch, "hf")
    with start_services("sim", 3, ["hf", "vllm"]) as sset:
        assert "not part of this version" in sset.unavailable["vllm"]
        env = sset.env("hf_" + "a" * 34)
        url = sset.url("hf")
        assert env["HF_TOKEN"] == "hf_" + "a" * 34 and env["HF_ENDPOINT"] == url
        assert env["OPENAI_BASE_URL"] == url + "/v1" and "OLLAMA_HOST" not in env
        assert json.loads(env["INFERGRADE_REDIRECTS"])["router.huggingface.co"] == url
        assert env["NO_PROXY"] == "127.0.0.1,localhost,::1"
        assert httpx.get(url + "/echo").status_code == 200
        assert sset.log.records(path="/echo")[0].service == "hf"
    assert start_services("local", 3, ["hf"]).unavailable == {"hf": "no local engine here"}
    with pytest.raises(KeyError):
        start_services("sim", 3, ["nope"])


def test_serve_foreground_logs_and_stops_on_sigterm(tmp_path):
    # A fresh interpreter registers the test app as "ollama" and runs serve.
    code = (
        "import sys, types; sys.path.insert(0, %r); sys.path.insert(0, %r)\n"
        "import test_redirect as t, grading.services as s\n"
        "m = types.ModuleType('fake'); sys.modules['fake'] = m\n"
        "m.create = lambda **kw: t.SimServer(t.make_hub_app, name='ollama', host=kw['host'], port=kw['port'], log=kw['log'])\n"
        "s.SERVICE_FACTORIES['ollama'] = 'fake:create'\n"
        "import argparse, grading.commands.serve as serve\n"
        "p = argparse.ArgumentParser(); sub = p.add_subparsers(); serve.register(sub)\n"
        "a = p.parse_args(['serve', 'ollama', '--port', '0', '--seed', '1'])\n"
        "sys.exit(a.func(a))\n"
    ) % (str(ROOT), str(ROOT / "tests"))
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            line = proc.stdout.readline()
            assert "listening on http://127.0.0.1:" in line, line
            url = line.rsplit(" ", 1)[-1].strip()
            assert httpx.get(url + "/echo").status_code == 200
            time.sleep(0.1)
            proc.terminate()
            _, err = proc.communicate(timeout=10)
            assert proc.returncode == 0, err
            assert "GET /echo 200" in err and "ms" in err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_serve_unavailable_exits_2(monkeypatch, capsys):
    import argparse

    from grading.commands import serve

    monkeypatch.setitem(services_mod.SERVICE_FACTORIES, "vllm", "grading.sims.no_such_sim:create")
    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = parser.parse_args(["serve", "vllm", "--port", "0"])
    assert args.func(args) == 2
    assert "not part of this version yet" in capsys.readouterr().err


def test_service_set_with_explicit_redirects():
    sset = ServiceSet(redirects={"huggingface.co": "http://127.0.0.1:1"})
    env = sset.env(make_canary(1))
    assert json.loads(env["INFERGRADE_REDIRECTS"]) == {"huggingface.co": "http://127.0.0.1:1"}
    assert "HF_ENDPOINT" not in env and env["HF_TOKEN"] == make_canary(1)
    sset.stop()
