"""Loopback relays inside a worker's own network namespace: TCP port -> the grader's unix socket.

Under bubblewrap each worker gets a network namespace of its own with nothing but loopback (see
:mod:`grading.sandbox.isolation`), so student code reaches no address of the machine or the internet.
The tier's services listen on unix sockets too (``start_services(unix_dir=...)``), and this relay,
started by the worker inside the namespace before any student code, listens on ``127.0.0.1:PORT``
(and ``[::1]:PORT``) for each port in its map and pipes every connection, byte for byte, to that
service's socket. Student code keeps the URLs it was given (``http://127.0.0.1:PORT``) and the real
default ports (Ollama's 11434, vLLM's 8000) - and nothing else answers.

The worker forks it before any student code is imported (:func:`run`); or run it as
``python -I -m grading.sandbox.netrelay '{"11434": "/run/.../ollama.sock", ...}'``. It says ``ready``
once every listener is bound and serves until it is killed with the worker.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from typing import Callable

__all__ = ["serve"]

CHUNK_BYTES = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(CHUNK_BYTES)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()   # half-close: the other side may still be answering
        except (ConnectionError, OSError, RuntimeError):
            pass


async def _relay(socket_path: str, client_reader: asyncio.StreamReader,
                 client_writer: asyncio.StreamWriter) -> None:
    try:
        upstream_reader, upstream_writer = await asyncio.open_unix_connection(socket_path)
    except OSError:
        client_writer.close()   # as if nothing listened: the client sees a reset connection
        return
    sock = client_writer.get_extra_info("socket")
    if sock is not None:   # streamed chunks go out at once, as from the real server
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))
    finally:
        for writer in (client_writer, upstream_writer):
            writer.close()


def _print_ready() -> None:
    print("ready", flush=True)


async def serve(port_to_socket: dict[int, str], ready: Callable[[], None] = _print_ready) -> None:
    """Listen on every port of the map (IPv4 and, where the namespace has it, IPv6 loopback); call
    ``ready`` once they all listen."""
    servers = []
    for port, path in sorted(port_to_socket.items()):
        def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter, path: str = path) -> "asyncio.Future":
            return _relay(path, r, w)

        servers.append(await asyncio.start_server(handler, "127.0.0.1", port))
        try:
            servers.append(await asyncio.start_server(handler, "::1", port))
        except OSError:
            pass   # no IPv6 here: "localhost" resolves to 127.0.0.1 as well
    ready()
    await asyncio.gather(*(server.serve_forever() for server in servers))


def parse_map(spec: str) -> dict[int, str]:
    """``{"11434": "/path/ollama.sock"}`` (JSON) as {port: socket path}."""
    return {int(port): str(path) for port, path in json.loads(spec).items()}


def run(port_to_socket: dict[int, str], ready: Callable[[], None] = _print_ready) -> None:
    """Serve until killed."""
    try:
        asyncio.run(serve(port_to_socket, ready))
    except KeyboardInterrupt:
        pass


def main(argv: list[str]) -> int:
    run(parse_map(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
