"""`kubectl datajobs logs` through the API server's log proxy: a kwok of the test's own serves the worker's
log from a file (a fake kubelet on 127.0.0.1), and once the pod is gone, the kept copy."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from operatorkit import free_port, integrity_spec
from pluginkit import Plugin, kubeconfig_in_namespace

from datajobs.localcluster import ensure_binaries
from datajobs.localcluster.cluster import STAGES_FILE
from helpers import kubectl_exe, wait_for

pytestmark = pytest.mark.timeout(600)  # it starts a kwok and a node of its own before the operator

LINES = ["checking model orders", "orders: 1000 rows compared, 0 stale"]


def cri(line: str, second: int) -> str:
    """One line of a container log as the kubelet keeps it (CRI format)."""
    return f"2026-12-02T00:00:{second:02d}.000000000Z stdout F {line}\n"


@pytest.fixture
def log_node(cluster, kube_api, namespace, tmp_path) -> Iterator[tuple[str, Path]]:
    """A fake node, tainted for this test only, whose kubelet API (kwok on 127.0.0.1) serves the log file."""
    name = f"logs-{secrets.token_hex(3)}"
    log_file = tmp_path / "worker.log"
    log_file.write_text("".join(cri(line, i) for i, line in enumerate(LINES)))
    port = free_port()
    logs_rule = {
        "apiVersion": "kwok.x-k8s.io/v1alpha1",
        "kind": "ClusterLogs",
        "metadata": {"name": "worker-logs"},
        "spec": {
            "selector": {"matchNamespaces": [namespace]},
            "logs": [{"containers": ["worker"], "logsFile": str(log_file), "follow": True}],
        },
    }
    config = tmp_path / "kwok.yaml"
    config.write_text(STAGES_FILE.read_text() + "\n---\n" + yaml.safe_dump(logs_rule))
    home = tmp_path / "kwok-home"
    home.mkdir()
    kwok = subprocess.Popen(
        [
            str(ensure_binaries(["kwok"])["kwok"]),
            f"--kubeconfig={cluster.kubeconfig}",
            f"--config={config}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node={name}",
            "--node-ip=127.0.0.1",
            f"--node-port={port}",
            f"--server-address=127.0.0.1:{port}",
        ],
        stdout=(tmp_path / "kwok.log").open("wb"),
        stderr=subprocess.STDOUT,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        start_new_session=True,
    )
    core = client.CoreV1Api(kube_api)
    resources = {"cpu": "10", "memory": "10Gi", "pods": "10"}
    core.create_node(
        {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": {"kwok.x-k8s.io/node": name},
                "labels": {"kubernetes.io/hostname": name, "type": "kwok"},
            },
            # Only an InternalIP on loopback (no Hostname address: the API server would resolve it).
            "spec": {
                "taints": [{"key": "datajobs.io/logs-test", "value": namespace, "effect": "NoSchedule"}]
            },
            "status": {
                "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
                "allocatable": resources,
                "capacity": resources,
            },
        }
    )
    try:
        wait_for(
            lambda: any(
                c.type == "Ready" and c.status == "True" for c in core.read_node(name).status.conditions or []
            ),
            timeout=60,
            message=f"node {name} Ready (kwok log: {tmp_path / 'kwok.log'})",
        )
        yield name, log_file
    finally:
        for pod in core.list_namespaced_pod(namespace).items:  # nothing may stay bound to the node
            core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
        core.delete_node(name)
        os.killpg(kwok.pid, signal.SIGTERM)
        kwok.wait(timeout=20)


class Follower:
    """A `... logs -f` process whose output lines arrive in a queue."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next_line(self, timeout: float = 30) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return f"<nothing in {timeout:g} s; exit code {self.proc.poll()}>"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=10)


def on_node(node: str, namespace: str) -> dict:
    spec = integrity_spec()
    pod = spec["template"]["spec"]
    pod["nodeSelector"] = {"kubernetes.io/hostname": node}
    pod["tolerations"] = [{"key": "datajobs.io/logs-test", "operator": "Equal", "value": namespace}]
    return spec


def test_logs_stream_from_the_pod_then_come_from_the_kept_copy(
    log_node, cluster, namespace, run_operator, jobs, tmp_path
):
    node, log_file = log_node
    plugin = Plugin(kubeconfig_in_namespace(cluster.kubeconfig, namespace, tmp_path / "kubeconfig"))
    run_operator()
    jobs.create("IntegrityJob", "logged", on_node(node, namespace))
    pod = jobs.wait_pod_running("logged")
    assert pod.spec.node_name == node

    assert plugin.ok("logs", "ij/logged").out == "".join(f"{line}\n" for line in LINES)
    assert plugin.ok("logs", "ij", "logged", "--tail", "1").out == f"{LINES[-1]}\n"
    stamped = plugin.ok("logs", "ij/logged", "--timestamps").out.splitlines()
    assert stamped[0].startswith("2026-12-02T00:00:00") and stamped[0].endswith(LINES[0])

    ours = Follower([kubectl_exe(), "datajobs", "logs", "ij/logged", "-f"], plugin.env)
    theirs = Follower([kubectl_exe(), "logs", "-f", "logged-worker"], plugin.env)  # kubectl's own, to compare
    try:
        first = [ours.next_line() for _ in LINES]
        assert first == [f"{line}\n" for line in LINES], f"kubectl's own logs -f: {theirs.next_line()!r}"
        with log_file.open("a") as f:
            f.write(cri("customers: 40 rows compared", 9))
        assert ours.next_line() == "customers: 40 rows compared\n"  # followed live
        assert ours.proc.poll() is None
    finally:
        ours.stop()
        theirs.stop()

    plugin.ok("cancel", "ij/logged", "--wait")
    gone = plugin("logs", "ij/logged")
    assert gone.code == 1 and "gone and no kept copy of its log exists" in gone.err
    # The kept copy as the operator is to write it (issue 14): a ConfigMap owned by the job.
    job = jobs.get("IntegrityJob", "logged")
    owner = {
        "apiVersion": "datajobs.io/v1alpha1",
        "kind": "IntegrityJob",
        "name": "logged",
        "uid": job["metadata"]["uid"],
    }
    labels = {"datajobs.io/kept-logs": "IntegrityJob", "datajobs.io/job": "logged"}
    jobs.core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {"name": "logged-logs", "labels": labels, "ownerReferences": [owner]},
            "data": {"worker": "kept line 1\nkept line 2\n"},
        },
    )
    jobs.core.create_namespaced_config_map(  # a copy from another job of the same name: never shown
        namespace,
        {
            "metadata": {
                "name": "logged-logs-old",
                "labels": labels,
                "ownerReferences": [{**owner, "uid": "00000000-0000-0000-0000-000000000000"}],
            },
            "data": {"worker": "someone else's\n"},
        },
    )
    assert plugin.ok("logs", "ij/logged").out == "kept line 1\nkept line 2\n"
    assert plugin.ok("logs", "ij/logged", "--tail=1").out == "kept line 2\n"
