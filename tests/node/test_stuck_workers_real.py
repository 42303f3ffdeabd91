"""Stuck workers on the real node: the kubelet's own waiting reasons (a missing Secret, an image that cannot
be pulled) reach the job's WorkerPod condition, and the start deadline ends the job FAILED with its pod
deleted (the kwok-level twins, with a test playing the kubelet, are in tests/integration)."""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

from typing import Any

from operatorkit import Jobs, condition, jobs, run_operator  # noqa: F401 (fixtures)
from workerkit import node_operator  # noqa: F401 (fixture)

from helpers import wait_for

KIND = "IntegrityJob"
DEADLINE = 60


def reason_seen(jobs: Jobs, name: str, reasons: tuple[str, ...]) -> dict[str, Any] | None:
    worker = condition(jobs.status(KIND, name), "WorkerPod") or {}
    return worker if worker.get("reason") in reasons else None


def assert_failed_and_removed(jobs: Jobs, name: str, why: str) -> None:
    status = jobs.wait_status(KIND, name, "FAILED", timeout=DEADLINE + 60)
    worker = condition(status, "WorkerPod")
    assert worker["reason"] == "StartDeadlineExceeded" and why in worker["message"], worker
    assert why in status["log_message"]
    wait_for(lambda: jobs.pod(name) is None, timeout=60, message=f"{name}'s pod deleted by the kubelet")


def test_a_misspelt_secret_and_an_unpullable_image_show_the_kubelets_reasons_then_fail_at_the_deadline(
    node_operator: Any, jobs: Jobs, real_node: Any
) -> None:
    """Both stuck at once (each waits out the same deadline): the reason, then FAILED and the pod gone."""
    misspelt = {
        "destinationId": "dest-1",
        "modelIds": ["orders"],
        "connectionSecretName": "warehuose",  # the Secret is called warehouse
        "startDeadlineSeconds": DEADLINE,
    }
    image = "registry.invalid/datajobs/no-such-worker:1"
    template = {
        "spec": {
            "containers": [{"name": "worker", "image": image, "imagePullPolicy": "Always"}],
            **real_node.placement,
        }
    }
    unpullable = {
        "destinationId": "dest-1",
        "modelIds": ["orders"],
        "template": template,
        "startDeadlineSeconds": DEADLINE,
    }
    jobs.create(KIND, "misspelt", misspelt)
    jobs.create(KIND, "unpullable", unpullable)
    worker = wait_for(
        lambda: reason_seen(jobs, "misspelt", ("CreateContainerConfigError",)),
        timeout=DEADLINE,
        message="WorkerPod condition CreateContainerConfigError from the kubelet",
    )
    assert 'secret "warehuose" not found' in worker["message"], worker
    assert jobs.status(KIND, "misspelt")["status"] == "RUNNING"
    worker = wait_for(
        lambda: reason_seen(jobs, "unpullable", ("ErrImagePull", "ImagePullBackOff")),
        timeout=DEADLINE,
        message="WorkerPod condition ErrImagePull/ImagePullBackOff from the kubelet",
    )
    assert image in worker["message"], worker
    assert_failed_and_removed(jobs, "misspelt", 'secret "warehuose" not found')
    assert_failed_and_removed(jobs, "unpullable", image)
