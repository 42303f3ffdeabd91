"""Start and stop etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok on loopback."""

from __future__ import annotations

import base64
import logging
import shutil
import signal
import socket
import tempfile
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from datajobs.localcluster import nodeconfig
from datajobs.localcluster.binaries import NODE, Binaries, ensure_binaries
from datajobs.localcluster.netns import SERVICE_NETWORK
from datajobs.localcluster.pki import ADMIN_USER, Pki, create_pki
from datajobs.localcluster.processes import Child, spawn, stop_all
from datajobs.localcluster.realnode import RealNode, RealNodeError, egress_selector_config
from datajobs.localcluster.rest import ApiError, Rest

log = logging.getLogger(__name__)

STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_PREFIX = "kwok-node-"
SERVICE_CIDR = str(SERVICE_NETWORK)
POD_CIDR = "10.244.0.0/16"
_KCM_DISABLED = (
    "node-lifecycle-controller",
    "node-ipam-controller",
    "cloud-node-lifecycle-controller",
    "service-lb-controller",
    "node-route-controller",
)
T = TypeVar("T")
# The API server's own record of who lists and watches what (pods, secrets, our kinds): the server-side proof
# that a client asked for a label selector or one namespace; and who created, deleted or patched which pod.
# Everything else is not logged.
AUDIT_POLICY: dict[str, Any] = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {
            "level": "Metadata",
            "verbs": ["list", "watch"],
            "resources": [{"group": "", "resources": ["pods", "secrets"]}, {"group": "datajobs.io"}],
        },
        {
            "level": "Metadata",
            "verbs": ["create", "delete", "patch"],
            "resources": [{"group": "", "resources": ["pods"]}],
        },
        {"level": "None"},
    ],
}


class ClusterError(RuntimeError):
    """The control plane did not come up; the message carries the failing component's log tail."""


