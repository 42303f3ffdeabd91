"""The manifests: an IntegrityJob and a batch/v1 Job whose pods have the same shape."""

from __future__ import annotations

from typing import Any

GRACE_SECONDS = 2  # short, so a graceful cancel finishes inside the run (kwok honours the grace period)
DESTINATION = "bench-dest"
IJ_PLURAL = "integrityjobs"
# kwok's pod-complete stage would finish a Job's pod at once; this keeps it Running like a long worker.
KWOK_COMPLETE_DELAY = "pod-complete.stage.kwok.x-k8s.io/delay"


def pod_template(annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"annotations": dict(annotations or {}), "labels": {"app": "bench-worker"}},
        "spec": {
            "terminationGracePeriodSeconds": GRACE_SECONDS,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "worker",
                    "image": "example.invalid/bench-worker:1",
                    "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}},
                }
            ],
        },
    }


def integrity_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "datajobs.io/v1alpha1",
        "kind": "IntegrityJob",
        "metadata": {"name": name},
        "spec": {"destinationId": DESTINATION, "modelIds": ["orders"], "template": pod_template()},
    }


def batch_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "parallelism": 1,
            "completions": 1,
            "backoffLimit": 0,
            "template": pod_template({KWOK_COMPLETE_DELAY: "24h"}),
        },
    }


def ij_collection(namespace: str) -> str:
    return f"/apis/datajobs.io/v1alpha1/namespaces/{namespace}/{IJ_PLURAL}"


def job_collection(namespace: str) -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs"


def pod_collection(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"
