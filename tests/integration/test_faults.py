"""Faults of the control plane itself: kube-apiserver and etcd SIGKILLed and restarted mid-burst, objects
deleted while the operator's watches are down, the adapter while the API server is away. These tests run
on a control plane of their own (faultkit.fault_cluster), which they crash."""

from __future__ import annotations

import os
import re
import secrets
import signal
from pathlib import Path

import pytest
from faultkit import (
    FaultCluster,
    Recorder,
    ToughKubelet,
    all_final,
    assert_correct_final_state,
    create_burst,
    tolerant,
)
from kubernetes import client
from operatorkit import SPECS, Jobs, OperatorProcess

from helpers import wait_for

JOBS = [("IntegrityJob", f"ij-{i}") for i in range(10)] + [
    ("MaskingExecution", f"mex-{i}") for i in range(10)
]
CANCELLED_AT_SUBMISSION = frozenset(name for _, name in JOBS[::4])
HELD = ("ij-1", "mex-1")  # the kubelet keeps them running: one is cancelled before the crash, one after


def metric(operator: OperatorProcess, name: str) -> float:
    """The sum of a metric's samples (0 when absent or the operator cannot answer)."""
    text = tolerant(operator.metrics) or ""
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def start_operator(fc: FaultCluster, namespace: str, tmp_path: Path, **kw: object) -> OperatorProcess:
    return OperatorProcess(fc.kubeconfig, namespace, tmp_path / "operator.log", **kw).start()  # type: ignore[arg-type]


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_sigkill_of_the_control_plane_mid_burst_leaves_every_job_correct(
    component: str, fault_cluster: FaultCluster, tmp_path: Path
) -> None:
    ns = fault_cluster.namespace(f"f-{component}-{secrets.token_hex(3)}")
    jobs = Jobs(fault_cluster.api, ns)
    operator = start_operator(fault_cluster, ns, tmp_path, max_running=4)
    cancelled = set(CANCELLED_AT_SUBMISSION) | set(HELD)
    try:
        with (
            Recorder(fault_cluster.api, ns) as recorder,
            ToughKubelet(jobs, keep_running=set(HELD)) as kubelet,
        ):
            create_burst(jobs, JOBS)
            for kind, name in JOBS:
                if name in CANCELLED_AT_SUBMISSION:
                    jobs.cancel(kind, name)
            jobs.wait_pod_running(HELD[0], timeout=60)
            wait_for(lambda: len(kubelet.finished) >= 2, timeout=60, message="dispatch under way")
            jobs.cancel("IntegrityJob", HELD[0])  # its cancel is in flight when the crash comes
            relists = metric(operator, "datajobs_relists_total")

            def while_down() -> None:  # until the operator has met the outage (or 3 s)
                failed = metric(operator, "datajobs_api_retries_total")
                try:
                    wait_for(lambda: metric(operator, "datajobs_api_retries_total") > failed, timeout=3)
                except AssertionError:
                    pass  # idle at that moment: the restart is the fault then

            fault_cluster.restart(component, while_down)
            wait_for(lambda: tolerant(jobs.cancel, "MaskingExecution", HELD[1]), timeout=60, message="cancel")
            items = wait_for(lambda: all_final(jobs, JOBS), timeout=150, interval=0.5, message="jobs final")
            # the operator noticed: it listed again (a watch relist or its session's reconnect)
            wait_for(
                lambda: metric(operator, "datajobs_relists_total") > relists, timeout=30, message="relist"
            )
        assert operator.exited() is None, operator.log_tail()
        assert_correct_final_state(jobs, items, cancelled, recorder)
        assert recorder.max_running["IntegrityJob"] <= 4 and recorder.max_running["MaskingExecution"] <= 4
    finally:
        operator.stop()


def test_jobs_and_pods_deleted_while_the_watches_are_down_are_dropped(
    fault_cluster: FaultCluster, tmp_path: Path
) -> None:
    ns = fault_cluster.namespace(f"f-gap-{secrets.token_hex(3)}")
    jobs = Jobs(fault_cluster.api, ns)
    core = client.CoreV1Api(fault_cluster.api)
    operator = start_operator(fault_cluster, ns, tmp_path, max_running=2)
    try:
        for name in ("gap-a", "gap-b", "gap-c"):
            jobs.create("IntegrityJob", name, SPECS["IntegrityJob"]())
            if name != "gap-c":
                jobs.wait_pod_running(name, timeout=60)
        assert jobs.status("IntegrityJob", "gap-c").get("status") == "QUEUED"  # both slots are taken
        relists = metric(operator, "datajobs_relists_total")
        assert operator.popen is not None
        os.killpg(operator.popen.pid, signal.SIGSTOP)  # its watches see nothing from here on
        try:
            jobs.custom.delete_namespaced_custom_object(
                "datajobs.io", "v1alpha1", ns, "integrityjobs", "gap-a", propagation_policy="Background"
            )
            core.delete_namespaced_pod("gap-b-worker", ns, grace_period_seconds=0)
            wait_for(lambda: jobs.pod("gap-b") is None, timeout=30, message="gap-b's pod gone")
            # a fresh API server's watch cache starts after these deletions: the old watches cannot resume
            fault_cluster.restart("kube-apiserver")
        finally:
            os.killpg(operator.popen.pid, signal.SIGCONT)
        # the slot of the deleted job is free again; the job whose pod vanished is not left RUNNING
        jobs.wait_status("IntegrityJob", "gap-c", "RUNNING", timeout=60)
        failed = jobs.wait_status("IntegrityJob", "gap-b", "FAILED", timeout=60)
        assert "disappeared" in failed["log_message"], failed
        assert metric(operator, "datajobs_relists_total") > relists
        log = operator.log_path.read_text()
        assert f"IntegrityJob {ns}/gap-a was deleted while unwatched" in log, operator.log_tail()
        assert f"worker pod {ns}/gap-b-worker was deleted while unwatched" in log, operator.log_tail()
    finally:
        operator.stop()