class _PortClash(ClusterError):
    """Another process took a port between choosing and binding it."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_kubeconfig(server: str, pki: Pki, name: str = "datajobs-local") -> dict[str, Any]:
    """An admin kubeconfig (certificates embedded) for `server`."""

    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, "certificate-authority-data": b64(pki.ca_cert)}}
        ],
        "users": [
            {
                "name": ADMIN_USER,
                "user": {
                    "client-certificate-data": b64(pki.admin_cert),
                    "client-key-data": b64(pki.admin_key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": ADMIN_USER}}],
        "current-context": name,
        "preferences": {},
    }


def fake_node(name: str, pods: int) -> dict[str, Any]:
    """A Node that kwok manages (no taint: every pod may schedule there)."""
    resources = {"cpu": "1000", "memory": "4Ti", "pods": str(pods), "ephemeral-storage": "10Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {FAKE_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "type": "kwok",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
            },
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


class LocalCluster:
    """A real control plane with kwok fake nodes, living in `workdir` (logs, PKI, etcd data, kubeconfig)."""

    def __init__(
        self,
        workdir: Path,
        binaries: Binaries | None = None,
        nodes: int = 3,
        pods_per_node: int = 11000,
        real_node: bool = False,
        profiling: bool = False,
    ) -> None:
        self.workdir = workdir.resolve()
        self.profiling = profiling
        """kube-apiserver serves /debug/pprof (benchmarks' CPU profiles); off by default, as in production."""
        self.binaries = binaries
        self.nodes = nodes
        self.pods_per_node = pods_per_node
        self.kubeconfig = self.workdir / "kubeconfig"
        self.server = ""
        self.children: list[Child] = []
        self.startup_seconds = 0.0
        self.pki = Pki(self.workdir / "pki")
        self._rest: Rest | None = None
        self.real_node_enabled = real_node
        """The API server is set up to reach a real node (started later by `add_real_node`)."""
        self.node: RealNode | None = None
        self._egress_dir = Path(tempfile.mkdtemp(prefix="dj-egress-")) if real_node else None
        self._commands: dict[str, tuple[list[str], dict[str, str] | None]] = {}

    @property
    def bin_dir(self) -> Path:
        if self.binaries is None:
            raise ClusterError("binaries not resolved yet: call start()")
        return self.binaries.bin_dir

    @property
    def rest(self) -> Rest:
        if self._rest is None:
            raise ClusterError("the cluster is not started")
        return self._rest

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    @property
    def audit_log(self) -> Path:
        """The API server's audit log (JSON lines; see AUDIT_POLICY for what it records)."""
        return self.log_dir / "audit.log"

    def pids(self) -> list[int]:
        return [c.pid for c in self.children if c.alive()]

    @property
    def egress_socket(self) -> Path:
        if self._egress_dir is None:
            raise ClusterError("this cluster was started without real-node support (real_node=False)")
        return self._egress_dir / "egress.sock"

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> None:
        """Start every component (fresh etcd data) and return once pods can be scheduled and run."""
        if self.binaries is None:
            self.binaries = ensure_binaries()  # a first build takes many minutes: not part of `timeout`
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pki = create_pki(self.workdir / "pki")
        for attempt in range(1, 4):
            try:
                self._start_once(started + timeout)
                break
            except _PortClash as exc:
                self.stop()
                if attempt == 3:
                    raise ClusterError(f"ports kept clashing with other processes: {exc}") from exc
                log.warning("port clash, retrying with new ports: %s", exc)
            except BaseException:
                self.stop()
                raise
        self.startup_seconds = time.monotonic() - started
        log.info(
            "control plane ready in %.1f s: %s (kubeconfig %s)",
            self.startup_seconds,
            self.server,
            self.kubeconfig,
        )

    def _start_once(self, deadline: float) -> None:
        assert self.binaries is not None
        data_dir = self.workdir / "etcd"
        shutil.rmtree(data_dir, ignore_errors=True)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self.server = f"https://127.0.0.1:{api_port}"
        self.kubeconfig.write_text(yaml.safe_dump(render_kubeconfig(self.server, self.pki), sort_keys=False))
        self.kubeconfig.chmod(0o600)
        self._rest = Rest(self.server, self.pki, timeout=5.0)
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.binaries["etcd"]),
                "--name=default",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
                "--quota-backend-bytes=8589934592",
            ],
        )
        pki = self.pki
        audit_policy = self.workdir / "audit-policy.yaml"
        audit_policy.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
        self._spawn(
            "kube-apiserver",
            [
                str(self.binaries["kube-apiserver"]),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                f"--secure-port={api_port}",
                "--advertise-address=127.0.0.1",
                f"--tls-cert-file={pki.server_cert}",
                f"--tls-private-key-file={pki.server_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--cert-dir={self.workdir / 'apiserver'}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                # No TaintNodesByCondition: fake nodes never get the not-ready taint (node lifecycle is off).
                # Strict like OpenShift: setting blockOwnerDeletion needs `update` on the owner's finalizers.
                "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
                # ServiceAccount admission (token mounts) only with a real node, whose pods use in-cluster
                # config; without one, pods in a new namespace need not wait for its `default` SA.
                "--disable-admission-plugins="
                + (
                    "TaintNodesByCondition"
                    if self.real_node_enabled
                    else "ServiceAccount,TaintNodesByCondition"
                ),
                "--endpoint-reconciler-type=none",
                f"--profiling={str(self.profiling).lower()}",
                "--max-requests-inflight=1000",
                "--max-mutating-requests-inflight=500",
                f"--audit-policy-file={audit_policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-maxsize=512",
                *self._real_node_flags(),
            ],
        )
        self._wait("kube-apiserver /readyz", self._readyz, deadline)

        sched_config = self.workdir / "kube-scheduler.yaml"
        sched_config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubescheduler.config.k8s.io/v1",
                    "kind": "KubeSchedulerConfiguration",
                    "clientConnection": {"kubeconfig": str(self.kubeconfig), "qps": 500, "burst": 1000},
                    "leaderElection": {"leaderElect": False},
                }
            )
        )
        self._spawn(
            "kube-controller-manager",
            [
                str(self.binaries["kube-controller-manager"]),
                f"--kubeconfig={self.kubeconfig}",
                "--secure-port=0",
                "--leader-elect=false",
                "--controllers=*," + ",".join(f"-{c}" for c in _KCM_DISABLED),
                f"--root-ca-file={pki.ca_cert}",
                f"--service-account-private-key-file={pki.sa_key}",
                f"--cluster-signing-cert-file={pki.ca_cert}",
                f"--cluster-signing-key-file={pki.ca_key}",
                "--use-service-account-credentials=false",
                "--kube-api-qps=300",
                "--kube-api-burst=600",
            ],
        )
        self._spawn(
            "kube-scheduler",
            [
                str(self.binaries["kube-scheduler"]),
                f"--config={sched_config}",
                "--secure-port=0",
            ],
        )
        kwok_home = self.workdir / "kwok-home"
        kwok_home.mkdir(exist_ok=True)
        self._spawn(
            "kwok",
            [
                str(self.binaries["kwok"]),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={STAGES_FILE}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                f"--cidr={POD_CIDR}",
                "--node-ip=10.0.0.2",
            ],
            env={"HOME": str(kwok_home), "PATH": "/usr/bin:/bin"},
        )

        for i in range(self.nodes):
            self.rest.create("/api/v1/nodes", fake_node(f"{NODE_PREFIX}{i}", self.pods_per_node))
        self._wait("fake nodes Ready (kwok)", self._nodes_ready, deadline)
        self._wait("default ServiceAccount (kube-controller-manager)", self._default_sa, deadline)

    def _real_node_flags(self) -> list[str]:
        """How the API server reaches a real node: by its InternalIP, through the egress proxy's socket."""
        if not self.real_node_enabled:
            return []
        config = self.workdir / "egress-selector.yaml"
        config.write_text(yaml.safe_dump(egress_selector_config(self.egress_socket)))
        return [
            f"--egress-selector-config-file={config}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-client-certificate={self.pki.admin_cert}",
            f"--kubelet-client-key={self.pki.admin_key}",
        ]

    def add_real_node(
        self,
        images: dict[str, Path],
        sandbox_image: str,
        timeout: float = 180.0,
        image_store: Path | None = None,
    ) -> RealNode:
        """Start the real node (kubelet + containerd), load `images` (ref -> tar) into it, and wait until it
        is Ready. image_store: a containerd root kept between runs (imagestore.default_directory())."""
        assert self.binaries is not None
        if not self.real_node_enabled:
            raise ClusterError("this cluster was started without real-node support (real_node=False)")
        node_binaries = ensure_binaries(NODE)  # a first build is not part of `timeout`
        deadline = time.monotonic() + timeout
        self.node = RealNode(
            self.workdir / "node",
            self.egress_socket,
            {n: node_binaries[n] for n in NODE},
            image_store=image_store,
        )
        started = time.monotonic()
        try:
            self.node.start(
                api_port=int(self.server.rsplit(":", 1)[1]),
                kubeconfig=yaml.safe_load(self.kubeconfig.read_text()),
                ca_file=self.pki.ca_cert,
                images=images,
                sandbox_image=sandbox_image,
                check=self._check_children,
                deadline=deadline,
            )
            self._put_api_endpoints()
            self._wait("the real node Ready (kubelet)", self._real_node_ready, deadline)
        except BaseException:
            self.node.stop()
            self.node = None
            raise
        log.info("real node %s ready in %.1f s", nodeconfig.NODE_NAME, time.monotonic() - started)
        return self.node

    def _put_api_endpoints(self) -> None:
        """Point the `kubernetes` Service at the API server as pods reach it (the node's forwarder)."""
        port = int(self.server.rsplit(":", 1)[1])
        slices = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
        try:
            self.rest.create(slices, nodeconfig.api_endpoint_slice(port))
        except ApiError as exc:
            if exc.status != 409:
                raise

    def _real_node_ready(self) -> bool:
        assert self.node is not None
        self.node.check()
        node = self.rest.get(f"/api/v1/nodes/{nodeconfig.NODE_NAME}")
        return any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (node.get("status") or {}).get("conditions") or []
        )

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self._commands[name] = (argv, env)
        self.children.append(spawn(name, argv, log_path=self.log_dir / f"{name}.log", env=env))

    # -- fault injection (tests): crash one component, start it again with the same arguments and ports --

    def kill_component(self, name: str) -> None:
        """SIGKILL a component's process group, as a crash would; it stays down until start_component."""
        for child in [c for c in self.children if c.name == name]:
            child.signal_group(signal.SIGKILL)
            child.popen.wait(10)
            child.close_log()
            self.children.remove(child)

    def start_component(self, name: str, timeout: float = 180.0) -> None:
        """Start a killed component again (same argv, ports and data); for the API server, until ready."""
        if any(c.name == name for c in self.children):
            raise ClusterError(f"{name} is running")
        argv, env = self._commands[name]
        self._spawn(name, argv, env)
        deadline = time.monotonic() + timeout
        if name in ("kube-apiserver", "etcd"):
            self._wait(f"kube-apiserver /readyz after restarting {name}", self._readyz, deadline)

    def _check_children(self) -> None:
        for child in self.children:
            if not child.alive():
                tail = child.log_tail()
                error = _PortClash if "address already in use" in tail else ClusterError
                raise error(
                    f"{child.name} exited with code {child.popen.returncode}; "
                    f"last lines of {child.log_path}:\n{tail}"
                )

    def _wait(self, what: str, probe: Callable[[], T | None], deadline: float) -> T:
        last: object = None
        while True:
            self._check_children()
            try:
                result = probe()
                if result:
                    return result
                last = result
            except (ApiError, urllib.error.URLError, OSError, RealNodeError) as exc:
                if isinstance(exc, RealNodeError):
                    raise
                last = exc
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {c.name}:\n{c.log_tail(10)}" for c in self.children)
                raise ClusterError(f"timed out waiting for {what} (last: {last!r})\n{tails}")
            time.sleep(0.2)

    def _readyz(self) -> bool:
        return self.rest.get("/readyz") == "ok"

    def _nodes_ready(self) -> bool:
        nodes = self.rest.get("/api/v1/nodes")["items"]
        ready = [
            n
            for n in nodes
            if n["metadata"]["name"].startswith(NODE_PREFIX)
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (n.get("status") or {}).get("conditions") or []
            )
        ]
        return len(ready) >= self.nodes

    def _default_sa(self) -> bool:
        return bool(self.rest.get("/api/v1/namespaces/default/serviceaccounts/default"))

    def stop(self) -> None:
        """Stop every process this cluster started (idempotent)."""
        if self.node is not None:
            self.node.stop()
            self.node = None
        if not self.children:
            if self._egress_dir is not None:
                shutil.rmtree(self._egress_dir, ignore_errors=True)
            return
        # Clients first, etcd last, so nothing logs a storm of connection errors while stopping.
        order = {"etcd": 2, "kube-apiserver": 1}
        children = sorted(self.children, key=lambda c: order.get(c.name, 0))
        stop_all([c for c in children if c.name not in order], timeout=10)
        stop_all([c for c in children if c.name == "kube-apiserver"], timeout=15)
        stop_all([c for c in children if c.name == "etcd"], timeout=10)
        self.children = []
        if self._egress_dir is not None:
            shutil.rmtree(self._egress_dir, ignore_errors=True)
        log.info("control plane stopped")
