"""The services of a tier: start them, describe them to student code, stop them.

Each service ("hf", "ollama", "vllm") has a factory named by a module path
and imported lazily, so the grader runs (and says what is missing) while a
simulator is not part of this version yet. A factory has this contract::

    def create(*, tier: str, seed: int, host: str = "127.0.0.1", port: int = 0,
               log: RequestLog | None = None, unix_path: str | None = None) -> Service
        # returns the service NOT started; raises ServiceNotAvailable when it
        # cannot serve this tier here (e.g. "local" without an engine)

A ``Service`` has ``name``, ``url`` (after start), ``unix_path``, ``start()``,
``stop()`` (a ``SimServer`` is one) and may add ``redirect_hosts`` (hosts the
worker's requests are redirected to it) and ``env() -> dict[str, str]``.

Usage::

    with start_services("sim", seed=1234) as services:
        env = services.env(make_canary(1234))     # for the worker / `run`
        services.unavailable                      # {"vllm": "the vllm simulator is not ..."}
"""

from __future__ import annotations

import importlib
import os
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

if TYPE_CHECKING:  # aiohttp is imported only when services really start
    from grading.sims.log import RequestLog

__all__ = [
    "SERVICE_FACTORIES",
    "DEFAULT_PORTS",
    "HF_HOSTS",
    "TIERS",
    "PROXY_VARS",
    "Service",
    "ServiceNotAvailable",
    "ServiceSet",
    "default_port_socket",
    "load_factory",
    "start_services",
]

SERVICE_FACTORIES: dict[str, str] = {
    "hf": "grading.sims.hf:create",
    "ollama": "grading.sims.ollama:create",
    "vllm": "grading.sims.openai_server:create",
}
#: the real services' ports, used only when asked (``serve``); else free ports
DEFAULT_PORTS: dict[str, int] = {"ollama": 11434, "vllm": 8000}
#: hosts the hf service answers for in the worker (through the redirect)
HF_HOSTS: tuple[str, ...] = ("huggingface.co", "router.huggingface.co", "api-inference.huggingface.co")
TIERS: tuple[str, ...] = ("sim", "local", "live")
#: proxy variables the worker must not inherit (httpx and requests honour them)
PROXY_VARS: tuple[str, ...] = tuple(
    v for name in ("http_proxy", "https_proxy", "all_proxy") for v in (name, name.upper())
)
LOOPBACK_NO_PROXY = "127.0.0.1,localhost,::1"


def default_port_socket(service: Any) -> str | None:
    """The unix socket ``service`` listens on for relays of its real default port (11434, 8000), if any.

    A request that came in through it has ``extra["listener"]`` equal to this path in the log."""
    port = DEFAULT_PORTS.get(getattr(service, "name", ""))
    for path in getattr(service, "alias_unix_paths", ()):
        if port is not None and str(path).endswith(f"-{port}.sock"):
            return str(path)
    return None


class ServiceNotAvailable(RuntimeError):
    """A service cannot run here (not built yet, or not for this tier)."""


@runtime_checkable
class Service(Protocol):
    """What ``start_services`` needs from a service object."""

    name: str
    unix_path: str | None

    @property
    def url(self) -> str: ...

    def start(self) -> Any: ...

    def stop(self) -> None: ...


def _new_log() -> "RequestLog":
    from grading.sims.log import RequestLog

    return RequestLog()


