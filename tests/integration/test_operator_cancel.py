"""Cancellation on a real control plane: queued, running (graceful or not), guards, finished jobs."""

from __future__ import annotations

import threading

import pytest
from operatorkit import ENDED, GO_ZERO_TIME, SPECS, PodRecorder, condition
from test_operator_lifecycle import assert_vendor_valid

from datajobs.core.lifecycle import IMMEDIATE_GRACE_SECONDS
from helpers import wait_for

KINDS = ["IntegrityJob", "MaskingExecution"]


def block_the_queue(kind, jobs):
    """With max_running=1, a running 'blocker' keeps every later job QUEUED."""
    jobs.create(kind, "blocker", SPECS[kind]())
    jobs.wait_pod_running("blocker")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("expected", [None, "QUEUED"])
def test_cancel_of_a_queued_job_is_immediate_and_no_pod_is_ever_created(kind, expected, run_operator, jobs):
    run_operator(max_running=1)
    block_the_queue(kind, jobs)
    jobs.create(kind, "waiting", SPECS[kind]())
    jobs.wait_status(kind, "waiting", "QUEUED")
    wait_for(lambda: "Queued" in jobs.event_reasons("waiting"), timeout=10, message="no Queued event")
    request = {"expectedStatus": expected} if expected else {}
    jobs.cancel(kind, "waiting", **request)
    final = jobs.wait_status(kind, "waiting", "CANCELLED")
    assert condition(final, "CancelRequest")["reason"] == "Accepted"
    assert final[ENDED[kind]] != GO_ZERO_TIME
    assert_vendor_valid(kind, final)
    # the slot was never this job's: finishing the blocker must not start it
    jobs.finish_pod("blocker", 0)
    jobs.wait_status(kind, "blocker", "SUCCEEDED")
    assert jobs.pod("waiting") is None


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_with_cancel_from_the_start_never_gets_a_pod(kind, run_operator, jobs):
    run_operator()
    jobs.create(kind, "born-cancelled", SPECS[kind](cancelRequested={"graceful": True}))
    final = jobs.wait_status(kind, "born-cancelled", "CANCELLED")
    assert condition(final, "CancelRequest")["status"] == "True"
    assert jobs.pod("born-cancelled") is None


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("graceful", [True, False])
def test_cancel_of_a_running_job_stops_the_pod_and_is_cancelled_only_once_it_is_gone(
    kind, graceful, run_operator, jobs
):
    run_operator()
    jobs.create(kind, "runner", SPECS[kind]())  # template grace: 3 s
    pod = jobs.wait_pod_running("runner")
    seen_cancelled_with_pod: list[str] = []
    stop = threading.Event()

    def watch_invariant() -> None:  # never CANCELLED while the pod exists
        while not stop.is_set():
            status = jobs.status(kind, "runner").get("status")
            if status == "CANCELLED" and jobs.pod("runner") is not None:
                seen_cancelled_with_pod.append("CANCELLED while the worker pod still existed")

    watcher = threading.Thread(target=watch_invariant, daemon=True)
    watcher.start()
    recorder = PodRecorder(jobs.core.api_client, jobs.ns)
    jobs.cancel(kind, "runner", expectedStatus="RUNNING", graceful=graceful)
    deleting = wait_for(
        lambda: recorder.terminating.get("runner"), timeout=15, message="pod deletion never requested"
    )
    assert deleting.metadata.uid == pod.metadata.uid
    assert deleting.metadata.annotations["datajobs.io/cancel-mode"] == (
        "graceful" if graceful else "immediate"
    )
    # a graceful stop never gets less than an immediate one
    assert deleting.metadata.deletion_grace_period_seconds == (
        max(3, IMMEDIATE_GRACE_SECONDS) if graceful else IMMEDIATE_GRACE_SECONDS
    )
    mid = jobs.status(kind, "runner")
    if mid["status"] != "CANCELLED":
        assert mid["status"] == "RUNNING"
        assert condition(mid, "Cancelling")["status"] == "True"
    final = jobs.wait_status(kind, "runner", "CANCELLED", timeout=30)
    wait_for(lambda: "runner" in recorder.deleted, timeout=10, message="no DELETED event for the pod")
    recorder.stop()
    stop.set()
    watcher.join()
    assert seen_cancelled_with_pod == []
    assert jobs.pod("runner") is None
    assert condition(final, "Cancelling")["status"] == "False"
    assert final[ENDED[kind]] != GO_ZERO_TIME
    assert_vendor_valid(kind, final)
    wait_for(
        lambda: {"CancelAccepted", "Cancelled"} <= set(jobs.event_reasons("runner")),
        timeout=10,
        message="cancel events missing",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_expected_queued_never_stops_a_running_job(kind, run_operator, jobs):
    run_operator()
    jobs.create(kind, "moved-on", SPECS[kind]())
    pod = jobs.wait_pod_running("moved-on")
    jobs.cancel(kind, "moved-on", expectedStatus="QUEUED")
    status = jobs.wait_cancel_evaluated(kind, "moved-on")
    cond = condition(status, "CancelRequest")
    assert (cond["status"], cond["reason"]) == ("False", "ExpectedStatusMismatch")
    assert "expectedStatus is QUEUED but the job is RUNNING" in cond["message"]
    assert status["status"] == "RUNNING"
    current = jobs.pod("moved-on")
    assert current.metadata.uid == pod.metadata.uid and current.metadata.deletion_timestamp is None
    wait_for(
        lambda: "CancelRejected" in jobs.event_reasons("moved-on"), timeout=10, message="no CancelRejected"
    )
    # a new request (new generation) is evaluated afresh
    jobs.cancel(kind, "moved-on", expectedStatus="RUNNING")
    jobs.wait_status(kind, "moved-on", "CANCELLED")


@pytest.mark.parametrize("kind", KINDS)
def test_expected_running_never_stops_a_queued_job(kind, run_operator, jobs):
    run_operator(max_running=1)
    block_the_queue(kind, jobs)
    jobs.create(kind, "patient", SPECS[kind]())
    jobs.wait_status(kind, "patient", "QUEUED")
    jobs.cancel(kind, "patient", expectedStatus="RUNNING")
    status = jobs.wait_cancel_evaluated(kind, "patient")
    assert condition(status, "CancelRequest")["reason"] == "ExpectedStatusMismatch"
    assert status["status"] == "QUEUED"
    jobs.finish_pod("blocker", 0)
    jobs.wait_status(kind, "patient", "RUNNING")  # the job goes on


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_of_a_finished_job_is_rejected_and_the_status_never_changes(kind, run_operator, jobs):
    operator = run_operator()
    jobs.create(kind, "done", SPECS[kind]())
    jobs.wait_pod_running("done")
    jobs.finish_pod("done", 0)
    before = jobs.wait_status(kind, "done", "SUCCEEDED")
    jobs.cancel(kind, "done")
    status = jobs.wait_cancel_evaluated(kind, "done")
    cond = condition(status, "CancelRequest")
    assert (cond["status"], cond["reason"]) == ("False", "AlreadyFinished")
    assert "already finished with status SUCCEEDED" in cond["message"]
    assert status["status"] == "SUCCEEDED" and status[ENDED[kind]] == before[ENDED[kind]]
    assert "datajobs_reconcile_errors_total{" not in operator.metrics()


def test_cancelled_job_cannot_be_uncancelled(run_operator, jobs):
    from kubernetes.client import ApiException

    run_operator()
    jobs.create("IntegrityJob", "final", SPECS["IntegrityJob"](cancelRequested={}))
    jobs.wait_status("IntegrityJob", "final", "CANCELLED")
    with pytest.raises(ApiException) as err:
        jobs.custom.patch_namespaced_custom_object(
            "datajobs.io", "v1alpha1", jobs.ns, "integrityjobs", "final", {"spec": {"cancelRequested": None}}
        )
    assert err.value.status == 422 and "cancelRequested" in err.value.body
