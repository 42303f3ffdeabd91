"""The lifecycle decision table: every edge and every cancel case, for both kinds."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace

import pytest

from datajobs.core.conditions import CANCEL_REQUEST, CANCELLING, FINISHED, WORKER_POD, get_condition
from datajobs.core.lifecycle import (
    IMMEDIATE_GRACE_SECONDS,
    CreatePod,
    DeletePod,
    Emit,
    JobFacts,
    PodFacts,
    Recheck,
    create_retry_seconds,
    decide,
    worker_name_taken,
)
from datajobs.core.limits import STUCK_MARGIN_SECONDS
from datajobs.core.report import encode_report
from datajobs.core.shapes import GO_ZERO_TIME
from datajobs.models import DataIntegrityJobResource, Execution, IntegrityJobStatus, MaskingExecutionStatus

T0, T1, T2 = "2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:01.000001Z", "2026-01-01T00:00:02.000001Z"
KINDS = ["IntegrityJob", "MaskingExecution"]
SPECS = {
    "IntegrityJob": {"destinationId": "dest-1", "modelIds": ["orders"], "orgSchema": "acme"},
    "MaskingExecution": {"jobId": 7, "connectorType": "DATABASE"},
}
ENDED = {"IntegrityJob": "ended_at", "MaskingExecution": "endTime"}
STARTED = {"IntegrityJob": "started_at", "MaskingExecution": "startTime"}


def facts(kind, status=None, pod=None, may_dispatch=False, cancel=None, generation=1, now=T1):
    spec = dict(SPECS[kind])
    if cancel is not None:
        spec["cancelRequested"] = cancel
    meta = {"name": "job", "namespace": "ns", "uid": "uid-1", "generation": generation}
    return JobFacts(kind, meta, spec, status, pod, may_dispatch, now, execution_id=41)


def queued(kind):
    return decide(facts(kind, now=T0)).status


def running(kind, observed=True):
    status = decide(facts(kind, status=queued(kind), may_dispatch=True)).status
    if observed:
        status = decide(facts(kind, status=status, pod=PodFacts("job-worker", "Running"))).status
    return status


def validate_vendor(kind, status):
    model = IntegrityJobStatus if kind == "IntegrityJob" else MaskingExecutionStatus
    model.model_validate(status)
    vendor = DataIntegrityJobResource if kind == "IntegrityJob" else Execution
    vendor.model_validate(
        {
            k: v
            for k, v in status.items()
            if k not in ("observedGeneration", "conditions", "cancelRequestEvaluated")
        }
    )


@pytest.mark.parametrize("kind", KINDS)
def test_new_job_is_queued_with_submit_time_and_vendor_shape(kind):
    decision = decide(facts(kind, now=T0))
    status = decision.status
    assert status["status"] == "QUEUED"
    assert status["observedGeneration"] == 1
    assert not any(isinstance(a, CreatePod) for a in decision.actions)
    if kind == "IntegrityJob":
        assert (
            status["submitted_at"] == T0 and status["id"] == "uid-1" and status["started_at"] == GO_ZERO_TIME
        )
        assert status["destination_id"] == "dest-1" and status["model_ids"] == ["orders"]
    else:
        assert status["submitTime"] == T0 and status["executionId"] == 41 and status["jobId"] == 7
    validate_vendor(kind, status)


@pytest.mark.parametrize("kind", KINDS)
def test_queued_job_waits_without_a_slot_and_nothing_is_written(kind):
    decision = decide(facts(kind, status=queued(kind), may_dispatch=False))
    assert decision.status is None and decision.actions == []


@pytest.mark.parametrize("kind", KINDS)
def test_slot_dispatches_status_first_then_pod(kind):
    decision = decide(facts(kind, status=queued(kind), may_dispatch=True))
    assert decision.status["status"] == "RUNNING"
    assert decision.status[STARTED[kind]] == T1
    assert get_condition(decision.status, WORKER_POD)["reason"] == "Creating"
    assert any(isinstance(a, CreatePod) for a in decision.actions)
    validate_vendor(kind, decision.status)


@pytest.mark.parametrize("kind", KINDS)
def test_running_pod_observed_once_then_no_write(kind):
    status = running(kind)
    assert get_condition(status, WORKER_POD)["status"] == "True"
    again = decide(facts(kind, status=status, pod=PodFacts("job-worker", "Running")))
    assert again.status is None and again.actions == []


@pytest.mark.parametrize("kind", KINDS)
def test_dispatched_but_pod_never_seen_is_created_again(kind):
    status = running(kind, observed=False)
    decision = decide(facts(kind, status=status, pod=None))
    assert decision.status is None
    assert decision.actions == [Recheck(300.5), CreatePod()]  # and a look again at the start deadline


@pytest.mark.parametrize("kind", KINDS)
def test_pod_vanishing_after_it_was_seen_fails_the_job(kind):
    decision = decide(facts(kind, status=running(kind), pod=None))
    assert decision.status["status"] == "FAILED"
    assert "disappeared" in get_condition(decision.status, FINISHED)["message"]


def test_integrity_success_takes_the_workers_results():
    result = {
        "model_name": "orders",
        "is_healthy": False,
        "error_message": "",
        "sampling_rate": 1.0,
        "total_rows_compared": 10,
        "total_rows_stale": 1,
        "total_rows_pending": 0,
        "total_rows_missing": 2,
        "total_rows_incorrect": 0,
        "total_rows_orphaned": 0,
        "mismatched_partitions": [
            {
                "source_row_count": 5,
                "destination_row_count": 3,
                "last_modified_lower_bound_epoch": 0,
                "last_modified_upper_bound_epoch": 60,
            }
        ],
    }
    msg = json.dumps({"status": "WARNING", "data_integrity_results": [result], "log_message": "1 unhealthy"})
    pod = PodFacts("job-worker", "Succeeded", exit_code=0, termination_message=msg)
    status = decide(facts("IntegrityJob", status=running("IntegrityJob"), pod=pod, now=T2)).status
    assert status["status"] == "WARNING" and status["ended_at"] == T2
    assert status["data_integrity_results"] == [result]
    assert status["log_message"] == "1 unhealthy"
    validate_vendor("IntegrityJob", status)


def test_masking_success_takes_the_counts():
    msg = json.dumps({"status": "SUCCEEDED", "rowsMasked": 100, "rowsTotal": 100})
    pod = PodFacts("job-worker", "Succeeded", exit_code=0, termination_message=msg)
    status = decide(facts("MaskingExecution", status=running("MaskingExecution"), pod=pod)).status
    assert (status["status"], status["rowsMasked"], status["rowsTotal"]) == ("SUCCEEDED", 100, 100)
    validate_vendor("MaskingExecution", status)


@pytest.mark.parametrize("kind", KINDS)
def test_pod_failure_is_failed_with_the_reason(kind):
    pod = PodFacts("job-worker", "Failed", exit_code=3, termination_reason="Error")
    status = decide(facts(kind, status=running(kind), pod=pod)).status
    assert status["status"] == "FAILED"
    assert "exit code 3" in get_condition(status, FINISHED)["message"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1, 2]",
        '{"status": "DONE"}',
        '{"data_integrity_results": [{"model_name": 1}]}',
        '{"rowsMasked": "many"}',
    ],
)
def test_malformed_termination_message_is_a_clear_failure(kind, message):
    if kind == "IntegrityJob" and message == '{"rowsMasked": "many"}':
        message = '{"log_message": 5}'
    if kind == "MaskingExecution" and "data_integrity_results" in message:
        message = '{"bytesTotal": 1.5}'
    pod = PodFacts("job-worker", "Succeeded", exit_code=0, termination_message=message)
    status = decide(facts(kind, status=running(kind), pod=pod)).status
    assert status["status"] == "FAILED"
    assert "malformed termination message" in get_condition(status, FINISHED)["message"]
    validate_vendor(kind, status)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("output", ["", "allocating\nholding 48 MiB\n"])
def test_an_oom_killed_worker_is_failed_with_a_reason_that_says_so(kind, output):
    # FallbackToLogsOnError: a worker killed before it wrote a report leaves its last log lines as message
    pod = PodFacts(
        "job-worker", "Failed", exit_code=137, termination_reason="OOMKilled", termination_message=output
    )
    status = decide(facts(kind, status=running(kind), pod=pod)).status
    assert status["status"] == "FAILED"
    message = get_condition(status, FINISHED)["message"]
    assert "exit code 137, OOMKilled: the container exceeded its memory limit" in message
    assert "malformed" not in message and ("holding 48 MiB" in message) == bool(output)
    if kind == "IntegrityJob":  # Prequel's log_message is the check's outcome, never raw worker output
        assert status["log_message"] == message.split("; its last output: ")[0]
        assert "holding 48 MiB" not in status["log_message"]
    validate_vendor(kind, status)


def test_the_last_output_of_a_crashed_worker_is_cut_to_its_end():
    output = "x" * 5000 + "Traceback: the end"
    pod = PodFacts(
        "job-worker", "Failed", exit_code=1, termination_reason="Error", termination_message=output
    )
    status = decide(facts("MaskingExecution", status=running("MaskingExecution"), pod=pod)).status
    message = get_condition(status, FINISHED)["message"]
    assert message.endswith("Traceback: the end") and len(message) < 1200


@pytest.mark.parametrize("claimed", ["SUCCEEDED", "WARNING", "FAILED"])
def test_a_masking_workers_own_message_is_the_finished_conditions(claimed):
    msg = json.dumps(
        {"status": claimed, "rowsMasked": 9, "rowsTotal": 10, "message": "1 value did not conform"}
    )
    phase, code = ("Failed", 1) if claimed == "FAILED" else ("Succeeded", 0)
    pod = PodFacts("job-worker", phase, exit_code=code, termination_message=msg)
    status = decide(facts("MaskingExecution", status=running("MaskingExecution"), pod=pod)).status
    assert status["status"] == claimed
    assert "1 value did not conform" in get_condition(status, FINISHED)["message"]


def test_progress_is_mirrored_while_running():
    pod = PodFacts("job-worker", "Running", progress='{"rowsMasked": 10, "rowsTotal": -1, "bogus": 3}')
    status = decide(facts("MaskingExecution", status=running("MaskingExecution"), pod=pod)).status
    assert status["rowsMasked"] == 10 and status["rowsTotal"] == -1 and "bogus" not in status


# --- cancellation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("expected", [None, "QUEUED"])
def test_cancel_of_queued_job_is_cancelled_at_once_without_a_pod(kind, expected):
    cancel = {"expectedStatus": expected} if expected else {}
    decision = decide(facts(kind, status=queued(kind), cancel=cancel, may_dispatch=True, generation=2))
    assert decision.status["status"] == "CANCELLED"
    assert decision.status[ENDED[kind]] == T1
    assert not any(isinstance(a, CreatePod) for a in decision.actions)
    assert get_condition(decision.status, CANCEL_REQUEST)["reason"] == "Accepted"
    validate_vendor(kind, decision.status)


@pytest.mark.parametrize("kind", KINDS)
def test_manifest_with_cancel_from_the_start_never_runs(kind):
    decision = decide(facts(kind, status=None, cancel={"graceful": True}, may_dispatch=True))
    assert decision.status["status"] == "CANCELLED"
    assert not any(isinstance(a, CreatePod) for a in decision.actions)


@pytest.mark.parametrize("kind", KINDS)
def test_expected_running_does_not_stop_a_queued_job(kind):
    decision = decide(facts(kind, status=queued(kind), cancel={"expectedStatus": "RUNNING"}, generation=2))
    cond = get_condition(decision.status, CANCEL_REQUEST)
    assert decision.status["status"] == "QUEUED"
    assert (cond["status"], cond["reason"], cond["observedGeneration"]) == (
        "False",
        "ExpectedStatusMismatch",
        2,
    )
    assert "expectedStatus is RUNNING but the job is QUEUED" in cond["message"]
    assert any(isinstance(a, Emit) and a.warning and a.reason == "CancelRejected" for a in decision.actions)
    # ...and the job goes on: it still dispatches when a slot frees
    later = decide(
        facts(
            kind,
            status=decision.status,
            cancel={"expectedStatus": "RUNNING"},
            generation=2,
            may_dispatch=True,
        )
    )
    assert later.status["status"] == "RUNNING"


@pytest.mark.parametrize("kind", KINDS)
def test_expected_queued_does_not_stop_a_running_job(kind):
    pod = PodFacts("job-worker", "Running")
    decision = decide(
        facts(kind, status=running(kind), pod=pod, cancel={"expectedStatus": "QUEUED"}, generation=2)
    )
    assert decision.status["status"] == "RUNNING"
    assert get_condition(decision.status, CANCEL_REQUEST)["reason"] == "ExpectedStatusMismatch"
    assert not any(isinstance(a, DeletePod) for a in decision.actions)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("graceful", [True, False])
def test_cancel_of_running_job_deletes_pod_and_waits_for_it(kind, graceful):
    pod = PodFacts("job-worker", "Running", uid="pod-uid-1", grace_seconds=45)
    cancel = {"expectedStatus": "RUNNING", "graceful": graceful}
    first = decide(facts(kind, status=running(kind), pod=pod, cancel=cancel, generation=2))
    assert first.status["status"] == "RUNNING"
    assert get_condition(first.status, CANCELLING)["status"] == "True"
    deletes = [a for a in first.actions if isinstance(a, DeletePod)]
    grace = 45 if graceful else IMMEDIATE_GRACE_SECONDS
    assert deletes == [DeletePod("job-worker", "pod-uid-1", graceful, grace)]  # only that pod, by its uid
    # the pod terminates: still not CANCELLED, no second delete; a look again once it would be stuck
    terminating = PodFacts("job-worker", "Running", deleting=True, grace_seconds=45)
    second = decide(facts(kind, status=first.status, pod=terminating, cancel=cancel, generation=2))
    assert second.status is None and second.actions == [Recheck(grace + STUCK_MARGIN_SECONDS + 0.5)]
    # the pod is gone: now CANCELLED
    third = decide(facts(kind, status=first.status, pod=None, cancel=cancel, generation=2, now=T2))
    assert third.status["status"] == "CANCELLED" and third.status[ENDED[kind]] == T2
    assert get_condition(third.status, CANCELLING)["status"] == "False"
    validate_vendor(kind, third.status)


LEFT = [
    {"object": 'trigger "t" on "public"."c"', "restoreSql": 'ALTER TABLE "public"."c" ENABLE TRIGGER "t"'},
    {
        "object": 'foreign key "fk" on "public"."o"',
        "restoreSql": 'ALTER TABLE "public"."o" ADD CONSTRAINT "fk"',
    },
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seen_terminated", [True, False])
@pytest.mark.parametrize("where", ["termination message", "result annotation"])
def test_a_cancelled_workers_final_report_reaches_the_status_once_its_pod_is_gone(
    kind, seen_terminated, where
):
    """What it left disabled (and how to restore it) is in the Finished condition, whether or not the
    operator saw the terminated pod before it went: the pod's last state comes with its deletion."""
    cancel = {"graceful": False}
    report = {
        "cancelled": True,
        "stopMode": "immediate",
        "rowsMasked": 1000,
        "rowsTotal": 5000,
        "message": "stopped: cancelled (immediate); 2 object(s) left disabled: see leftDisabled",
        "leftDisabled": LEFT,
        "data_integrity_results": [],
        "log_message": "stopped while checking orders (1/1)",
    }
    if kind == "IntegrityJob":
        report = {k: report[k] for k in ("cancelled", "data_integrity_results", "log_message")}
    terminated = PodFacts(
        "job-worker", "Failed", deleting=True, exit_code=143, termination_message=json.dumps(report)
    )
    if where == "result annotation":
        terminated = replace(terminated, termination_message='{"cut": true', result=encode_report(report))
    status = decide(
        facts(kind, status=running(kind), pod=PodFacts("job-worker", "Running"), cancel=cancel)
    ).status
    if seen_terminated:
        status = decide(facts(kind, status=status, pod=terminated, cancel=cancel)).status or status
        assert status["status"] == "RUNNING"
    final = decide(replace(facts(kind, status=status, pod=None, cancel=cancel, now=T2), gone_pod=terminated))
    assert final.status["status"] == "CANCELLED"
    message = get_condition(final.status, FINISHED)["message"]
    assert message.startswith("cancelled; the worker pod is gone; the worker reported: ")
    if kind == "MaskingExecution":
        assert final.status["rowsMasked"] == 1000 and final.status["rowsTotal"] == 5000
        assert "2 object(s) left disabled" in message
        for entry in LEFT:
            assert f"{entry['object']} (restore: {entry['restoreSql']})" in message
    else:
        assert "stopped while checking orders (1/1)" in message and final.status["log_message"] == message
    validate_vendor(kind, final.status)


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancelled_worker_that_left_no_report_is_cancelled_plainly(kind):
    cancel = {"graceful": True}
    status = decide(
        facts(kind, status=running(kind), pod=PodFacts("job-worker", "Running"), cancel=cancel)
    ).status
    killed = PodFacts(
        "job-worker", "Failed", deleting=True, exit_code=137, termination_message="some log line"
    )
    final = decide(replace(facts(kind, status=status, pod=None, cancel=cancel), gone_pod=killed)).status
    assert final["status"] == "CANCELLED"
    assert get_condition(final, FINISHED)["message"] == "cancelled; the worker pod is gone"