def load_factory(name: str) -> Callable[..., Service]:
    """Import the factory registered for ``name``.

    Raises ServiceNotAvailable when its module does not exist yet, KeyError
    for a name that is not a service; a module that exists but fails to
    import raises its own error (a bug must stay loud).
    """
    if name not in SERVICE_FACTORIES:
        raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICE_FACTORIES)}")
    module_name, _, attr = SERVICE_FACTORIES[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == module_name or module_name.startswith(missing + "."):
            raise ServiceNotAvailable(f"the {name} simulator is not part of this version yet") from exc
        raise
    factory = getattr(module, attr or "create", None)
    if factory is None:
        raise ServiceNotAvailable(f"the {name} simulator is not part of this version yet ({module_name} has no {attr})")
    return factory  # type: ignore[no-any-return]


@dataclass
class ServiceSet:
    """The started services of one run, and the environment that points at them.

    ``redirects`` overrides the host mapping derived from the services
    (tests use it to send HF hosts to a server of their own).
    """

    services: dict[str, Service] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    log: "RequestLog" = field(default_factory=_new_log)
    tier: str = "sim"
    seed: int = 0
    redirects: dict[str, str] | None = None

    def url(self, name: str) -> str | None:
        """The URL of service ``name``, or None when it is not running."""
        svc = self.services.get(name)
        return None if svc is None else svc.url

    def redirect_map(self) -> dict[str, str]:
        """Host → URL mapping for ``INFERGRADE_REDIRECTS``."""
        if self.redirects is not None:
            return dict(self.redirects)
        out: dict[str, str] = {}
        for name, svc in self.services.items():
            hosts = getattr(svc, "redirect_hosts", HF_HOSTS if name == "hf" else ())
            for host in hosts:
                out[host] = svc.url
        return out

    def env(self, canary: str) -> dict[str, str]:
        """Environment variables student code needs (to add to its environment).

        Also remove :data:`PROXY_VARS` from that environment: a proxy chosen
        for a redirected host would otherwise swallow the request.
        """
        env = {
            "HF_TOKEN": canary,
            "NO_PROXY": LOOPBACK_NO_PROXY,
            "no_proxy": LOOPBACK_NO_PROXY,
            "INFERGRADE_TIER": self.tier,
            "INFERGRADE_REDIRECTS": json.dumps(self.redirect_map(), sort_keys=True),
        }
        hf, ollama, vllm = self.url("hf"), self.url("ollama"), self.url("vllm")
        if hf:
            # huggingface_hub reads HF_ENDPOINT for the Hub API; the openai
            # client reads OPENAI_BASE_URL (the router's OpenAI-compatible /v1).
            env.update(HF_ENDPOINT=hf, OPENAI_BASE_URL=hf + "/v1", INFERGRADE_HF_URL=hf)
        if ollama:
            env.update(OLLAMA_HOST=ollama, INFERGRADE_OLLAMA_URL=ollama)
        if vllm:
            env.update(INFERGRADE_VLLM_URL=vllm)
        for svc in self.services.values():
            extra = getattr(svc, "env", None)
            if callable(extra):
                env.update({str(k): str(v) for k, v in extra().items()})
        # Command-line stand-ins (e.g. `ollama`) come first on PATH, so notebook cells and scripts
        # that shell out to them reach the tier's service.
        if env.get("INFERGRADE_OLLAMA_BIN"):
            env["PATH"] = os.pathsep.join([env["INFERGRADE_OLLAMA_BIN"], os.environ.get("PATH", os.defpath)])
        return env

    def relay_map(self) -> dict[int, str]:
        """Port -> unix socket, for a worker with a network of its own (grading/sandbox/netrelay.py):
        each service's own port, and Ollama's and vLLM's default ports (11434, 8000) for theirs, so
        that student code which uses the defaults reaches the tier's service there too."""
        from urllib.parse import urlsplit

        relays: dict[int, str] = {}
        for name, svc in self.services.items():
            if not getattr(svc, "unix_path", None):
                continue
            port = urlsplit(svc.url).port
            if port:
                relays[port] = str(svc.unix_path)
            alias = default_port_socket(svc)
            if alias is not None:
                relays.setdefault(DEFAULT_PORTS[name], alias)
        return relays

    def describe(self) -> list[str]:
        """Human-readable lines: each service's URL or why it is missing."""
        lines = [f"{name}: {svc.url}" for name, svc in self.services.items()]
        lines += [f"{name}: not available ({why})" for name, why in self.unavailable.items()]
        return lines

    def stop(self) -> None:
        """Stop every service (idempotent; one failing stop does not skip the rest)."""
        errors = []
        for svc in reversed(list(self.services.values())):
            try:
                svc.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(exc)
        if errors:
            raise errors[0]

    def __enter__(self) -> "ServiceSet":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def start_services(
    tier: str = "sim",
    seed: int = 0,
    names: list[str] | None = None,
    *,
    host: str = "127.0.0.1",
    default_ports: bool = False,
    ports: dict[str, int] | None = None,
    log: "RequestLog | None" = None,
    unix_dir: str | None = None,
    options: dict[str, dict[str, Any]] | None = None,
) -> ServiceSet:
    """Start the available services of ``tier`` (all when ``names`` is None).

    ``options[name]``: keyword arguments for that service's factory (e.g. ``{"vllm": {"max_model_len":
    1024}}`` for tier ``local``).

    Unavailable ones are skipped and listed with their reason in
    ``.unavailable``. Ports: ``ports[name]`` if given, else the real default
    port when ``default_ports`` (``serve``), else a free port. With
    ``unix_dir``, each service also listens on ``unix_dir/<name>.sock``.
    If a service fails to start, those already started are stopped.
    """
    if tier not in TIERS:
        raise ValueError(f"tier must be one of {TIERS}, not {tier!r}")
    wanted = list(SERVICE_FACTORIES) if names is None else list(names)
    for name in wanted:
        if name not in SERVICE_FACTORIES:
            raise KeyError(f"unknown service {name!r}; known: {', '.join(SERVICE_FACTORIES)}")
    result = ServiceSet(log=log if log is not None else _new_log(), tier=tier, seed=seed)
    try:
        for name in wanted:
            try:
                factory = load_factory(name)
                port = (ports or {}).get(name, DEFAULT_PORTS.get(name, 0) if default_ports else 0)
                unix_path = None if unix_dir is None else f"{unix_dir}/{name}.sock"
                svc = factory(tier=tier, seed=seed, host=host, port=port, log=result.log, unix_path=unix_path,
                              **(options or {}).get(name, {}))
                if unix_dir is not None and name in DEFAULT_PORTS and hasattr(svc, "alias_unix_paths"):
                    # its own socket for the default port's relay: the log tells which port was used
                    svc.alias_unix_paths.append(f"{unix_dir}/{name}-{DEFAULT_PORTS[name]}.sock")
                svc.start()
            except ServiceNotAvailable as exc:
                result.unavailable[name] = str(exc)
                continue
            result.services[name] = svc
    except BaseException:
        result.stop()
        raise
    return result
