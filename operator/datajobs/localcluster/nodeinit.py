"""PID 1 of the real node's namespaces: sets up its network and private mounts, reaps, and ends everything.

Started by `unshare --net --mount --pid --fork --kill-child --mount-proc --propagation private`, so
when this process dies (even by SIGKILL of the harness, through the kill-child death signal) the kernel
kills every process of the node (containerd, its shims, the kubelet, every container), drops its mounts
and destroys its network namespace with its bridges and iptables chains. Only cgroup directories outlive
it; the janitor removes those.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

from datajobs.localcluster.netns import NODE_IP, SERVICE_NETWORK

BRIDGE = "dj-node"
PRIVATE_TMPFS = ("/run", "/var/log")
"""Host paths the kubelet and containerd write to whatever their configuration says (shim state under
/run/containerd, /var/log/containers links): private to the node, gone with it."""


def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)


def setup() -> None:
    _run("ip", "link", "set", "lo", "up")
    _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "add", f"{NODE_IP}/32", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # Service ClusterIPs from the namespace itself (e.g. a forwarder to the adapter's Service): a route lets
    # the connect through to kube-proxy's DNAT; without one it fails at once (network unreachable).
    _run("ip", "route", "add", str(SERVICE_NETWORK), "dev", BRIDGE)
    for key, value in (
        ("net/ipv4/ip_forward", "1"),
        ("net/ipv4/conf/all/route_localnet", "1"),
        ("net/bridge/bridge-nf-call-iptables", "1"),
    ):
        path = f"/proc/sys/{key}"
        if os.path.exists(path):
            with open(path, "w") as f:
                f.write(value)
    for path in PRIVATE_TMPFS:
        _run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", path)
    os.makedirs("/var/log/containers", exist_ok=True)
    os.makedirs("/run/containerd", exist_ok=True)


def end_all(grace: float) -> None:
    """SIGTERM every other process of the namespace, then SIGKILL what is left after `grace`."""
    try:
        os.kill(-1, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not reap(block=False) and not _others_alive():
            return
        time.sleep(0.05)
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _others_alive() -> bool:
    return any(p.isdigit() and p != "1" for p in os.listdir("/proc"))


def reap(block: bool) -> bool:
    """Collect exited children; True if one was collected."""
    try:
        pid, _ = os.waitpid(-1, 0 if block else os.WNOHANG)
    except ChildProcessError:
        return False
    return pid != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nodeinit")
    parser.add_argument("--grace", type=float, default=10.0)
    args = parser.parse_args(argv)
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    setup()
    # Blocked, so sigtimedwait can wake on it (an unblocked SIGCHLD with the default action is discarded).
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])
    sys.stdout.write("nodeinit: ready\n")
    sys.stdout.flush()
    while not stop:
        if not reap(block=False):
            signal.sigtimedwait([signal.SIGCHLD], 0.5)
    end_all(args.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
