"""Logs that outlive the pod, on the real node: after a graceful cancel, a deadline and a failure, the
worker's last lines are readable with the README's one command, bounded, and deleted with the job."""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

import pytest
from kubernetes import client
from test_worker_signals import template_job
from workerkit import jobs, node_operator, run_operator  # noqa: F401 (fixtures)

from helpers import wait_for

KIND = "MaskingExecution"
LINES = 4000  # about 80 KiB: more than the 64 KiB kept
SCRIPT = (
    "import sys, time\n"
    "for i in range({lines}):\n"
    "    print(f'line {{i:06d}} of the worker log', flush=True)\n"
    "print('LAST LINE before the end', flush=True)\n"
    "{then}\n"
)
THEN = {"cancel": "time.sleep(3600)", "deadline": "time.sleep(3600)", "failure": "sys.exit(3)"}


def documented_command(kubectl, namespace: str, job: str) -> str:
    """README, "Logs that outlive the pod": the worker's kept log."""
    done = kubectl("-n", namespace, "get", "configmap", f"{job}-worker-log", "-o", "jsonpath={.data.worker}")
    return str(done.stdout)


@pytest.mark.parametrize("why", ["cancel", "deadline", "failure"])
def test_the_workers_last_lines_outlive_its_pod_bounded_and_are_deleted_with_the_job(
    why, real_node, node_operator, jobs, kube_api, namespace, kubectl
):
    core = client.CoreV1Api(kube_api)
    name = f"logged-{why}"
    spec = {"jobId": 5, "template": template_job(real_node, SCRIPT.format(lines=LINES, then=THEN[why]), 5)}
    if why == "deadline":
        spec["activeDeadlineSeconds"] = 20
    jobs.create(KIND, name, spec)
    if why != "failure":  # (the failing worker exits at once: it may never be seen Running)
        jobs.wait_pod_running(name, timeout=120)
        wait_for(
            lambda: "LAST LINE" in kubectl("-n", namespace, "logs", f"{name}-worker").stdout,
            timeout=60,
            message="the worker wrote its lines",
        )
    if why == "cancel":
        jobs.cancel(KIND, name, graceful=True)
    final = jobs.wait_status(KIND, name, "CANCELLED" if why == "cancel" else "FAILED", timeout=150)
    if why == "deadline":
        assert next(c for c in final["conditions"] if c["type"] == "Finished")["reason"] == "DeadlineExceeded"
    if why != "failure":
        assert jobs.pod(name) is None  # the pod is gone, its log with it: only the kept copy remains
    kept = documented_command(kubectl, namespace, name)
    assert kept.rstrip("\n").endswith("LAST LINE before the end"), kept[-300:]
    assert len(kept.encode()) <= 64 * 1024
    assert "line 000000 " not in kept  # the head was cut: bounded
    assert kept.split("\n", 1)[0].startswith("line ")  # from a line's start
    cm = core.read_namespaced_config_map(f"{name}-worker-log", namespace)
    assert cm.metadata.annotations["datajobs.io/kept-because"] == why
    jobs.custom.delete_namespaced_custom_object(
        "datajobs.io", "v1alpha1", namespace, "maskingexecutions", name
    )

    def deleted_with_the_job() -> bool:
        try:
            core.read_namespaced_config_map(f"{name}-worker-log", namespace)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(deleted_with_the_job, timeout=30, message="the kept log garbage-collected with its job")
