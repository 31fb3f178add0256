"""``ollama`` command-line stand-in: ``list``, ``pull``, ``run``, ``ps``, ``show``, ``rm``, ``cp``,
``stop``, ``serve``, ``--version``, ``--help`` against the server in ``OLLAMA_HOST``.

Standard library only, so it runs under any ``python3`` (the worker's PATH gets
grading/sims/ollama/bin, whose ``ollama`` runs this file). Output follows the real CLI's layout
(tables of ``ollama list`` / ``ollama ps``, pull progress, ``Error: ...`` on stderr, exit 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any, Iterator

VERSION = "0.9.0"
HELP = """Large language model runner

Usage:
  ollama [flags]
  ollama [command]

Available Commands:
  serve       Start ollama
  show        Show information for a model
  run         Run a model
  stop        Stop a running model
  pull        Pull a model from a registry
  list        List models
  ps          List running models
  cp          Copy a model
  rm          Remove a model
  help        Help about any command

Flags:
  -h, --help      help for ollama
  -v, --version   Show version information

Use "ollama [command] --help" for more information about a command.
"""


class CliError(Exception):
    pass


def host_url() -> str:
    raw = (os.environ.get("OLLAMA_HOST") or "").strip() or "127.0.0.1:11434"
    scheme, sep, rest = raw.partition("://")
    if not sep:
        scheme, rest = "http", raw
    rest = rest.rstrip("/")
    hostport = rest.split("/", 1)[0]
    if ":" not in hostport.rsplit("]", 1)[-1]:
        rest = rest.replace(hostport, hostport + (":11434" if not sep else (":443" if scheme == "https" else ":80")), 1)
    if rest.startswith("0.0.0.0"):
        rest = "127.0.0.1" + rest[len("0.0.0.0"):]
    return f"{scheme}://{rest}"


def _request(method: str, path: str, body: Any = None, timeout: float = 600.0):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(host_url() + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", "User-Agent": f"ollama/{VERSION}"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        text = exc.read().decode("utf-8", "replace")
        try:
            message = json.loads(text).get("error", text)
        except ValueError:
            message = text
        raise CliError(str(message)) from None
    except (urllib.error.URLError, OSError) as exc:
        raise CliError("could not connect to ollama app, is it running?") from exc


def call(method: str, path: str, body: Any = None) -> Any:
    with _request(method, path, body) as resp:
        text = resp.read().decode("utf-8")
    return json.loads(text) if text.strip() else None


def stream(path: str, body: Any) -> Iterator[dict[str, Any]]:
    with _request("POST", path, body) as resp:
        for line in resp:
            if line.strip():
                obj = json.loads(line)
                if "error" in obj:
                    raise CliError(obj["error"])
                yield obj


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "KB") or n >= 100 else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("    ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def cmd_list(args: list[str]) -> int:
    rows = [["NAME", "ID", "SIZE", "MODIFIED"]]
    for m in call("GET", "/api/tags")["models"]:
        rows.append([m["name"], m["digest"][:12], human_size(m["size"]), m["modified_at"][:10]])
    print(_table(rows))
    return 0


def cmd_ps(args: list[str]) -> int:
    rows = [["NAME", "ID", "SIZE", "PROCESSOR", "CONTEXT", "UNTIL"]]
    for m in call("GET", "/api/ps")["models"]:
        rows.append([m["name"], m["digest"][:12], human_size(m["size"]), "100% CPU",
                     str(m.get("context_length", "")), m["expires_at"][:19].replace("T", " ")])
    print(_table(rows))
    return 0


def cmd_pull(args: list[str]) -> int:
    if not args:
        raise CliError("accepts 1 arg(s), received 0")
    for status in stream("/api/pull", {"model": args[0], "stream": True}):
        text = status.get("status", "")
        if status.get("total"):
            pct = 100 * status.get("completed", 0) // max(1, status["total"])
            text = f"{text}: {pct:3d}% {human_size(status['total'])}"
        print(text, file=sys.stderr, flush=True)
    return 0


def cmd_run(args: list[str]) -> int:
    flags = {a for a in args if a.startswith("--")}
    args = [a for a in args if not a.startswith("--")]
    if not args:
        raise CliError("requires at least 1 arg(s), only received 0")
    model, prompt = args[0], " ".join(args[1:])
    if call("GET", "/api/tags") is not None and not any(
            m["name"] in (model, model + ":latest") for m in call("GET", "/api/tags")["models"]):
        cmd_pull([model])
    if not prompt and not sys.stdin.isatty():
        prompt = sys.stdin.read().strip()
    if not prompt:
        call("POST", "/api/generate", {"model": model, "stream": False})
        return 0
    final: dict[str, Any] = {}
    for part in stream("/api/generate", {"model": model, "prompt": prompt, "stream": True}):
        sys.stdout.write(part.get("response", ""))
        sys.stdout.flush()
        if part.get("done"):
            final = part
    print("\n")
    if "--verbose" in flags and final:
        ns = 1e9
        print(f"total duration:       {final['total_duration'] / ns:.6f}s\n"
              f"load duration:        {final['load_duration'] / ns:.6f}s\n"
              f"prompt eval count:    {final['prompt_eval_count']} token(s)\n"
              f"prompt eval duration: {final['prompt_eval_duration'] / ns:.6f}s\n"
              f"eval count:           {final['eval_count']} token(s)\n"
              f"eval duration:        {final['eval_duration'] / ns:.6f}s\n"
              f"eval rate:            {final['eval_count'] / (final['eval_duration'] / ns):.2f} tokens/s",
              file=sys.stderr)
    return 0


def cmd_show(args: list[str]) -> int:
    if not args:
        raise CliError("accepts 1 arg(s), received 0")
    info = call("POST", "/api/show", {"model": args[0]})
    d = info["details"]
    arch = info.get("model_info", {}).get("general.architecture", d.get("family"))
    ctx = next((v for k, v in info.get("model_info", {}).items() if k.endswith(".context_length")), "")
    print(f"  Model\n    architecture        {arch}\n    parameters          {d['parameter_size']}\n"
          f"    context length      {ctx}\n    quantization        {d['quantization_level']}\n")
    print("  Capabilities\n" + "".join(f"    {c}\n" for c in info.get("capabilities", [])))
    return 0


def cmd_rm(args: list[str]) -> int:
    for name in args:
        call("DELETE", "/api/delete", {"model": name})
        print(f"deleted '{name}'")
    return 0


def cmd_cp(args: list[str]) -> int:
    if len(args) != 2:
        raise CliError(f"accepts 2 arg(s), received {len(args)}")
    call("POST", "/api/copy", {"source": args[0], "destination": args[1]})
    print(f"copied '{args[0]}' to '{args[1]}'")
    return 0


def cmd_stop(args: list[str]) -> int:
    if not args:
        raise CliError("accepts 1 arg(s), received 0")
    call("POST", "/api/generate", {"model": args[0], "keep_alive": 0, "stream": False})
    return 0


def cmd_serve(args: list[str]) -> int:
    url = host_url()
    try:
        call("GET", "/api/version")
    except CliError:
        pass
    else:
        hostport = url.split("://", 1)[1]
        raise CliError(f"listen tcp {hostport}: bind: address already in use")
    port = url.rsplit(":", 1)[-1].split("/", 1)[0]
    return subprocess.call([sys.executable, "-m", "grading", "serve", "ollama", "--port", port])


COMMANDS = {"list": cmd_list, "ls": cmd_list, "ps": cmd_ps, "pull": cmd_pull, "run": cmd_run, "show": cmd_show,
            "rm": cmd_rm, "cp": cmd_cp, "stop": cmd_stop, "serve": cmd_serve, "start": cmd_serve}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(HELP, end="")
        return 0
    if args[0] in ("-v", "--version"):
        try:
            print(f"ollama version is {call('GET', '/api/version')['version']}")
        except CliError:
            print("Warning: could not connect to a running Ollama instance", file=sys.stderr)
            print(f"Warning: client version is {VERSION}", file=sys.stderr)
        return 0
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"Error: unknown command \"{args[0]}\" for \"ollama\"", file=sys.stderr)
        return 1
    if "-h" in args[1:] or "--help" in args[1:]:
        print(f"Usage:\n  ollama {args[0]} ...\n\n(infergrade's stand-in for the ollama CLI)")
        return 0
    try:
        return command(args[1:])
    except CliError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    started = time.monotonic()
    sys.exit(main())