@pytest.mark.parametrize("kind", KINDS)
def test_accepted_cancel_after_restart_deletes_a_pod_not_yet_deleting(kind):
    pod = PodFacts("job-worker", "Running", uid="pod-uid-1")
    cancel = {"graceful": False}
    first = decide(facts(kind, status=running(kind), pod=pod, cancel=cancel, generation=2))
    # operator crashed before the delete reached the API server: same facts again
    again = decide(facts(kind, status=first.status, pod=pod, cancel=cancel, generation=2))
    assert again.status is None
    assert [a for a in again.actions if isinstance(a, DeletePod)] == [
        DeletePod("job-worker", "pod-uid-1", False, IMMEDIATE_GRACE_SECONDS)
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_wins_over_a_pod_that_finished_after_the_request(kind):
    pod = PodFacts("job-worker", "Succeeded", exit_code=0, termination_message='{"status": "SUCCEEDED"}')
    decision = decide(facts(kind, status=running(kind), pod=pod, cancel={"graceful": True}, generation=2))
    assert decision.status["status"] == "RUNNING"
    assert any(isinstance(a, DeletePod) for a in decision.actions)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("final", ["SUCCEEDED", "FAILED", "CANCELLED"])
def test_cancel_of_a_finished_job_is_rejected_and_terminal_never_changes(kind, final):
    status = queued(kind)
    status["status"] = final
    decision = decide(facts(kind, status=status, cancel={}, generation=2, may_dispatch=True))
    assert decision.status["status"] == final
    cond = get_condition(decision.status, CANCEL_REQUEST)
    assert (cond["status"], cond["reason"]) == ("False", "AlreadyFinished")
    assert f"already finished with status {final}" in cond["message"]
    assert not any(isinstance(a, CreatePod | DeletePod) for a in decision.actions)
    # evaluated once: the same generation again changes nothing
    again = decide(facts(kind, status=decision.status, cancel={}, generation=2, may_dispatch=True))
    assert again.status is None and again.actions == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_generation_of_cancel_is_evaluated_afresh(kind):
    pod = PodFacts("job-worker", "Running")
    rejected = decide(
        facts(kind, status=running(kind), pod=pod, cancel={"expectedStatus": "QUEUED"}, generation=2)
    )
    assert get_condition(rejected.status, CANCEL_REQUEST)["status"] == "False"
    accepted = decide(
        facts(kind, status=rejected.status, pod=pod, cancel={"expectedStatus": "RUNNING"}, generation=3)
    )
    assert get_condition(accepted.status, CANCEL_REQUEST)["status"] == "True"
    assert any(isinstance(a, DeletePod) for a in accepted.actions)


@pytest.mark.parametrize("kind", KINDS)
def test_accepted_cancel_of_cancelled_job_stays_accepted_on_later_spec_changes(kind):
    cancelled = decide(facts(kind, status=queued(kind), cancel={}, generation=2)).status
    later = decide(facts(kind, status=cancelled, cancel={}, generation=3))
    assert get_condition(later.status, CANCEL_REQUEST)["reason"] == "Accepted"
    assert later.status["status"] == "CANCELLED"


@pytest.mark.parametrize("kind", KINDS)
def test_decisions_are_idempotent(kind):
    status = running(kind)
    pod = PodFacts("job-worker", "Running")
    once = decide(facts(kind, status=status, pod=pod))
    assert once.status is None and once.actions == []


@pytest.mark.parametrize("kind", KINDS)
def test_worker_pod_condition_says_the_pod_is_gone_after_cancel(kind):
    cancelling = decide(
        facts(kind, status=running(kind), pod=PodFacts("job-worker", "Running"), cancel={}, generation=2)
    ).status
    final = decide(facts(kind, status=cancelling, pod=None, cancel={}, generation=2)).status
    assert final["status"] == "CANCELLED"
    assert get_condition(final, WORKER_POD)["reason"] == "Deleted"


@pytest.mark.parametrize("kind", KINDS)
def test_refused_worker_pod_is_visible_once_and_retried(kind):
    from datajobs.core.lifecycle import worker_refused

    status = running(kind, observed=False)
    refused = worker_refused(facts(kind, status=status), "exceeded quota: pods=10")
    cond = get_condition(refused.status, WORKER_POD)
    assert (cond["status"], cond["reason"]) == ("False", "CreateRefused") and "exceeded quota" in cond[
        "message"
    ]
    assert [a.reason for a in refused.actions] == ["WorkerPodRefused"]
    again = worker_refused(facts(kind, status=refused.status), "exceeded quota: pods=10")
    assert again.status is None and again.actions == []
    # and the next reconcile tries to create the pod again
    assert decide(facts(kind, status=refused.status, pod=None)).actions == [Recheck(300.5), CreatePod()]


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_dispatched_at_once_gets_no_event(kind):
    # neither Queued (it never waited) nor Dispatched (the status and the pod's Scheduled Event tell it)
    decision = decide(facts(kind, status=None, may_dispatch=True))
    reasons = [a.reason for a in decision.actions if isinstance(a, Emit)]
    creates = [a for a in decision.actions if isinstance(a, CreatePod)]
    assert decision.status["status"] == "RUNNING" and len(creates) == 1 and reasons == []


@pytest.mark.parametrize("kind", KINDS)
def test_an_integrity_jobs_pod_is_created_before_its_dispatch_is_written(kind):
    # the status written after the create records the pod too: one write per dispatch; a MaskingExecution's
    # executionId (in its pod's environment) must be written before the pod exists
    decision = decide(facts(kind, status=queued(kind), may_dispatch=True))
    assert [a for a in decision.actions if isinstance(a, CreatePod)] == [
        CreatePod(first=kind == "IntegrityJob")
    ]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", ["none", "queued"])
def test_a_job_not_yet_running_whose_worker_exists_was_dispatched_and_is_running(kind, status):
    # (a crash between the pod's create and the status write): no second pod, no Queued Event
    old = None if status == "none" else queued(kind)
    decision = decide(facts(kind, status=old, pod=PodFacts("job-worker", "Pending", uid="p1")))
    assert decision.status["status"] == "RUNNING" and decision.status[STARTED[kind]] == T1
    assert get_condition(decision.status, WORKER_POD)["reason"] == "Observed"
    assert not any(isinstance(a, (CreatePod, Emit)) for a in decision.actions)


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_of_such_a_job_stops_its_worker_instead_of_calling_it_never_started(kind):
    pod = PodFacts("job-worker", "Running", uid="p1")
    decision = decide(facts(kind, status=queued(kind), pod=pod, cancel={"graceful": False}))
    assert decision.status["status"] == "RUNNING"
    assert get_condition(decision.status, CANCELLING)["status"] == "True"
    assert DeletePod("job-worker", "p1", False, IMMEDIATE_GRACE_SECONDS) in decision.actions


@pytest.mark.parametrize("kind", KINDS)
def test_submit_time_is_the_first_sight_the_caller_recorded_not_the_decision_time(kind):
    status = decide(replace(facts(kind, now=T1), submitted=T0, may_dispatch=True)).status
    field = "submitted_at" if kind == "IntegrityJob" else "submitTime"
    started = "started_at" if kind == "IntegrityJob" else "startTime"
    assert status[field] == T0 and status[started] == T1


# --- workers that cannot start: visible, and bounded by the start deadline ---------------------------------

T_LATE = "2026-01-01T00:05:01.000001Z"  # 300 s after T1, when the job was dispatched


def pending(reason="", message=""):
    return PodFacts("job-worker", "Pending", uid="pod-1", waiting_reason=reason, waiting_message=message)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ImagePullBackOff", 'Back-off pulling image "example.invalid/worker:1"'),
        ("CreateContainerConfigError", 'secret "db-creds" not found'),
        ("Unschedulable", "0/3 nodes are available: 3 Insufficient cpu."),
    ],
)
def test_a_stuck_worker_shows_why_on_its_condition_then_fails_at_the_deadline(kind, reason, message):
    status = running(kind, observed=False)
    stuck = decide(facts(kind, status=status, pod=pending(reason, message), now=T2))
    worker = get_condition(stuck.status, WORKER_POD)
    assert (worker["status"], worker["reason"]) == ("True", reason)
    assert message in worker["message"] and stuck.status["status"] == "RUNNING"
    assert [a for a in stuck.actions if isinstance(a, Recheck)] == [Recheck(299.5)]
    # the same facts again: nothing to write
    assert decide(facts(kind, status=stuck.status, pod=pending(reason, message), now=T2)).status is None

    late = decide(facts(kind, status=stuck.status, pod=pending(reason, message), now=T_LATE))
    assert late.status["status"] == "FAILED"
    worker = get_condition(late.status, WORKER_POD)
    assert (worker["status"], worker["reason"]) == ("False", "StartDeadlineExceeded")
    assert "did not start within 300 s" in worker["message"] and message in worker["message"]
    assert [a for a in late.actions if isinstance(a, DeletePod)] == [
        DeletePod("job-worker", "pod-1", False, IMMEDIATE_GRACE_SECONDS)
    ]
    validate_vendor(kind, late.status)
    # the delete was lost (a crash): the failed job still removes its pod, once it sees it
    again = decide(facts(kind, status=late.status, pod=pending(reason, message), now=T_LATE))
    assert again.status is None and again.actions == [
        DeletePod("job-worker", "pod-1", False, IMMEDIATE_GRACE_SECONDS)
    ]
    deleting = replace(pending(reason, message), deleting=True)
    assert decide(facts(kind, status=late.status, pod=deleting, now=T_LATE)).actions == []


