"""Pure pieces of the starter: kubeconfig, fake nodes, and the kwok stages shipped in the package."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from datajobs.localcluster.cluster import (
    FAKE_NODE_ANNOTATION,
    STAGES_FILE,
    fake_node,
    free_port,
    render_kubeconfig,
)
from datajobs.localcluster.pki import create_pki


def _stages() -> dict[str, dict[str, Any]]:
    docs = list(yaml.safe_load_all(STAGES_FILE.read_text()))
    assert all(d["apiVersion"] == "kwok.x-k8s.io/v1alpha1" and d["kind"] == "Stage" for d in docs)
    return {d["metadata"]["name"]: d["spec"] for d in docs}


def _keys(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["key"]: e for e in spec["selector"]["matchExpressions"]}


def test_kubeconfig_embeds_the_admin_credentials(tmp_path: Path) -> None:
    pki = create_pki(tmp_path / "pki")
    doc = render_kubeconfig("https://127.0.0.1:6443", pki)
    cluster = doc["clusters"][0]["cluster"]
    user = doc["users"][0]["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == pki.ca_cert.read_bytes()
    assert base64.b64decode(user["client-certificate-data"]) == pki.admin_cert.read_bytes()
    assert base64.b64decode(user["client-key-data"]) == pki.admin_key.read_bytes()
    assert doc["current-context"] == doc["contexts"][0]["name"]


def test_fake_nodes_take_any_pod_and_many_of_them() -> None:
    node = fake_node("kwok-node-0", 11000)
    assert node["metadata"]["annotations"][FAKE_NODE_ANNOTATION] == "fake"
    assert "taints" not in node.get("spec", {})
    assert node["status"]["allocatable"]["pods"] == "11000"
    assert node["status"]["capacity"] == node["status"]["allocatable"]


def test_free_port_is_bindable() -> None:
    import socket

    port = free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_stages_cover_ready_complete_and_graceful_delete() -> None:
    assert set(_stages()) == {"pod-ready", "pod-complete", "pod-delete"}


def test_pod_ready_leaves_terminal_phases_alone() -> None:
    phase = _keys(_stages()["pod-ready"])[".status.phase"]
    assert phase["operator"] == "NotIn" and set(phase["values"]) == {"Succeeded", "Failed"}


def test_only_job_pods_complete_by_themselves() -> None:
    owner = _keys(_stages()["pod-complete"])[".metadata.ownerReferences.[].kind"]
    assert owner == {"key": ".metadata.ownerReferences.[].kind", "operator": "In", "values": ["Job"]}


def test_pod_delete_waits_for_the_deletion_timestamp_and_keeps_finalizers() -> None:
    spec = _stages()["pod-delete"]
    assert spec["delay"]["durationFrom"]["expressionFrom"] == ".metadata.deletionTimestamp"
    assert "jitterDurationMilliseconds" not in spec["delay"] and "jitterDurationFrom" not in spec["delay"]
    assert spec["next"] == {"delete": True}


def test_a_first_build_of_the_binaries_does_not_eat_the_start_timeout(tmp_path, monkeypatch):
    """A fresh clone's `make dev` builds for many minutes, then must still get the whole start timeout."""
    from datajobs.localcluster import cluster as cluster_module

    clock = [1000.0]
    monkeypatch.setattr(cluster_module.time, "monotonic", lambda: clock[0])

    def slow_build(*_: object) -> dict:
        clock[0] += 1617.0  # what the cold build took here
        return {}

    deadlines: list[float] = []

    def start_once(self, deadline: float) -> None:
        deadlines.append(deadline)

    monkeypatch.setattr(cluster_module, "ensure_binaries", slow_build)
    monkeypatch.setattr(cluster_module, "create_pki", lambda *_: None)
    monkeypatch.setattr(cluster_module.LocalCluster, "_start_once", start_once)
    local = cluster_module.LocalCluster(tmp_path / "cluster")
    local.server = local.kubeconfig = "unused"
    local.start(timeout=180.0)
    assert deadlines == [1000.0 + 1617.0 + 180.0]
