"""The system under test: a dedicated local control plane, the CRDs, `datajobs run`, `datajobs adapter`."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from datajobs.crdgen import render_crds
from datajobs.localcluster import LocalCluster
from datajobs.localcluster.cluster import free_port
from datajobs.localcluster.crds import apply_crds
from datajobs.localcluster.processes import Child, spawn, stop_all

log = logging.getLogger(__name__)

NS_OPERATOR = "bench-op"  # dispatch and cancel, ours
NS_PEER = "bench-peer"  # dispatch and cancel, batch/v1 Jobs
NS_ADAPTER = "bench-adapter"
NS_SCALE = "bench-scale"
OPERATOR_NAMESPACES = (NS_OPERATOR, NS_ADAPTER, NS_SCALE)
ALL_NAMESPACES = (*OPERATOR_NAMESPACES, NS_PEER)


class StackError(RuntimeError):
    """A component did not start or died; the message carries its log tail."""


@dataclass
class Stack:
    """Start with `start()`, stop with `stop()`; everything lives under `workdir`."""

    workdir: Path
    nodes: int = 2
    pods_per_node: int = 11000
    max_running: int = 100_000
    operator_args: Sequence[str] = ()
    operator_wrapper: Path | None = None  # experiments: a script run instead of `-m datajobs.cli`
    apiserver_profiling: bool = False
    cluster: LocalCluster | None = None
    operator: Child | None = None
    adapter: Child | None = None
    adapter_url: str = ""
    api_key: str = ""
    operator_metrics_url: str = ""
    _children: list[Child] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        return self.workdir / "logs"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.cluster = LocalCluster(
            self.workdir / "cluster",
            nodes=self.nodes,
            pods_per_node=self.pods_per_node,
            profiling=self.apiserver_profiling,
        )
        self.cluster.start()
        apply_crds(self.cluster.rest, render_crds(), field_manager="datajobs-bench")
        for ns in ALL_NAMESPACES:
            self.cluster.rest.create("/api/v1/namespaces", {"metadata": {"name": ns}})
        self._start_operator()
        self._start_adapter()

    def _start_operator(self) -> None:
        assert self.cluster is not None
        liveness, metrics = free_port(), free_port()
        entry = [str(self.operator_wrapper)] if self.operator_wrapper else ["-m", "datajobs.cli"]
        argv = [sys.executable, *entry, "run", "--kubeconfig", str(self.cluster.kubeconfig)]
        for ns in OPERATOR_NAMESPACES:
            argv += ["--namespace", ns]
        argv += [
            "--state-namespace", NS_OPERATOR,
            "--max-running", str(self.max_running),
            "--bind-address", "127.0.0.1",
            "--liveness-port", str(liveness),
            "--metrics-port", str(metrics),
            *self.operator_args,
        ]  # fmt: skip
        self.operator = self._spawn("operator", argv)
        self.operator_metrics_url = f"http://127.0.0.1:{metrics}/metrics"
        self._wait(self.operator, lambda: _http_ok(f"http://127.0.0.1:{liveness}/healthz"), "operator live")

    def restart_operator(self) -> None:
        """A fresh operator process (e.g. so memory figures start from a clean heap)."""
        if self.operator is not None:
            stop_all([self.operator], timeout=15)
            self._children.remove(self.operator)
        self._start_operator()

    def _start_adapter(self) -> None:
        assert self.cluster is not None
        self.api_key = secrets.token_urlsafe(24)
        keys = self.workdir / "api-keys.yaml"
        digest = hashlib.sha256(self.api_key.encode()).hexdigest()
        keys.write_text(yaml.safe_dump({"keys": [{"name": "bench", "sha256": digest, "namespaces": ["*"]}]}))
        keys.chmod(0o600)
        argv = [
            sys.executable, "-m", "datajobs.cli", "adapter", "--kubeconfig", str(self.cluster.kubeconfig),
            "--host", "127.0.0.1", "--port", "0", "--api-keys-file", str(keys), "--no-access-log",
            "--namespace", NS_ADAPTER,
        ]  # fmt: skip
        self.adapter = self._spawn("adapter", argv)
        log_path = self.logs / "adapter.log"

        def listening() -> bool:
            match = re.search(
                r"adapter listening on (http://127\.0\.0\.1:\d+)", log_path.read_text(errors="replace")
            )
            if match:
                self.adapter_url = match.group(1)
            return bool(match) and _http_ok(self.adapter_url + "/readyz")

        self._wait(self.adapter, listening, "adapter ready")

    def _spawn(self, name: str, argv: list[str]) -> Child:
        child = spawn(name, argv, log_path=self.logs / f"{name}.log")
        self._children.append(child)
        return child

    @staticmethod
    def _wait(child: Child, probe: object, what: str, within: float = 90.0) -> None:
        assert callable(probe)
        deadline = time.monotonic() + within
        while not probe():
            if not child.alive():
                raise StackError(f"{child.name} exited with {child.popen.returncode}:\n{child.log_tail(40)}")
            if time.monotonic() > deadline:
                raise StackError(f"timed out waiting for {what}:\n{child.log_tail(40)}")
            time.sleep(0.2)

    def check_alive(self) -> None:
        """Raise if the operator, the adapter or a control-plane component died."""
        children = [*self._children, *(self.cluster.children if self.cluster else [])]
        for child in children:
            if not child.alive():
                raise StackError(f"{child.name} exited with {child.popen.returncode}:\n{child.log_tail(40)}")

    def pids(self) -> dict[str, int]:
        """Process ids by component name (operator, adapter, etcd, kube-apiserver, …)."""
        children = [*self._children, *(self.cluster.children if self.cluster else [])]
        return {c.name: c.pid for c in children if c.alive()}

    def stop(self) -> None:
        stop_all(self._children, timeout=15)
        self._children = []
        if self.cluster is not None:
            self.cluster.stop()


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError):
        return False