@pytest.mark.parametrize("kind", KINDS)
def test_routine_waiting_writes_nothing_and_a_running_worker_has_no_deadline(kind):
    status = running(kind, observed=False)
    creating = decide(facts(kind, status=status, pod=pending("ContainerCreating"), now=T2))
    assert get_condition(creating.status, WORKER_POD)["reason"] == "Observed"
    started = decide(facts(kind, status=creating.status, pod=PodFacts("job-worker", "Running"), now=T_LATE))
    assert started.status is None and started.actions == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_specs_start_deadline_wins_over_the_operators(kind):
    status = running(kind, observed=False)
    job = facts(kind, status=status, pod=pending("ImagePullBackOff"), now=T2)
    short = replace(job, spec={**job.spec, "startDeadlineSeconds": 1})
    assert decide(short).status["status"] == "FAILED"
    assert decide(replace(job, start_deadline_seconds=1)).status["status"] == "FAILED"
    assert decide(job).status["status"] == "RUNNING"


@pytest.mark.parametrize("kind", KINDS)
def test_a_worker_never_created_fails_at_the_deadline_with_the_last_refusal(kind):
    status = running(kind, observed=False)
    refused = worker_name_taken(facts(kind, status=status), "job-worker", None).status
    late = decide(facts(kind, status=refused, pod=None, now=T_LATE))
    assert late.status["status"] == "FAILED" and not any(isinstance(a, CreatePod) for a in late.actions)
    assert (
        "job-worker already exists and is not this job's worker"
        in get_condition(late.status, WORKER_POD)["message"]
    )


