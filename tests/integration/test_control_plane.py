"""The local control plane is real Kubernetes: scheduling, kwok pod lifecycle, grace periods, controllers."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

from datajobs.localcluster.cluster import NODE_PREFIX
from helpers import wait_for


def _pod(name: str, grace: int | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="main", image="example.invalid/worker:1")],
            termination_grace_period_seconds=grace,
        ),
    )


def _read(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod | None:
    try:
        return core.read_namespaced_pod(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _running(core: client.CoreV1Api, namespace: str, name: str) -> client.V1Pod:
    return wait_for(
        lambda: (p := _read(core, namespace, name)) is not None and p.status.phase == "Running" and p,
        timeout=30,
        message=f"pod {name} Running",
    )


def test_version_reports_kubernetes_1_34(kube_api: client.ApiClient) -> None:
    version = client.VersionApi(kube_api).get_code()
    assert version.git_version.startswith("v1.34."), version.git_version
    assert (version.major, version.minor) == ("1", "34")


def test_server_side_dry_run_rejects_a_bad_object_and_persists_nothing(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    bad = client.V1Pod(
        metadata=client.V1ObjectMeta(name="Not_A_Valid_Name"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="")]),
    )
    with pytest.raises(ApiException) as rejected:
        core.create_namespaced_pod(namespace, bad, dry_run="All")
    assert rejected.value.status == 422
    assert "Invalid value" in rejected.value.body or "must be" in rejected.value.body

    accepted = core.create_namespaced_pod(namespace, _pod("dry"), dry_run="All")
    assert accepted.metadata.name == "dry"
    assert _read(core, namespace, "dry") is None, "a dry-run create was persisted"


def test_kubeconfig_is_cluster_admin_and_rbac_is_enforced(kubectl: Any, namespace: str) -> None:
    assert kubectl("auth", "can-i", "*", "*", "--all-namespaces").stdout.strip() == "yes"
    denied = kubectl(
        "auth",
        "can-i",
        "list",
        "pods",
        "-n",
        namespace,
        f"--as=system:serviceaccount:{namespace}:nobody",
        check=False,
    )
    assert denied.stdout.strip() == "no", denied


def test_pod_is_scheduled_to_a_fake_node_and_runs(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, _pod("runner"))
    pod = _running(core, namespace, "runner")
    assert pod.spec.node_name.startswith(NODE_PREFIX)
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
    assert not node.spec.taints
    assert parse_quantity(node.status.allocatable["pods"]) >= 10_000
    assert pod.status.pod_ip
    assert any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions)


def test_deletion_records_the_requested_grace_period(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, _pod("graceful"))
    _running(core, namespace, "graceful")
    requested = datetime.now(UTC)
    core.delete_namespaced_pod("graceful", namespace, grace_period_seconds=30)
    try:
        pod = _read(core, namespace, "graceful")
        assert pod is not None, "the pod vanished although it has 30 s of grace"
        assert pod.metadata.deletion_grace_period_seconds == 30
        remaining = (pod.metadata.deletion_timestamp - requested).total_seconds()
        assert 27 <= remaining <= 32, f"deletionTimestamp {pod.metadata.deletion_timestamp} vs {requested}"
    finally:
        core.delete_namespaced_pod("graceful", namespace, grace_period_seconds=0)
    wait_for(lambda: _read(core, namespace, "graceful") is None, timeout=15, message="force-deleted pod gone")


def test_deleted_pod_stays_until_its_grace_period_ends_then_is_gone(
    kube_api: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, _pod("short"))
    _running(core, namespace, "short")
    started = time.monotonic()
    core.delete_namespaced_pod("short", namespace, grace_period_seconds=3)
    pod = _read(core, namespace, "short")
    assert pod is not None and pod.metadata.deletion_timestamp is not None
    assert pod.metadata.deletion_grace_period_seconds == 3
    wait_for(
        lambda: _read(core, namespace, "short") is None,
        timeout=30,
        interval=0.2,
        message="pod removed after its grace period",
    )
    # deletionTimestamp has a one-second resolution, hence 2 s rather than 3.
    assert time.monotonic() - started >= 1.9, "kwok removed the pod before its grace period ended"


def test_a_phase_set_by_the_test_is_not_overwritten(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(namespace, _pod("finished"))
    _running(core, namespace, "finished")
    now = datetime.now(UTC).isoformat()
    core.patch_namespaced_pod_status(
        "finished",
        namespace,
        {
            "status": {
                "phase": "Failed",
                "containerStatuses": [
                    {
                        "name": "main",
                        "image": "example.invalid/worker:1",
                        "imageID": "",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": 3,
                                "reason": "Error",
                                "startedAt": now,
                                "finishedAt": now,
                            }
                        },
                    }
                ],
            }
        },
    )
    # A metadata change makes kwok look at the pod again; a second pod reaching Running shows kwok has
    # processed events after ours.
    core.patch_namespaced_pod("finished", namespace, {"metadata": {"labels": {"touched": "yes"}}})
    core.create_namespaced_pod(namespace, _pod("witness"))
    _running(core, namespace, "witness")
    pod = core.read_namespaced_pod("finished", namespace)
    assert pod.status.phase == "Failed"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 3


def test_job_pods_complete_and_the_job_controller_sees_it(kube_api: client.ApiClient, namespace: str) -> None:
    batch = client.BatchV1Api(kube_api)
    batch.create_namespaced_job(
        namespace,
        client.V1Job(
            metadata=client.V1ObjectMeta(name="once"),
            spec=client.V1JobSpec(
                backoff_limit=0,
                template=client.V1PodTemplateSpec(
                    spec=client.V1PodSpec(
                        restart_policy="Never",
                        containers=[client.V1Container(name="main", image="example.invalid/worker:1")],
                    )
                ),
            ),
        ),
    )
    job = wait_for(
        lambda: (j := batch.read_namespaced_job("once", namespace)).status.succeeded == 1 and j,
        timeout=60,
        message="Job succeeded",
    )
    assert any(c.type == "Complete" and c.status == "True" for c in job.status.conditions)


def test_garbage_collector_and_namespace_controller_run(kube_api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner"))
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name="child",
                owner_references=[
                    client.V1OwnerReference(
                        api_version="v1", kind="ConfigMap", name="owner", uid=owner.metadata.uid
                    )
                ],
            )
        ),
    )
    core.delete_namespaced_config_map("owner", namespace)

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(child_gone, timeout=30, message="owned ConfigMap garbage-collected")

    doomed = f"{namespace}-x"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=doomed)))
    # The namespace controller deletes pods with their own grace period, which kwok honours.
    core.create_namespaced_pod(doomed, _pod("inside", grace=1))
    _running(core, doomed, "inside")
    core.delete_namespace(doomed)

    def namespace_gone() -> bool:
        try:
            core.read_namespace(doomed)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(namespace_gone, timeout=60, message=f"namespace {doomed} deleted by the namespace controller")
