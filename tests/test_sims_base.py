"""The simulator base: real sockets, real pacing, faults, request log, seeds.

Behaviour checks over loopback with real clients (httpx, requests), with
generous tolerances: they prove chunks are spread in time and faults look
like faults to a client, not benchmark anything.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import pytest
import requests
from aiohttp import web

from grading.canary import looks_like_hf_token, make_canary
from grading.sims import (
    Fault,
    FaultSchedule,
    LatencyModel,
    PacingClock,
    RequestLog,
    SimServer,
    apply,
    record_of,
    resolve_seed,
    rng_for,
    sim_of,
)

pytestmark = pytest.mark.timeout(60)
ITL = 0.03
N_CHUNKS = 10
ROOT = Path(__file__).resolve().parent.parent


def make_test_app(server: SimServer) -> web.Application:
    """A tiny app: a paced SSE stream, a fault endpoint driven by ?f=<json>, an echo."""

    async def stream(request: web.Request) -> web.StreamResponse:
        clock = sim_of(request).clock
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        t0 = clock.now()
        for i in range(N_CHUNKS):
            await clock.pace_until(t0 + (i + 1) * ITL)
            await resp.write(f"data: {i}\n\n".encode())
            record_of(request).mark_first_content()
        record_of(request).tokens_out = N_CHUNKS
        await resp.write_eof()
        return resp

    async def fault(request: web.Request) -> web.StreamResponse:
        answer = await apply(request, Fault.from_data(json.loads(request.query["f"])))
        return answer if answer is not None else web.json_response({"ok": True})

    async def echo(request: web.Request) -> web.Response:
        rec = record_of(request)
        rec.provider, rec.model = "test-provider", "org/model"
        return web.json_response({"host": request.host, "path": request.path_qs})

    app = web.Application()
    app.router.add_get("/stream", stream)
    app.router.add_route("*", "/fault", fault)
    app.router.add_route("*", "/echo", echo)
    return app


@pytest.fixture(scope="module")
def server():
    with SimServer(make_test_app, name="test") as sim:
        yield sim


def post_fault(server: SimServer, fault, **kw):
    return httpx.post(server.url + "/fault", params={"f": json.dumps(fault)}, json={"x": 1}, **kw)


# -- streaming and pacing -----------------------------------------------------
def test_stream_chunks_arrive_spread_out(server):
    arrivals = []
    with httpx.Client() as client:
        client.get(server.url + "/echo")  # connect first: time the stream, not the handshake
        t_sent = time.monotonic()
        with client.stream("GET", server.url + "/stream") as resp:
            for chunk in resp.iter_raw():
                arrivals.append((time.monotonic(), chunk))
    data = b"".join(c for _, c in arrivals)
    assert data.count(b"data: ") == N_CHUNKS
    assert len(arrivals) >= N_CHUNKS // 2, "chunks were buffered together"
    first, last = arrivals[0][0] - t_sent, arrivals[-1][0] - t_sent
    # first chunk well before the last; total ≈ 10·ITL (generous: CI is noisy)
    assert last - first >= 0.6 * (N_CHUNKS - 1) * ITL
    assert 0.8 * N_CHUNKS * ITL <= last <= 2 * N_CHUNKS * ITL + 0.5
    rec = server.log.records(path="/stream")[-1]
    assert rec.status == 200 and rec.tokens_out == N_CHUNKS and rec.outcome == "ok"
    assert rec.t_start <= rec.t_first_byte <= rec.t_first_content <= rec.t_end
    # server-side: first content at ~1 ITL, the rest 9 ITL later (drift-free)
    assert abs((rec.t_end - rec.t_first_content) - (N_CHUNKS - 1) * ITL) < 0.1


def test_pacing_clock_is_drift_free():
    clock = PacingClock()

    async def run() -> float:
        t0 = clock.now()
        for deadline in clock.deadlines(t0, 0.0, 0.005, 40):
            await clock.pace_until(deadline)
            time.sleep(0.004)  # per-token overhead that must not accumulate
        return clock.now() - t0

    total = asyncio.run(run())
    # 39 intervals of 5 ms = 0.195 s (+ the last overhead); drifting gives ≥ 0.35 s
    assert 0.19 <= total < 0.3


def test_pacing_clock_sleep_and_past_deadline():
    clock = PacingClock()

    async def run() -> tuple[float, float]:
        late = await clock.pace_until(clock.now() - 1.0)
        t0 = clock.now()
        await clock.sleep(0.02)
        return late, clock.now() - t0

    late, slept = asyncio.run(run())
    assert late >= 1.0 and 0.02 <= slept < 0.1


def test_latency_models():
    rng = random.Random(1)
    assert LatencyModel.from_data(0.25).sample(rng) == 0.25
    assert LatencyModel.from_data(None).sample(rng) == 0.0
    normal = LatencyModel.from_data({"kind": "normal", "mean_s": 1.0, "stdev_s": 5.0})
    samples = [normal.sample(rng) for _ in range(2000)]
    assert min(samples) == pytest.approx(0.3) and max(samples) == pytest.approx(1.7)
    logn = LatencyModel.from_data({"kind": "lognormal", "mean_s": 0.2, "stdev_s": 0.05})
    samples = [logn.sample(rng) for _ in range(20000)]
    mean = sum(samples) / len(samples)
    sd = (sum((s - mean) ** 2 for s in samples) / len(samples)) ** 0.5
    assert mean == pytest.approx(0.2, rel=0.03) and sd == pytest.approx(0.05, rel=0.1)
    assert min(samples) > 0
    assert LatencyModel.from_data(normal.to_data()) == normal
    a = [normal.sample(rng_for(3, "p")) for _ in range(3)]
    assert a == [normal.sample(rng_for(3, "p")) for _ in range(3)]
    with pytest.raises(ValueError):
        LatencyModel.from_data({"kind": "weibull", "mean_s": 1})
    with pytest.raises(ValueError):
        LatencyModel.from_data({"kind": "normal", "mean_s": -1})


# -- seeds and canary ------------------------------------------------------------
def test_seeds_are_deterministic_and_independent():
    assert resolve_seed(42) == 42
    s = resolve_seed(None)
    assert 0 <= s < 2**31 and isinstance(s, int)
    a = [rng_for(7, "hf", "together").random() for _ in range(2)]
    assert a[0] == a[1]
    assert rng_for(7, "hf", "together").random() != rng_for(7, "hf", "groq").random()
    assert rng_for(7, "ab", "c").random() != rng_for(7, "a", "bc").random()
    assert rng_for(7, "x").random() != rng_for(8, "x").random()
    # stable across processes (no salted hash())
    code = "from grading.sims.seeds import rng_for; print(repr(rng_for(7, 'hf').random()))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == repr(rng_for(7, "hf").random())


def test_canary_looks_like_a_token_and_is_found():
    tok = make_canary(5)
    assert tok == make_canary(5) != make_canary(6)
    assert tok.startswith("hf_") and len(tok) == 37 and tok[3:].isalpha()
    assert make_canary().startswith("hf_") and make_canary() != make_canary()
    text = f"Authorization: Bearer {tok}\nmasked hf_…w9Qz my_hf_{tok[3:]}"
    assert looks_like_hf_token(text) == [tok]


# -- faults as a client sees them ---------------------------------------------------
def test_fault_status_429_with_retry_after(server):
    fault = {"kind": "status", "status": 429, "headers": {"Retry-After": "3"}, "body": {"error": "slow down"}}
    resp = post_fault(server, fault)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "3"
    assert resp.json() == {"error": "slow down"}
    text = post_fault(server, {"status": 422, "body": "Input validation error"})
    assert text.status_code == 422 and text.text == "Input validation error"
    assert server.log.records(path="/fault")[-1].outcome == "fault:status"


def test_fault_hang_gives_client_read_timeout(server):
    t0 = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        post_fault(server, {"kind": "hang", "seconds": 30}, timeout=0.3)
    assert time.monotonic() - t0 < 2
    # the client left: its handler is cancelled, so the record completes now
    rec = server.log.records(path="/fault")[-1]
    deadline = time.monotonic() + 2
    while rec.t_end is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert rec.outcome == "fault:hang" and rec.status is None and rec.t_end is not None


def test_fault_reset_gives_connection_error(server):
    with pytest.raises(httpx.TransportError):
        post_fault(server, "reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(server.url + "/fault", params={"f": '"reset"'}, timeout=5)
    rec = server.log.records(path="/fault", outcome="fault:reset")[-1]
    assert rec.status is None and rec.t_end is not None


def test_fault_malformed_gives_json_error(server):
    resp = post_fault(server, "malformed")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        resp.json()


def test_fault_slow_then_ok(server):
    t0 = time.monotonic()
    resp = post_fault(server, {"kind": "slow", "seconds": 0.2})
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    assert time.monotonic() - t0 >= 0.2
    assert post_fault(server, "ok").json() == {"ok": True}


def test_fault_schedule_sequences_repeat_and_random():
    sched = FaultSchedule.from_data(
        {
            "keys": {"a": [429, "hang", {"kind": "status", "status": 503}], "b": {"faults": ["reset"], "repeat": True}},
            "default": ["malformed"],
        }
    )
    assert [sched.next("a").kind for _ in range(5)] == ["status", "hang", "status", "ok", "ok"]
    assert sched.next("a").status is None
    assert [sched.next("b").kind for _ in range(3)] == ["reset"] * 3
    assert [sched.next("zzz").kind, sched.next("other").kind] == ["malformed", "ok"]  # shared default
    assert FaultSchedule.from_data(["hang"]).next("x").kind == "hang"
    assert FaultSchedule.from_data({"p": [429]}).next("p").status == 429
    data = {"random": {"rate": 0.3, "faults": [{"status": 503}]}}
    draws = [FaultSchedule.from_data(data, seed=9) for _ in range(2)]
    seq = [[d.next("p").kind for _ in range(200)] for d in draws]
    assert seq[0] == seq[1] and 30 < seq[0].count("status") < 90
    with pytest.raises(ValueError):
        FaultSchedule.from_data({"keys": {"a": ["explode"]}})


# -- request log -----------------------------------------------------------------------
def test_request_log_records_headers_body_status_timings(server):
    before = len(server.log)
    resp = httpx.post(
        server.url + "/echo?a=1&b=two",
        json={"model": "org/model", "messages": []},
        headers={"Authorization": "Bearer hf_canary", "X-Custom": "v"},
    )
    assert resp.status_code == 200
    rec = server.log.records(path="/echo")[-1]
    assert len(server.log) == before + 1
    assert rec.service == "test" and rec.method == "POST" and rec.query == {"a": "1", "b": "two"}
    assert rec.headers["authorization"] == "Bearer hf_canary" and rec.headers["x-custom"] == "v"
    assert rec.body == {"model": "org/model", "messages": []} and rec.body_size > 0
    assert rec.provider == "test-provider" and rec.model == "org/model" and rec.status == 200
    assert abs(rec.t_wall - time.time()) < 5
    assert rec.t_start <= rec.t_first_byte <= rec.t_end and rec.t_first_content is None
    assert server.log.records(status=lambda s: s == 200, path="/echo")[-1] is rec
    snap = server.log.snapshot()[-1]
    assert snap["headers"]["authorization"] == "Bearer hf_canary" and snap["id"] == rec.id
    assert httpx.get(server.url + "/nope").status_code == 404
    assert server.log.records(path="/nope")[-1].outcome == "error:http_404"
    with tempfile.TemporaryDirectory() as tmp:
        n = server.log.to_jsonl(Path(tmp) / "log.jsonl")
        lines = (Path(tmp) / "log.jsonl").read_text().splitlines()
        assert n == len(lines) == len(server.log) and json.loads(lines[-1])["path"] == "/nope"
    with pytest.raises(TypeError):
        server.log.records(nonsense=1)


def test_log_listener_and_clear():
    log = RequestLog()
    seen = []
    log.add_listener(seen.append)
    log.add_listener(lambda rec: 1 / 0)  # a broken listener never breaks a request
    with SimServer(make_test_app, name="l", log=log) as sim:
        assert httpx.get(sim.url + "/echo").status_code == 200
    assert [r.path for r in seen] == ["/echo"] and seen[0].t_end is not None
    log.clear()
    assert len(log) == 0 and log.records() == []


# -- lifecycle -------------------------------------------------------------------------
def test_stop_is_quick_with_hung_and_endless_requests():
    sim = SimServer(make_test_app, name="hang").start()
    errors = []

    def hang() -> None:
        try:
            post_fault(sim, {"kind": "hang", "seconds": 60}, timeout=30)
        except httpx.HTTPError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hang, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(sim.log.records(path="/fault")) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    t0 = time.monotonic()
    sim.stop()
    assert time.monotonic() - t0 < 1.5
    sim.stop()  # idempotent
    for t in threads:
        t.join(5)
    assert len(errors) == 3  # the clients saw the connection go
    assert all(r.outcome == "fault:hang" and r.t_end is not None for r in sim.log.records(path="/fault"))
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.url + "/echo", timeout=2)


def test_given_port_unix_socket_and_port_in_use():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sim.sock")
        with SimServer(make_test_app, name="u", port=port, unix_path=path) as sim:
            assert sim.url == f"http://127.0.0.1:{port}" and sim.unix_path == path
            with httpx.Client(transport=httpx.HTTPTransport(uds=path)) as client:
                assert client.get("http://localhost/echo").json()["path"] == "/echo"
            with pytest.raises(OSError):
                SimServer(make_test_app, name="dup", port=port).start()
        assert not os.path.exists(path)
    with pytest.raises(RuntimeError):
        SimServer(make_test_app).url