def test_refused_creates_back_off_doubling_up_to_a_cap():
    delays = [create_retry_seconds(n) for n in range(12)]
    assert delays[:4] == [2, 4, 8, 16]
    assert all(b >= a for a, b in itertools.pairwise(delays)) and max(delays) == 300


@pytest.mark.parametrize("kind", KINDS)
def test_a_taken_worker_name_is_reported_once_with_a_warning(kind):
    status = running(kind, observed=False)
    first = worker_name_taken(facts(kind, status=status), "job-worker", "other-uid")
    worker = get_condition(first.status, WORKER_POD)
    assert (worker["status"], worker["reason"]) == ("False", "NameTaken")
    assert "controlled by uid other-uid" in worker["message"]
    assert [(a.reason, a.warning) for a in first.actions] == [("WorkerPodNameTaken", True)]
    assert worker_name_taken(facts(kind, status=first.status), "job-worker", "other-uid").status is None


# --- a cancel verdict belongs to the request's content, not to the generation ----------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_rejected_cancel_is_not_reopened_by_a_new_generation_only_by_a_new_request(kind):
    cancel = {"expectedStatus": "QUEUED", "graceful": False}
    status = running(kind)
    rejected = decide(
        facts(kind, status=status, pod=PodFacts("job-worker", "Running"), cancel=cancel, generation=2)
    )
    assert get_condition(rejected.status, CANCEL_REQUEST)["reason"] == "ExpectedStatusMismatch"
    assert rejected.status["cancelRequestEvaluated"] == cancel
    # another change bumped the generation (a spec edit while it was allowed): the same request
    bumped = decide(
        facts(
            kind, status=rejected.status, pod=PodFacts("job-worker", "Running"), cancel=cancel, generation=3
        )
    )
    assert get_condition(bumped.status, CANCEL_REQUEST)["reason"] == "ExpectedStatusMismatch"
    assert not any(isinstance(a, Emit) and a.reason.startswith("Cancel") for a in bumped.actions)
    assert not any(isinstance(a, DeletePod) for a in bumped.actions)
    # a different request is judged afresh
    new = {"expectedStatus": "RUNNING", "graceful": False}
    accepted = decide(
        facts(
            kind,
            status=rejected.status,
            pod=PodFacts("job-worker", "Running", uid="p"),
            cancel=new,
            generation=4,
        )
    )
    assert get_condition(accepted.status, CANCEL_REQUEST)["reason"] == "Accepted"
    assert accepted.status["cancelRequestEvaluated"] == new


