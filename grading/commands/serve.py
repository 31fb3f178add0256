"""``python -m grading serve hf|ollama|vllm``: one service in the foreground.

For students practising the notebooks without a GPU or a token, and for
developers poking at a simulator: prints the URL once it accepts
connections, one line per request on stderr (method, path, status,
duration), and stops cleanly on Ctrl-C or SIGTERM (exit 0). Exit 2 when
the service is not available here, 1 when it cannot start (port in use).

Usage::

    python -m grading serve ollama              # http://127.0.0.1:11434, like the real one
    python -m grading serve hf --port 0 --seed 7
    python -m grading serve vllm --tier local --max-model-len 1024
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from grading.canary import make_canary
from grading.services import DEFAULT_PORTS, SERVICE_FACTORIES, start_services
from grading.sims.seeds import resolve_seed

if TYPE_CHECKING:
    from grading.sims.log import RequestRecord

__all__ = ["register", "main", "format_record"]

DESCRIPTION = """\
Run one service of a tier in the foreground until Ctrl-C.

  hf      the Hub model API and the inference router with its providers
          (chat, streaming, text-to-image); point HF_ENDPOINT and
          OPENAI_BASE_URL (.../v1) at it, or use `python -m grading run`
  ollama  an Ollama server (default port 11434, like the real one)
  vllm    a vLLM-style OpenAI-compatible server (default port 8000)

Tier `sim` (default) serves the simulators, deterministic for --seed;
tier `local` a real engine on CPU where one is installed.
"""


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "serve",
        help="run one service (hf, ollama, vllm) in the foreground",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("service", choices=sorted(SERVICE_FACTORIES), help="which service to run")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="port to bind; 0 picks a free one (default: 11434 for ollama, 8000 for vllm, free for hf)",
    )
    parser.add_argument("--tier", choices=("sim", "local"), default="sim", help="sim (default) or local")
    parser.add_argument("--seed", type=int, default=None, help="simulator seed (default: random, printed)")
    parser.add_argument("--max-model-len", type=int, default=None, metavar="TOKENS",
                        help="vllm only: the context length it serves (tier local: passed to `vllm serve`, "
                             "default 256, the grader's; sim: default the simulated model's)")
    parser.set_defaults(func=main)


def format_record(rec: "RequestRecord") -> str:
    """One log line: ``METHOD PATH STATUS DURATION [outcome]``."""
    status = "-" if rec.status is None else str(rec.status)
    dur = "-" if rec.duration_s is None else f"{rec.duration_s * 1000:.1f}ms"
    line = f"{rec.method} {rec.path} {status} {dur}"
    if rec.outcome != "ok" and not rec.outcome.startswith("error:http_"):
        line += f" [{rec.outcome}]"
    return line


def main(args: argparse.Namespace) -> int:
    """Serve until interrupted; return the exit status."""
    name: str = args.service
    seed = resolve_seed(args.seed)
    port = args.port if args.port is not None else DEFAULT_PORTS.get(name, 0)
    max_len = getattr(args, "max_model_len", None)
    if max_len is not None and (name != "vllm" or max_len < 1):
        print("--max-model-len is for vllm, and a positive number of tokens", file=sys.stderr)
        return 2
    options = {name: {"max_model_len": max_len}} if max_len is not None and args.tier == "local" else None
    try:
        services = start_services(args.tier, seed, [name], host=args.host, ports={name: port}, options=options)
    except OSError as exc:
        hint = " (is the real service already running? --port 0 picks a free port)" if port else ""
        holder = _who_holds(name, args.host, port) if port else None
        if holder:
            hint = (f"\n{holder} already listens on {args.host}:{port}. Stop it, or run this one beside it: "
                    f"--port {port + 1} (then point the client there"
                    + (f", e.g. OLLAMA_HOST=http://{args.host}:{port + 1}" if name == "ollama" else "")
                    + ") or --port 0 for any free port")
        print(f"cannot start {name} on {args.host}:{port}: {exc}{hint}", file=sys.stderr)
        return 1
    if name in services.unavailable:
        print(f"{name}: {services.unavailable[name]}", file=sys.stderr)
        services.stop()
        return 2

    if max_len is not None and args.tier == "sim":
        services.services[name].set_behavior(max_model_len=max_len)

    def show(rec: "RequestRecord") -> None:
        print(format_record(rec), file=sys.stderr, flush=True)

    services.log.add_listener(show)
    stop = threading.Event()
    restore = _install_signal_handlers(stop)
    try:
        url = services.url(name)
        print(f"{name} ({args.tier}, seed {seed}) listening on {url}", flush=True)
        if name == "hf":
            env = services.env(make_canary(seed))
            print(
                f"  HF_ENDPOINT={env['HF_ENDPOINT']} OPENAI_BASE_URL={env['OPENAI_BASE_URL']} "
                f"HF_TOKEN={env['HF_TOKEN']} (a fake token the simulator accepts)",
                file=sys.stderr,
            )
        print("  Ctrl-C to stop", file=sys.stderr, flush=True)
        while not stop.wait(0.25):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        services.stop()
    print(f"{name} stopped", file=sys.stderr, flush=True)
    return 0


def _who_holds(name: str, host: str, port: int) -> str | None:
    """What answers on a taken port, in words ("a real Ollama 0.9.1"), or None when unknown."""
    import json
    import urllib.request

    probe = {"ollama": "/api/version", "vllm": "/version"}.get(name)
    if probe is None:
        return None
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # ask the port itself
        with opener.open(f"http://{host}:{port}{probe}", timeout=1.0) as resp:
            version = json.loads(resp.read() or b"{}").get("version")
    except Exception:  # noqa: BLE001 - something else, or nothing that speaks HTTP
        return "another program"
    label = {"ollama": "Ollama", "vllm": "vLLM"}[name]
    return f"an {label} server (version {version})" if version else f"a {label} server"


def _install_signal_handlers(stop: threading.Event) -> Any:
    # signal.signal works only in the main thread (tests may call main()
    # from elsewhere); SIGTERM becomes the same clean stop as Ctrl-C.
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())

    def restore() -> None:
        signal.signal(signal.SIGTERM, previous)

    return restore


if __name__ == "__main__":  # handy before the main CLI wires it in
    _parser = argparse.ArgumentParser(prog="python -m grading.commands.serve")
    _sub = _parser.add_subparsers(dest="command", required=True)
    register(_sub)
    _args = _parser.parse_args(["serve", *sys.argv[1:]])
    sys.exit(_args.func(_args))
