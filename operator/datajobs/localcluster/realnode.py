"""A real node for the local cluster: containerd + runc + kubelet + kube-proxy in the harness's namespaces.

Layout (the network rule: traffic only to loopback or inside a namespace the harness creates):
- `nodeinit` is PID 1 of a new PID, mount and network namespace; the node's address lives on a bridge
  there, and the namespace has no route out.
- containerd, the kubelet and kube-proxy are entered into those namespaces with nsenter.
- The control plane stays on the host's 127.0.0.1. A forwarder (netfwd) listens inside the namespace on
  the node address and dials the API server on host loopback (kubelet, kube-proxy, and pods through the
  `kubernetes` Service); the API server reaches kubelets and pods through its egress selector, an HTTP
  CONNECT proxy on a unix socket that dials only inside the namespace.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from datajobs.localcluster import imagestore, janitor, nodeconfig
from datajobs.localcluster.netns import NODE_IP
from datajobs.localcluster.processes import Child, spawn, stop_all

log = logging.getLogger(__name__)

REQUIRED_TOOLS = ("containerd", "runc", "ctr", "nsenter", "unshare", "ip", "iptables")
CNI_DIR = Path("/usr/lib/cni")


class RealNodeError(RuntimeError):
    """The real node cannot run here, or did not come up; the message says why."""


def unavailable_reason() -> str | None:
    """Why this machine cannot run a real node (None when it can): Linux, root, the runtime installed."""
    if not sys.platform.startswith("linux"):
        return f"a real node needs Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return "a real node needs root (namespaces, cgroups, mounts)"
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
    if not (CNI_DIR / "bridge").exists():
        missing.append(f"CNI plugins in {CNI_DIR}")
    if missing:
        return f"missing {', '.join(missing)}: run `bash scripts/node.sh install` (Debian packages)"
    return None


def egress_selector_config(socket_path: Path) -> dict[str, Any]:
    """The API server's route to nodes and pods: HTTP CONNECT over a unix socket into the namespace."""
    return {
        "apiVersion": "apiserver.k8s.io/v1beta1",
        "kind": "EgressSelectorConfiguration",
        "egressSelections": [
            {
                "name": "cluster",
                "connection": {
                    "proxyProtocol": "HTTPConnect",
                    "transport": {"uds": {"udsName": str(socket_path)}},
                },
            }
        ],
    }