# --- the worker's full report on its result annotation; numbers range-checked; incomplete said plainly -----


def integrity_result(model: str, compared: int = 10) -> dict:
    return {
        "model_name": model,
        "is_healthy": True,
        "error_message": "",
        "sampling_rate": 1.0,
        "total_rows_compared": compared,
        "total_rows_stale": 0,
        "total_rows_pending": 0,
        "total_rows_missing": 0,
        "total_rows_incorrect": 0,
        "total_rows_orphaned": 0,
    }


def finished_integrity(models: list[str], pod: PodFacts):
    spec = {**SPECS["IntegrityJob"], "modelIds": models}
    status = running("IntegrityJob")
    status["model_ids"] = models
    job = facts("IntegrityJob", status=status, pod=pod)
    return decide(replace(job, spec=spec)).status


def test_a_thousand_results_come_through_the_result_annotation():
    models = [f"m{i}" for i in range(1000)]
    report = {
        "status": "SUCCEEDED",
        "log_message": "ok",
        "data_integrity_results": [integrity_result(m) for m in models],
    }
    annotation = encode_report(report)
    assert annotation.startswith("gzip+base64,") and len(annotation) < 64 * 1024
    short = json.dumps({"status": "SUCCEEDED", "log_message": "cut", "data_integrity_results": []})
    pod = PodFacts("job-worker", "Succeeded", exit_code=0, termination_message=short, result=annotation)
    status = finished_integrity(models, pod)
    assert status["status"] == "SUCCEEDED" and len(status["data_integrity_results"]) == 1000
    assert status["log_message"] == "ok"


