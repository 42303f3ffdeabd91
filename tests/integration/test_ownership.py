"""Ownership by identity: a pod is a job's worker only in the job's namespace, under the worker's name, with a
controller ownerReference to the job's uid. Forged pods are never taken for workers and never deleted."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from auditkit import audit_events, pod_requests
from kubernetes import client
from kubernetes.client.rest import ApiException
from operatorkit import GROUP, VERSION, Jobs, condition, integrity_spec

from helpers import wait_for

KIND = "IntegrityJob"
FORGED_REPORT = {
    "status": "SUCCEEDED",
    "log_message": "forged",
    "data_integrity_results": [
        {
            "model_name": "forged",
            "is_healthy": True,
            "error_message": "",
            "sampling_rate": 1.0,
            "total_rows_compared": 1,
            "total_rows_stale": 0,
            "total_rows_pending": 0,
            "total_rows_missing": 0,
            "total_rows_incorrect": 0,
            "total_rows_orphaned": 0,
        }
    ],
}


@pytest.fixture
def other_namespace(kube_api: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(kube_api)
    name = f"t-forger-{secrets.token_hex(3)}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def forged_pod(name: str, job: dict[str, Any], owner: bool) -> dict[str, Any]:
    """A pod with every label the operator puts on a worker; with `owner`, a controller ref to the job."""
    meta: dict[str, Any] = {
        "name": name,
        "labels": {
            "app.kubernetes.io/managed-by": "datajobs-operator",
            "datajobs.io/kind": KIND,
            "datajobs.io/job": job["metadata"]["name"],
            "datajobs.io/job-uid": job["metadata"]["uid"],
        },
    }
    if owner:
        meta["ownerReferences"] = [
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": KIND,
                "name": job["metadata"]["name"],
                "uid": job["metadata"]["uid"],
                "controller": True,
            }
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"containers": [{"name": "worker", "image": "example.invalid/forger:1"}]},
    }


def finish(core: client.CoreV1Api, namespace: str, name: str, report: dict[str, Any]) -> None:
    """Play the kubelet: the pod's worker container ended with exit 0 and this report."""
    other = Jobs.__new__(Jobs)
    other.core, other.ns = core, namespace
    other.finish_pod(name.removesuffix("-worker"), 0, report)


def assert_untouched(core: client.CoreV1Api, namespace: str, name: str, uid: str) -> None:
    pod = core.read_namespaced_pod(name, namespace)
    assert pod.metadata.uid == uid
    assert pod.metadata.deletion_timestamp is None, f"{namespace}/{name} was deleted"
    assert "datajobs.io/cancel-mode" not in (pod.metadata.annotations or {}), (
        f"{namespace}/{name} was touched"
    )


@pytest.mark.parametrize("scope", ["namespace", "cluster-wide"])
def test_forged_pods_in_another_namespace_or_under_another_name_are_never_workers_nor_deleted(
    scope: str, cluster: Any, run_operator: Any, jobs: Jobs, namespace: str, other_namespace: str
) -> None:
    # cluster-wide the operator sees the pod in the other namespace too: only its identity check is left
    run_operator(cluster_wide=scope == "cluster-wide")
    core = jobs.core
    job = jobs.create(KIND, "victim", integrity_spec())
    jobs.wait_status(KIND, "victim", "RUNNING")
    real = jobs.wait_pod_running("victim")
    # right labels and owner uid, other namespace (same name); right labels and owner, same namespace,
    # other name. Both end "Succeeded" with a report before the real worker does.
    elsewhere = core.create_namespaced_pod(other_namespace, forged_pod("victim-worker", job, owner=False))
    beside = core.create_namespaced_pod(namespace, forged_pod("victim-forged-worker", job, owner=True))
    for ns, pod in ((other_namespace, elsewhere), (namespace, beside)):
        wait_for(
            lambda ns=ns, pod=pod: core.read_namespaced_pod(pod.metadata.name, ns).status.phase == "Running",
            message=f"forged pod {ns}/{pod.metadata.name} Running",
        )
        finish(core, ns, pod.metadata.name, FORGED_REPORT)
    # the operator reconciles on their events: the job must stay RUNNING on its real worker
    marker = jobs.cancel(KIND, "victim", expectedStatus="QUEUED")  # a rejected cancel: a reconcile we can see
    verdict = jobs.wait_cancel_evaluated(KIND, "victim")
    assert marker["metadata"]["generation"] == verdict["observedGeneration"]
    assert verdict["status"] == "RUNNING" and verdict["data_integrity_results"] == []
    assert condition(verdict, "WorkerPod")["status"] == "True"

    # an accepted cancel deletes the real worker (by uid) and nothing else
    jobs.cancel(KIND, "victim", expectedStatus="RUNNING", graceful=False)
    final = jobs.wait_status(KIND, "victim", "CANCELLED", timeout=60)
    assert final["data_integrity_results"] == [] and final["log_message"] != "forged"
    with pytest.raises(ApiException) as gone:
        core.read_namespaced_pod(real.metadata.name, namespace)
    assert gone.value.status == 404
    assert_untouched(core, other_namespace, "victim-worker", elsewhere.metadata.uid)
    assert_untouched(core, namespace, "victim-forged-worker", beside.metadata.uid)
    # and from the server's side: no delete or patch of either forged pod, by anyone
    events = audit_events(cluster)
    for ns, name in ((other_namespace, "victim-worker"), (namespace, "victim-forged-worker")):
        assert pod_requests(events, {"delete", "patch"}, ns, name) == [], f"{ns}/{name} was written to"
    assert pod_requests(events, {"delete"}, namespace, "victim-worker")  # the real worker's stop was seen


def test_a_pod_squatting_the_workers_name_is_reported_never_adopted_nor_deleted(
    run_operator: Any, jobs: Jobs, namespace: str
) -> None:
    run_operator()
    core = jobs.core
    # the job's uid is not known before it exists: the squatter carries the labels but no ownerReference
    placeholder = {"metadata": {"name": "squatted", "uid": "0"}}
    squatter = core.create_namespaced_pod(namespace, forged_pod("squatted-worker", placeholder, owner=False))
    jobs.create(KIND, "squatted", integrity_spec())
    status = wait_for(
        lambda: (
            (c := condition(s := jobs.status(KIND, "squatted"), "WorkerPod"))
            and c["reason"] == "NameTaken"
            and s
        ),
        message="the WorkerPod condition reports the taken name",
    )
    assert status["status"] == "RUNNING"
    message = condition(status, "WorkerPod")["message"]
    assert "squatted-worker" in message and "not this job's worker" in message
    wait_for(
        lambda: any(
            e.reason == "WorkerPodNameTaken" and e.type == "Warning" for e in jobs.events("squatted")
        ),
        message="a Warning Event WorkerPodNameTaken on the job",
    )
    # its report is not the job's, even when it "finishes"
    wait_for(lambda: core.read_namespaced_pod("squatted-worker", namespace).status.phase == "Running")
    finish(core, namespace, "squatted-worker", FORGED_REPORT)
    jobs.cancel(KIND, "squatted", expectedStatus="QUEUED")
    verdict = jobs.wait_cancel_evaluated(KIND, "squatted")
    assert verdict["status"] == "RUNNING" and verdict["data_integrity_results"] == []
    # a cancel ends the job without touching the squatter
    jobs.cancel(KIND, "squatted", expectedStatus="RUNNING")
    final = jobs.wait_status(KIND, "squatted", "CANCELLED", timeout=30)
    assert final["data_integrity_results"] == []
    assert_untouched(core, namespace, "squatted-worker", squatter.metadata.uid)
