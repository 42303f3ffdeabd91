"""Open sockets inside another network namespace: a worker thread that has setns(2)'d into it."""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CLONE_NEWNET = 0x40000000

NODE_IP = "198.18.0.1"
"""The real node's address, on a bridge inside the harness's own network namespace (RFC 2544 range)."""
POD_SUBNET = "198.18.1.0/24"
POD_GATEWAY = "198.18.1.1"
NAMESPACE_NETWORK = ipaddress.ip_network("198.18.0.0/15")
"""Every address that lives inside the node's namespace: the node, its pods, its service proxy targets."""
SERVICE_NETWORK = ipaddress.ip_network("10.0.0.0/24")
"""The cluster's Service ClusterIPs (--service-cluster-ip-range): virtual, rewritten to pod addresses by
kube-proxy's rules inside the node's namespace, which has no route out."""


def inside_namespace(address: str) -> bool:
    """True for an address that exists only inside the harness's namespace, or for loopback."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or ip in NAMESPACE_NETWORK


def dialable_in_namespace(address: str) -> bool:
    """What a socket inside the namespace may dial: its own addresses, or a Service's ClusterIP."""
    if inside_namespace(address):
        return True
    try:
        return ipaddress.ip_address(address) in SERVICE_NETWORK
    except ValueError:
        return False


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


class NamespaceSockets:
    """Creates sockets in the network namespace at `path` (e.g. /proc/PID/ns/net) from one pinned thread.

    A socket belongs to the namespace it was created in, whichever thread uses it later, so the event
    loop can connect, accept and stream on it as usual.
    """

    def __init__(self, path: Path) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, initializer=_setns, initargs=(path,))

    def tcp(self) -> socket.socket:
        return self._pool.submit(socket.socket, socket.AF_INET, socket.SOCK_STREAM).result()

    def listener(self, host: str, port: int) -> socket.socket:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(512)
            return sock

        return self._pool.submit(make).result()

    def close(self) -> None:
        self._pool.shutdown(wait=False)