def test_results_cut_to_fit_the_termination_message_are_said_plainly_and_never_succeed():
    models = [f"m{i}" for i in range(40)]
    message = json.dumps(
        {
            "status": "SUCCEEDED",
            "log_message": "40 models checked",
            "data_integrity_results": [integrity_result(m) for m in models[:14]],
            "data_integrity_resultsTruncated": 26,
        }
    )
    status = finished_integrity(
        models, PodFacts("job-worker", "Succeeded", exit_code=0, termination_message=message)
    )
    assert status["status"] == "WARNING" and len(status["data_integrity_results"]) == 14
    assert "INCOMPLETE: 26 model result(s) did not fit" in status["log_message"]
    # without the count, the models without a result are named
    quiet = json.dumps(
        {"status": "SUCCEEDED", "log_message": "", "data_integrity_results": [integrity_result("m0")]}
    )
    status = finished_integrity(
        models, PodFacts("job-worker", "Succeeded", exit_code=0, termination_message=quiet)
    )
    assert (
        status["status"] == "WARNING"
        and "39 of 40 models have no result (first: m1)" in status["log_message"]
    )


@pytest.mark.parametrize(
    ("kind", "report", "why"),
    [
        ("MaskingExecution", {"status": "SUCCEEDED", "rowsMasked": 2**63}, "rowsMasked"),
        ("MaskingExecution", {"status": "SUCCEEDED", "rowsMasked": -1}, "rowsMasked"),
        (
            "IntegrityJob",
            {"data_integrity_results": [integrity_result("m", compared=-5)]},
            "total_rows_compared",
        ),
        (
            "IntegrityJob",
            {"data_integrity_results": [{**integrity_result("m"), "sampling_rate": 7.0}]},
            "sampling_rate",
        ),
    ],
)
def test_worker_numbers_out_of_range_fail_the_job_as_malformed_before_reaching_the_status(kind, report, why):
    pod = PodFacts("job-worker", "Succeeded", exit_code=0, termination_message=json.dumps(report))
    status = decide(facts(kind, status=running(kind), pod=pod)).status
    assert status["status"] == "FAILED"
    message = get_condition(status, FINISHED)["message"]
    assert message.startswith("malformed termination message") and why in message


def test_progress_out_of_range_is_left_out():
    pod = PodFacts("job-worker", "Running", progress=json.dumps({"rowsMasked": 2**64, "rowsTotal": -1}))
    status = decide(facts("MaskingExecution", status=running("MaskingExecution"), pod=pod)).status
    assert status["rowsTotal"] == -1 and status.get("rowsMasked") in (None, 0)


def test_a_result_annotation_that_does_not_decode_fails_the_job_plainly():
    pod = PodFacts("job-worker", "Succeeded", exit_code=0, result="gzip+base64,!!!not-base64")
    status = decide(facts("IntegrityJob", status=running("IntegrityJob"), pod=pod)).status
    assert status["status"] == "FAILED" and "malformed result annotation" in status["log_message"]
