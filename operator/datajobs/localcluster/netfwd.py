"""TCP forwarders across the node's network namespace, and the API server's HTTP CONNECT proxy into it.

Run as `python -m datajobs.localcluster.netfwd --netns /proc/PID/ns/net [rules]` in the host namespace:
- `--inward NS_HOST:PORT=127.0.0.1:PORT` listens inside the namespace and dials the host's loopback
  (pods and the kubelet reach the API server and PostgreSQL this way);
- `--outward 127.0.0.1:PORT=NS_HOST:PORT` listens on the host's loopback and dials inside the namespace;
- `--connect-proxy PATH` serves HTTP CONNECT on a unix socket (the API server's egress selector), dialing
  only addresses inside the namespace, so the API server reaches kubelets and pods and nothing else.
No rule ever dials an address outside loopback or the namespace: the network rule, enforced here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from datajobs.localcluster.netns import NamespaceSockets, dialable_in_namespace, inside_namespace

log = logging.getLogger("datajobs.netfwd")
Dial = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


def parse_endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parse_rule(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    listen, sep, dial = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected LISTEN_HOST:PORT=DIAL_HOST:PORT, got {text!r}")
    return parse_endpoint(listen), parse_endpoint(dial)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter], b: tuple[asyncio.StreamReader, asyncio.StreamWriter]
) -> None:
    """Copy both ways until both sides have closed."""
    try:
        await asyncio.gather(_pipe(a[0], b[1]), _pipe(b[0], a[1]))
    finally:
        for _, writer in (a, b):
            writer.close()


class Forwarder:
    """Every listener of one process, dialing through the host or the namespace."""

    def __init__(self, netns: Path) -> None:
        self.ns = NamespaceSockets(netns)
        self.servers: list[asyncio.Server] = []

    async def dial_host(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if not host.startswith("127."):
            raise PermissionError(f"refusing to dial {host}: the host side is loopback only")
        return await asyncio.open_connection(host, port)

    async def dial_namespace(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The API server's egress: the node and its pods only."""
        if not inside_namespace(host):
            raise PermissionError(f"refusing to dial {host}: not inside the node's namespace")
        return await self._dial_inside(host, port)

    async def dial_service(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """An outward forwarder's target: an address inside the namespace, or a Service's ClusterIP."""
        if not dialable_in_namespace(host):
            raise PermissionError(f"refusing to dial {host}: not in the node's namespace nor a ClusterIP")
        return await self._dial_inside(host, port)

    async def _dial_inside(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        sock = await asyncio.get_running_loop().run_in_executor(None, self.ns.tcp)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except BaseException:
            sock.close()
            raise
        return await asyncio.open_connection(sock=sock)

    async def forward(self, listener: socket.socket, dial: Dial, target: tuple[str, int]) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                upstream = await dial(*target)
            except OSError as exc:
                log.warning("dial %s:%d failed: %s", *target, exc)
                writer.close()
                return
            await splice((reader, writer), upstream)

        listener.setblocking(False)
        self.servers.append(await asyncio.start_server(handle, sock=listener))

    async def connect_proxy(self, path: Path) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
                host, port = parse_endpoint(target)
                if method != "CONNECT":
                    raise ValueError(f"only CONNECT is served, not {method}")
                upstream = await self.dial_namespace(host.strip("[]"), port)
            except (OSError, ValueError, argparse.ArgumentTypeError, asyncio.IncompleteReadError) as exc:
                log.warning("CONNECT refused: %s", exc)
                writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                writer.close()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await splice((reader, writer), upstream)

        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.servers.append(await asyncio.start_unix_server(handle, path=str(path)))
        os.chmod(path, 0o600)


async def serve(args: argparse.Namespace) -> None:
    fwd = Forwarder(args.netns)
    loop = asyncio.get_running_loop()
    for (lhost, lport), target in args.inward:
        await fwd.forward(
            await loop.run_in_executor(None, fwd.ns.listener, lhost, lport), fwd.dial_host, target
        )
    for (lhost, lport), target in args.outward:
        if not lhost.startswith("127."):
            raise SystemExit(f"outward listeners bind host loopback only, not {lhost}")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((lhost, lport))
        sock.listen(512)
        await fwd.forward(sock, fwd.dial_service, target)
    if args.connect_proxy:
        await fwd.connect_proxy(args.connect_proxy)
    if args.ready_file:
        tmp = args.ready_file.with_suffix(".tmp")
        tmp.write_text(str(os.getpid()))
        tmp.rename(args.ready_file)
    await asyncio.gather(*(s.serve_forever() for s in fwd.servers))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="netfwd", description=__doc__.splitlines()[0])
    parser.add_argument("--netns", type=Path, required=True)
    parser.add_argument("--inward", type=parse_rule, action="append", default=[])
    parser.add_argument("--outward", type=parse_rule, action="append", default=[])
    parser.add_argument("--connect-proxy", type=Path)
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        asyncio.run(serve(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
