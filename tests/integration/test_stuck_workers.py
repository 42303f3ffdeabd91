"""Workers that cannot start are visible and bounded: the WorkerPod condition says why (the container's
waiting reason, the scheduler's verdict, the API server's refusal), the job ends FAILED at its start
deadline with the pod removed, and the slot goes to the next job. A refused create backs off.

Where a kubelet matters (ImagePullBackOff, a missing Secret) the worker pod is bound to a node no kubelet
serves and the test writes the pod's status as a kubelet would; the scheduler's Unschedulable and the
API server's 403 (a ResourceQuota) are the real components' own."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from auditkit import audit_events, pod_requests, received
from kubernetes import client
from operatorkit import Jobs, condition, integrity_spec, worker_template

from helpers import wait_for

KIND = "IntegrityJob"
DEADLINE = 8  # spec.startDeadlineSeconds of the stuck jobs
NO_KUBELET = "node-without-a-kubelet"


def stuck_template(case: str) -> dict[str, Any]:
    template = worker_template()
    if case == "Unschedulable":
        template["spec"]["nodeSelector"] = {"datajobs.io/no-such-node": "true"}
    else:
        template["spec"]["nodeName"] = NO_KUBELET  # bound, but no kubelet will ever run it
    return template


def play_kubelet_waiting(core: client.CoreV1Api, namespace: str, pod: str, reason: str, message: str) -> None:
    """What a kubelet writes for a container it cannot start."""
    status = {
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "worker",
                    "image": "example.invalid/worker:1",
                    "imageID": "",
                    "ready": False,
                    "restartCount": 0,
                    "started": False,
                    "state": {"waiting": {"reason": reason, "message": message}},
                }
            ],
        }
    }
    core.patch_namespaced_pod_status(pod, namespace, status)


def worker_condition(jobs: Jobs, name: str) -> dict[str, Any]:
    return condition(jobs.status(KIND, name), "WorkerPod") or {}


def assert_failed_at_the_deadline(jobs: Jobs, name: str, why: str) -> dict[str, Any]:
    status = jobs.wait_status(KIND, name, "FAILED", timeout=DEADLINE + 30)
    worker = condition(status, "WorkerPod")
    assert worker["reason"] == "StartDeadlineExceeded", worker
    assert f"did not start within {DEADLINE} s" in worker["message"] and why in worker["message"], worker
    assert why in status["log_message"]
    started = datetime.fromisoformat(status["started_at"].replace("Z", "+00:00"))
    ended = datetime.fromisoformat(status["ended_at"].replace("Z", "+00:00"))
    assert DEADLINE <= (ended - started).total_seconds() < DEADLINE + 20
    return status


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("ImagePullBackOff", 'Back-off pulling image "example.invalid/worker:1"'),
        ("CreateContainerConfigError", 'secret "misspelt-connection-secret" not found'),
        ("Unschedulable", "didn't match Pod's node affinity/selector"),
    ],
)
def test_a_stuck_worker_is_visible_then_failed_at_its_deadline_and_its_slot_freed(
    case: str, message: str, run_operator: Any, jobs: Jobs, namespace: str
) -> None:
    run_operator(max_running=1)
    jobs.create(KIND, "stuck", integrity_spec(template=stuck_template(case), startDeadlineSeconds=DEADLINE))
    jobs.wait_status(KIND, "stuck", "RUNNING")
    jobs.create(KIND, "next", integrity_spec())  # waits for the only slot
    pod = wait_for(lambda: jobs.pod("stuck"), message="the stuck job's pod")
    if case != "Unschedulable":
        play_kubelet_waiting(jobs.core, namespace, pod.metadata.name, case, message)

    worker = wait_for(
        lambda: (c := worker_condition(jobs, "stuck")).get("reason") == case and c,
        timeout=DEADLINE,
        message=f"WorkerPod condition with reason {case}",
    )
    assert message in worker["message"], worker
    # once the operator has decided about the next job (its first status write may come after the
    # stuck one's condition on a busy machine): queued, not given the stuck worker's slot
    assert jobs.wait_status(KIND, "next", "QUEUED", "RUNNING")["status"] == "QUEUED"

    assert_failed_at_the_deadline(jobs, "stuck", message)
    wait_for(
        lambda: (p := jobs.pod("stuck")) is None or p.metadata.deletion_timestamp is not None,
        message="the stuck worker pod deleted",
    )
    assert "Failed" in jobs.event_reasons("stuck")
    jobs.wait_status(KIND, "next", "RUNNING", timeout=30)  # the slot went to the next job


def pod_creates(cluster: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    return pod_requests(audit_events(cluster), {"create"}, namespace, name)


def test_a_refused_create_is_shown_retried_with_backoff_and_failed_at_the_deadline(
    cluster: Any, run_operator: Any, jobs: Jobs, namespace: str
) -> None:
    deadline = 30
    jobs.core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    wait_for(  # until then the quota admission makes a create wait for the quota's first usage count
        lambda: (jobs.core.read_namespaced_resource_quota("no-pods", namespace).status.hard or {}).get(
            "pods"
        ),
        message="the quota initialised by the controller manager",
    )
    run_operator(max_running=1)
    jobs.create(KIND, "refused", integrity_spec(startDeadlineSeconds=deadline))
    worker = wait_for(
        lambda: (c := worker_condition(jobs, "refused")).get("reason") == "CreateRefused" and c,
        message="WorkerPod condition CreateRefused",
    )
    assert "exceeded quota" in worker["message"], worker
    jobs.create(KIND, "next", integrity_spec())

    status = jobs.wait_status(KIND, "refused", "FAILED", timeout=deadline + 30)
    assert "exceeded quota" in condition(status, "WorkerPod")["message"]
    creates = pod_creates(cluster, namespace, "refused-worker")
    assert creates and all(e["responseStatus"]["code"] == 403 for e in creates), creates
    times = [received(e) for e in creates]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    # each retry waits 2, 4, 8 … s after the refusal before it (a fixed 5 s would make 6 in 30 s; 1 s, 30)
    assert len(gaps) >= 3, gaps
    assert all(gap >= 2 ** (i + 1) * 0.95 for i, gap in enumerate(gaps)), gaps
    assert len(creates) <= 6, gaps

    jobs.core.delete_namespaced_resource_quota("no-pods", namespace)
    jobs.wait_status(KIND, "next", "RUNNING", timeout=60)  # its slot was freed by the FAILED job
    assert jobs.status(KIND, "refused")["status"] == "FAILED"


def missing_account(jobs: Jobs, template: dict[str, Any]) -> str:
    template["spec"]["serviceAccountName"] = "no-such-account"
    return 'serviceaccount "no-such-account" not found'


def pod_security_restricted(jobs: Jobs, template: dict[str, Any]) -> str:
    jobs.core.patch_namespace(
        jobs.ns, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    )
    return 'violates PodSecurity "restricted:latest"'


@pytest.mark.parametrize("refusal", [missing_account, pod_security_restricted], ids=lambda f: f.__name__)
def test_a_create_refused_by_admission_is_visible_retried_and_the_job_can_be_cancelled(
    refusal: Any, cluster: Any, run_operator: Any, jobs: Jobs, namespace: str
) -> None:
    """A missing ServiceAccount or PodSecurity refuses the pod (403): CreateRefused says why, the create
    is retried (not given up on: the account may be created, the label changed), and a cancel ends it."""
    run_operator()
    template = worker_template()
    why = refusal(jobs, template)
    jobs.create(KIND, "refused", integrity_spec(template=template))
    worker = wait_for(
        lambda: (c := worker_condition(jobs, "refused")).get("reason") == "CreateRefused" and c,
        message="WorkerPod condition CreateRefused",
    )
    assert why in worker["message"], worker
    assert jobs.status(KIND, "refused")["status"] == "RUNNING"
    wait_for(
        lambda: len(pod_creates(cluster, namespace, "refused-worker")) >= 2,
        timeout=15,
        message="the refused create retried",
    )
    jobs.cancel(KIND, "refused", graceful=False)
    jobs.wait_status(KIND, "refused", "CANCELLED", timeout=15)
    creates = pod_creates(cluster, namespace, "refused-worker")
    assert all(e["responseStatus"]["code"] == 403 for e in creates), creates
    assert jobs.pod("refused") is None