class RealNode:
    """One kubelet node; `start()` needs the running API server's port and the cluster's admin kubeconfig.

    image_store: a containerd root kept between runs (see imagestore), or None for a fresh one each time."""

    def __init__(
        self,
        workdir: Path,
        egress_socket: Path,
        binaries: dict[str, Path],
        python: str = sys.executable,
        image_store: Path | None = None,
    ):
        self.workdir = workdir
        self.image_store = image_store
        self.store: imagestore.ImageStore | None = None
        self.egress_socket = egress_socket
        self.binaries = binaries
        self.python = python
        self.children: list[Child] = []
        self.forwarders: list[Child] = []
        self.holder: Child | None = None
        self.init_pid = 0
        self.cgroup = janitor.cgroup_name(os.getpid(), secrets.token_hex(3))
        self._janitor_w: int | None = None

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def pod_logs_dir(self) -> Path:
        return self.workdir / "pod-logs"

    @property
    def netns_path(self) -> Path:
        return Path(f"/proc/{self.init_pid}/ns/net")

    def nsenter(self, *argv: str) -> list[str]:
        """argv run inside the node's network, mount and PID namespaces."""
        return ["nsenter", "-t", str(self.init_pid), "-n", "-m", "-p", "--", *argv]

    def run(self, *argv: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command inside the node (e.g. `ctr`, `iptables`) and return its output."""
        proc = subprocess.run(
            self.nsenter(*argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise RealNodeError(
                f"{' '.join(argv)} in the node failed ({proc.returncode}): {proc.stderr.strip()}"
            )
        return proc

    # --- start -------------------------------------------------------------------------------------------

    def start(
        self,
        *,
        api_port: int,
        kubeconfig: dict[str, Any],
        ca_file: Path,
        images: Mapping[str, Path],
        sandbox_image: str,
        check: Callable[[], None],
        deadline: float,
    ) -> None:
        """Bring the node up to the point where containerd answers and the kubelet and proxy are started.
        images: ref -> docker-archive tar; those the image store holds already are not imported again."""
        reason = unavailable_reason()
        if reason:
            raise RealNodeError(reason)
        for name in janitor.stale():
            janitor.remove(name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        for d in ("cni", "cni-ipam", "pod-logs", "logs"):
            (self.workdir / d).mkdir(exist_ok=True)
        self.store = imagestore.claim(self.image_store, self.workdir / "containerd", images)
        janitor.create(self.cgroup)
        self._start_namespaces(deadline)
        self._start_janitor()
        self._spawn_forwarder(
            "netfwd-api",
            [
                "--inward",
                f"{NODE_IP}:{api_port}=127.0.0.1:{api_port}",
                "--connect-proxy",
                str(self.egress_socket),
            ],
            deadline,
        )
        self._write_configs(api_port, kubeconfig, ca_file, sandbox_image)
        self._spawn(
            "containerd", [str(shutil.which("containerd")), "--config", str(self.workdir / "containerd.toml")]
        )
        self._wait(
            "containerd",
            lambda: (
                self.run(
                    "ctr", "-a", nodeconfig.CONTAINERD_SOCKET, "version", timeout=5, check=False
                ).returncode
                == 0
            ),
            check,
            deadline,
        )
        present = set(
            self.run(
                "ctr", "-a", nodeconfig.CONTAINERD_SOCKET, "-n", "k8s.io", "images", "ls", "-q"
            ).stdout.split()
        )
        for tar in self.store.missing(images, present).values():
            self.import_image(tar)
        self.store.remember(images)
        self._spawn(
            "kubelet",
            [
                str(self.binaries["kubelet"]),
                f"--config={self.workdir / 'kubelet.yaml'}",
                f"--kubeconfig={self.workdir / 'node.kubeconfig'}",
                f"--root-dir={nodeconfig.KUBELET_ROOT}",
                f"--cert-dir={nodeconfig.KUBELET_ROOT}/pki",
                f"--hostname-override={nodeconfig.NODE_NAME}",
                f"--node-ip={NODE_IP}",
                f"--node-labels={nodeconfig.NODE_LABEL}={nodeconfig.NODE_LABEL_VALUE}",
                "--v=1",
            ],
        )
        self._spawn(
            "kube-proxy", [str(self.binaries["kube-proxy"]), f"--config={self.workdir / 'kube-proxy.yaml'}"]
        )

    def import_image(self, tar: Path) -> None:
        """Load a docker-archive/OCI tar into the node's containerd (the CRI's `k8s.io` namespace)."""
        self.run(
            "ctr",
            "-a",
            nodeconfig.CONTAINERD_SOCKET,
            "-n",
            "k8s.io",
            "images",
            "import",
            "--no-unpack=false",
            str(tar),
            timeout=300,
        )

    def _start_namespaces(self, deadline: float) -> None:
        argv = [
            "unshare",
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child=SIGKILL",
            "--mount-proc",
            "--propagation",
            "private",
            self.python,
            "-m",
            "datajobs.localcluster.nodeinit",
        ]
        self.holder = spawn("nodeinit", argv, log_path=self.log_dir / "nodeinit.log")
        while True:
            if not self.holder.alive():
                raise RealNodeError(
                    f"nodeinit exited {self.holder.popen.returncode}:\n{self.holder.log_tail()}"
                )
            if "nodeinit: ready" in self.holder.log_tail():
                children = (
                    Path(f"/proc/{self.holder.pid}/task/{self.holder.pid}/children").read_text().split()
                )
                if children:
                    self.init_pid = int(children[0])
                    return
            if time.monotonic() > deadline:
                raise RealNodeError(f"nodeinit not ready:\n{self.holder.log_tail()}")
            time.sleep(0.05)

    def _start_janitor(self) -> None:
        r, w = os.pipe()
        argv = [
            self.python,
            "-m",
            "datajobs.localcluster.janitor",
            f"--fd={r}",
            f"--cgroup={self.cgroup}",
            f"--init-pid={self.init_pid}",
            f"--remove={self.egress_socket}",
        ]
        with (self.log_dir / "janitor.log").open("ab") as out:
            subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                pass_fds=(r,),
                start_new_session=True,
            )
        os.close(r)
        self._janitor_w = w

    def _spawn(self, name: str, argv: list[str]) -> None:
        self.children.append(spawn(name, self.nsenter(*argv), log_path=self.log_dir / f"{name}.log"))

    def _spawn_forwarder(self, name: str, rules: list[str], deadline: float) -> Child:
        ready = self.workdir / f"{name}.ready"
        ready.unlink(missing_ok=True)
        argv = [
            self.python,
            "-m",
            "datajobs.localcluster.netfwd",
            f"--netns={self.netns_path}",
            f"--ready-file={ready}",
            *rules,
        ]
        child = spawn(name, argv, log_path=self.log_dir / f"{name}.log")
        self.forwarders.append(child)
        while not ready.exists():
            if not child.alive() or time.monotonic() > deadline:
                raise RealNodeError(f"{name} did not start:\n{child.log_tail()}")
            time.sleep(0.02)
        return child

    def expose_to_pods(self, host_port: int, deadline: float | None = None) -> tuple[str, int]:
        """Make a service on host 127.0.0.1:`host_port` reachable from the node and its pods; (ip, port)."""
        self._spawn_forwarder(
            f"netfwd-in-{host_port}",
            [f"--inward={NODE_IP}:{host_port}=127.0.0.1:{host_port}"],
            deadline or time.monotonic() + 10,
        )
        return NODE_IP, host_port

    def expose_to_host(self, host_port: int, target: tuple[str, int], deadline: float | None = None) -> str:
        """Serve `target` (inside the namespace, e.g. a ClusterIP) on host 127.0.0.1:`host_port`."""
        self._spawn_forwarder(
            f"netfwd-out-{host_port}",
            [f"--outward=127.0.0.1:{host_port}={target[0]}:{target[1]}"],
            deadline or time.monotonic() + 10,
        )
        return f"127.0.0.1:{host_port}"

    def _write_configs(
        self, api_port: int, kubeconfig: dict[str, Any], ca_file: Path, sandbox_image: str
    ) -> None:
        w = self.workdir
        node_kubeconfig = yaml.safe_load(yaml.safe_dump(kubeconfig))
        for c in node_kubeconfig["clusters"]:
            c["cluster"]["server"] = f"https://{NODE_IP}:{api_port}"
        (w / "node.kubeconfig").write_text(yaml.safe_dump(node_kubeconfig))
        (w / "node.kubeconfig").chmod(0o600)
        assert self.store is not None
        (w / "containerd.toml").write_text(
            nodeconfig.containerd_config(self.store.root, w / "cni", sandbox_image)
        )
        (w / "cni" / "10-datajobs.conflist").write_text(nodeconfig.cni_conflist(w / "cni-ipam"))
        (w / "resolv.conf").write_text("# no cluster DNS: pods resolve nothing (the network rule)\n")
        kubelet = nodeconfig.kubelet_config(
            ca_file=ca_file,
            pod_logs_dir=self.pod_logs_dir,
            resolv_conf=w / "resolv.conf",
            cgroup_root=f"/{self.cgroup}",
        )
        (w / "kubelet.yaml").write_text(yaml.safe_dump(kubelet))
        (w / "kube-proxy.yaml").write_text(
            yaml.safe_dump(nodeconfig.kube_proxy_config(w / "node.kubeconfig"))
        )

    def _wait(self, what: str, probe: Callable[[], bool], check: Callable[[], None], deadline: float) -> None:
        while True:
            check()
            self.check()
            if probe():
                return
            if time.monotonic() > deadline:
                raise RealNodeError(
                    f"timed out waiting for {what}:\n"
                    + "\n".join(f"--- {c.name}:\n{c.log_tail(10)}" for c in self.children)
                )
            time.sleep(0.1)

    def check(self) -> None:
        """Raise if a node process died."""
        for child in [*self.children, *self.forwarders, *([self.holder] if self.holder else [])]:
            if not child.alive():
                raise RealNodeError(
                    f"{child.name} exited with code {child.popen.returncode}; "
                    f"last lines of {child.log_path}:\n{child.log_tail()}"
                )

    # --- stop --------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the kubelet and proxy, end the namespaces (and with them every container), remove cgroups."""
        stop_all([c for c in self.children if c.name != "containerd"], timeout=10)
        stop_all([c for c in self.children if c.name == "containerd"], timeout=10)
        if self.holder is not None:
            stop_all([self.holder], timeout=15)
        stop_all(self.forwarders, timeout=5)
        if self.store is not None:
            self.store.release()  # containerd is gone: the next node may use the store
            self.store = None
        left = janitor.remove(self.cgroup)
        if left:
            log.warning("cgroups left behind: %s", left)
        self.egress_socket.unlink(missing_ok=True)
        if self._janitor_w is not None:
            os.close(self._janitor_w)
            self._janitor_w = None
        self.children, self.forwarders, self.holder = [], [], None
