"""The lifecycle's time limits: activeDeadlineSeconds, ttlSecondsAfterFinished, stuck stops (CancelStuck)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from test_lifecycle import ENDED, KINDS, SPECS, T1, validate_vendor

from datajobs.core.actions import CreatePod, DeleteJob, DeletePod, Emit, KeepLogs, Recheck
from datajobs.core.conditions import CANCEL_STUCK, DEADLINE_EXCEEDED, FINISHED, WORKER_POD, get_condition
from datajobs.core.lifecycle import IMMEDIATE_GRACE_SECONDS, JobFacts, PodFacts, decide
from datajobs.core.limits import STUCK_MARGIN_SECONDS

POD = PodFacts("job-worker", "Running", uid="pod-uid-1", grace_seconds=3, node_name="kwok-node-0")


def at(seconds: float) -> str:
    """T1 + seconds (T1 is when the test jobs are dispatched)."""
    when = datetime(2026, 1, 1, 0, 0, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def facts(kind, status=None, pod=None, now=T1, cancel=None, generation=1, **extra):
    """Spec fields come camelCase (activeDeadlineSeconds=5), the operator's defaults snake_case."""
    spec = {**SPECS[kind], **{k: v for k, v in extra.items() if "_" not in k}}
    options = {k: v for k, v in extra.items() if "_" in k}
    if cancel is not None:
        spec["cancelRequested"] = cancel
    meta = {"name": "job", "namespace": "ns", "uid": "uid-1", "generation": generation}
    return JobFacts(kind, meta, spec, status, pod, True, now, execution_id=41, **options)


def running(kind, **extra):
    dispatched = decide(facts(kind, **extra)).status  # a slot at once: dispatched at T1
    assert dispatched["status"] == "RUNNING"
    return decide(facts(kind, status=dispatched, pod=POD, **extra)).status


def kinds_and(*values):
    return pytest.mark.parametrize(("kind", "value"), [(k, v) for k in KINDS for v in values])


# --- activeDeadlineSeconds ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_before_its_deadline_a_running_job_is_looked_at_again_at_the_deadline(kind):
    status = running(kind, activeDeadlineSeconds=5)
    decision = decide(facts(kind, status=status, pod=POD, now=at(2), activeDeadlineSeconds=5))
    assert decision.status is None
    assert decision.actions == [Recheck(3.5)]


@pytest.mark.parametrize("kind", KINDS)
def test_past_its_deadline_the_worker_is_stopped_gracefully_and_the_job_fails_only_once_it_is_gone(kind):
    status = running(kind, activeDeadlineSeconds=5)
    first = decide(facts(kind, status=status, pod=POD, now=at(5), activeDeadlineSeconds=5))
    assert first.status["status"] == "RUNNING"  # not before the pod is gone
    cond = get_condition(first.status, DEADLINE_EXCEEDED)
    assert cond["status"] == "True" and cond["reason"] == "DeadlineExceeded" and "5 s" in cond["message"]
    assert DeletePod("job-worker", "pod-uid-1", True, IMMEDIATE_GRACE_SECONDS) in first.actions
    assert any(isinstance(a, Emit) and a.reason == "DeadlineExceeded" and a.warning for a in first.actions)
    # terminating: no second delete, no end yet
    terminating = replace(POD, deleting=True)
    second = decide(facts(kind, status=first.status, pod=terminating, now=at(6), activeDeadlineSeconds=5))
    assert second.status is None
    assert not any(isinstance(a, DeletePod) for a in second.actions)
    # gone: FAILED with reason DeadlineExceeded, ended then
    third = decide(facts(kind, status=first.status, pod=None, now=at(8), activeDeadlineSeconds=5))
    assert third.status["status"] == "FAILED" and third.status[ENDED[kind]] == at(8)
    finished = get_condition(third.status, FINISHED)
    assert finished["reason"] == "DeadlineExceeded" and "deadline of 5 s" in finished["message"]
    assert get_condition(third.status, WORKER_POD)["reason"] == "Deleted"
    assert any(isinstance(a, Emit) and a.reason == "DeadlineExceeded" and a.warning for a in third.actions)
    validate_vendor(kind, third.status)


@pytest.mark.parametrize("kind", KINDS)
def test_a_worker_that_finished_in_time_is_untouched_by_a_deadline_that_passes_later(kind):
    status = running(kind, activeDeadlineSeconds=5)
    done = replace(POD, phase="Succeeded", exit_code=0, termination_message="{}")
    decision = decide(facts(kind, status=status, pod=done, now=at(9), activeDeadlineSeconds=5))
    assert decision.status["status"] != "FAILED"
    assert get_condition(decision.status, DEADLINE_EXCEEDED) is None
    assert not any(isinstance(a, DeletePod) for a in decision.actions)


@pytest.mark.parametrize("kind", KINDS)
def test_the_operators_default_deadline_applies_and_the_specs_wins(kind):
    status = running(kind)
    by_default = decide(facts(kind, status=status, pod=POD, now=at(10), active_deadline_seconds=10.0))
    assert get_condition(by_default.status, DEADLINE_EXCEEDED)["status"] == "True"
    spec_wins = decide(
        facts(
            kind, status=status, pod=POD, now=at(10), active_deadline_seconds=10.0, activeDeadlineSeconds=60
        )
    )
    assert spec_wins.status is None and spec_wins.actions == [Recheck(50.5)]
    no_deadline = decide(facts(kind, status=status, pod=POD, now=at(100000)))
    assert no_deadline.status is None and no_deadline.actions == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_during_a_deadline_stop_ends_cancelled(kind):
    status = decide(facts(kind, status=running(kind), pod=POD, now=at(5), activeDeadlineSeconds=5)).status
    cancel = {"graceful": True}
    accepted = decide(
        facts(
            kind,
            status=status,
            pod=replace(POD, deleting=True),
            now=at(6),
            cancel=cancel,
            generation=2,
            activeDeadlineSeconds=5,
        )
    )
    gone = decide(
        facts(
            kind,
            status=accepted.status,
            pod=None,
            now=at(7),
            cancel=cancel,
            generation=2,
            activeDeadlineSeconds=5,
        )
    )
    assert gone.status["status"] == "CANCELLED"


# --- ttlSecondsAfterFinished -----------------------------------------------------------------------------


def finished(kind, **extra):
    failed = replace(POD, phase="Failed", exit_code=1, termination_reason="Error")
    return decide(facts(kind, status=running(kind, **extra), pod=failed, now=at(2), **extra))


@pytest.mark.parametrize("kind", KINDS)
def test_a_finished_job_is_deleted_its_ttl_after_it_ended(kind):
    ended = finished(kind, ttlSecondsAfterFinished=3)
    assert ended.status["status"] == "FAILED"
    assert Recheck(3.5) in ended.actions and DeleteJob() not in ended.actions
    later = decide(facts(kind, status=ended.status, now=at(4), ttlSecondsAfterFinished=3))
    assert later.status is None and later.actions == [Recheck(1.5)]
    due = decide(facts(kind, status=ended.status, now=at(5), ttlSecondsAfterFinished=3))
    assert due.status is None and due.actions == [DeleteJob()]


@pytest.mark.parametrize("kind", KINDS)
def test_ttl_zero_deletes_at_once_and_without_a_ttl_a_finished_job_stays(kind):
    assert DeleteJob() in finished(kind, ttlSecondsAfterFinished=0).actions
    kept = finished(kind)
    assert not any(isinstance(a, DeleteJob | Recheck) for a in kept.actions)
    assert decide(facts(kind, status=kept.status, now=at(10**6))).actions == []
    by_default = decide(facts(kind, status=kept.status, now=at(60), ttl_seconds_after_finished=30.0))
    assert by_default.actions == [DeleteJob()]
    spec_wins = decide(
        facts(
            kind, status=kept.status, now=at(60), ttl_seconds_after_finished=30.0, ttlSecondsAfterFinished=600
        )
    )
    assert spec_wins.actions == [Recheck(542.5)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_running_or_queued_job_is_never_deleted_by_its_ttl(kind):
    status = running(kind, ttlSecondsAfterFinished=0)
    decision = decide(facts(kind, status=status, pod=POD, now=at(100), ttlSecondsAfterFinished=0))
    assert DeleteJob() not in decision.actions


# --- CancelStuck -----------------------------------------------------------------------------------------

HELD = replace(POD, deleting=True, finalizers=("example.com/hold",), deletion_grace_seconds=3)
STUCK_AT = 3 + STUCK_MARGIN_SECONDS  # graceful cancel of a pod with 3 s grace (at least the immediate 5 s)


def cancelling(kind, escalate=None, graceful=True):
    cancel = {"graceful": graceful, **({"escalateAfterSeconds": escalate} if escalate else {})}
    status = decide(facts(kind, status=running(kind), pod=POD, now=at(0), cancel=cancel, generation=2)).status
    return status, cancel


def stuck_facts(kind, status, cancel, pod, now):
    return facts(kind, status=status, pod=pod, now=now, cancel=cancel, generation=2)


@pytest.mark.parametrize("kind", KINDS)
def test_a_stop_is_not_stuck_within_its_grace_and_margin(kind):
    status, cancel = cancelling(kind)
    grace = max(3, IMMEDIATE_GRACE_SECONDS)
    decision = decide(stuck_facts(kind, status, cancel, HELD, at(grace + STUCK_MARGIN_SECONDS - 1)))
    assert decision.status is None and decision.actions == [Recheck(1.5)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_pod_held_by_a_finalizer_raises_cancel_stuck_saying_so_and_the_job_is_never_cancelled(kind):
    status, cancel = cancelling(kind)
    now = at(max(3, IMMEDIATE_GRACE_SECONDS) + STUCK_MARGIN_SECONDS)
    decision = decide(stuck_facts(kind, status, cancel, HELD, now))
    assert decision.status["status"] == "RUNNING"
    cond = get_condition(decision.status, CANCEL_STUCK)
    assert cond["status"] == "True" and cond["reason"] == "PodNotGone"
    assert "example.com/hold" in cond["message"]
    assert [a.reason for a in decision.actions if isinstance(a, Emit) and a.warning] == ["CancelStuck"]
    assert not any(isinstance(a, DeletePod) for a in decision.actions)  # no escalation chosen
    # raised once: the next look writes nothing and emits nothing
    again = decide(stuck_facts(kind, decision.status, cancel, HELD, at(100)))
    assert again.status is None and again.actions == []
    # the finalizer is removed and the pod goes: CANCELLED, CancelStuck cleared
    gone = decide(stuck_facts(kind, decision.status, cancel, None, at(101)))
    assert gone.status["status"] == "CANCELLED"
    assert get_condition(gone.status, CANCEL_STUCK)["status"] == "False"
    validate_vendor(kind, gone.status)


@pytest.mark.parametrize("kind", KINDS)
def test_a_pod_on_a_silent_node_is_stuck_naming_the_node(kind):
    status, cancel = cancelling(kind, graceful=False)
    on_node = replace(POD, deleting=True, deletion_grace_seconds=5)
    decision = decide(
        stuck_facts(kind, status, cancel, on_node, at(IMMEDIATE_GRACE_SECONDS + STUCK_MARGIN_SECONDS))
    )
    assert "node kwok-node-0" in get_condition(decision.status, CANCEL_STUCK)["message"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_chosen_escalation_deletes_again_with_grace_zero_once_and_still_waits_for_the_pod(kind):
    status, cancel = cancelling(kind, escalate=4)
    raised_at = max(3, IMMEDIATE_GRACE_SECONDS) + STUCK_MARGIN_SECONDS
    raised = decide(stuck_facts(kind, status, cancel, HELD, at(raised_at)))
    assert Recheck(4.5) in raised.actions and not any(isinstance(a, DeletePod) for a in raised.actions)
    escalated = decide(stuck_facts(kind, raised.status, cancel, HELD, at(raised_at + 4)))
    assert escalated.status["status"] == "RUNNING"
    assert get_condition(escalated.status, CANCEL_STUCK)["reason"] == "Escalated"
    assert DeletePod("job-worker", "pod-uid-1", False, 0) in escalated.actions
    assert "CancelEscalated" in [a.reason for a in escalated.actions if isinstance(a, Emit)]
    # the grace-0 deletion is under way (the finalizer still holds the pod): nothing more to send
    force_held = replace(HELD, deletion_grace_seconds=0)
    waiting = decide(stuck_facts(kind, escalated.status, cancel, force_held, at(raised_at + 20)))
    assert waiting.status is None and waiting.actions == []
    gone = decide(stuck_facts(kind, escalated.status, cancel, None, at(raised_at + 21)))
    assert gone.status["status"] == "CANCELLED"


@pytest.mark.parametrize("kind", KINDS)
def test_a_deadline_stop_that_hangs_raises_cancel_stuck_too(kind):
    status = decide(facts(kind, status=running(kind), pod=POD, now=at(5), activeDeadlineSeconds=5)).status
    decision = decide(
        facts(kind, status=status, pod=HELD, now=at(5 + 5 + STUCK_MARGIN_SECONDS), activeDeadlineSeconds=5)
    )
    assert decision.status["status"] == "RUNNING"
    assert get_condition(decision.status, CANCEL_STUCK)["status"] == "True"


# --- logs kept before the pod goes -----------------------------------------------------------------------


def keeps(decision):
    return [a for a in decision.actions if isinstance(a, KeepLogs)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("graceful", [True, False])
def test_a_cancel_keeps_the_log_before_it_deletes_the_pod(kind, graceful):
    cancel = {"graceful": graceful}
    decision = decide(facts(kind, status=running(kind), pod=POD, now=at(1), cancel=cancel, generation=2))
    assert keeps(decision) == [KeepLogs("job-worker", "pod-uid-1", "cancel")]
    kinds = [type(a) for a in decision.actions if isinstance(a, KeepLogs | DeletePod)]
    assert kinds == [KeepLogs, DeletePod]  # read first, then delete


@pytest.mark.parametrize("kind", KINDS)
def test_a_deadline_keeps_the_log_before_it_deletes_the_pod(kind):
    decision = decide(facts(kind, status=running(kind), pod=POD, now=at(5), activeDeadlineSeconds=5))
    kinds = [type(a) for a in decision.actions if isinstance(a, KeepLogs | DeletePod)]
    assert kinds == [KeepLogs, DeletePod]
    assert keeps(decision)[0].why == "deadline"


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_worker_keeps_its_log_once_and_a_succeeded_or_unstarted_one_none(kind):
    failed = finished(kind)
    assert failed.status["status"] == "FAILED"
    assert keeps(failed) == [KeepLogs("job-worker", "pod-uid-1", "failure")]
    failed_pod = replace(POD, phase="Failed", exit_code=1)
    assert keeps(decide(facts(kind, status=failed.status, pod=failed_pod, now=at(9)))) == []
    done = replace(POD, phase="Succeeded", exit_code=0, termination_message="{}")
    assert keeps(decide(facts(kind, status=running(kind), pod=done, now=at(2)))) == []
    pending = replace(POD, phase="Pending", waiting_reason="ImagePullBackOff", waiting_message="no")
    never = decide(facts(kind, status=running(kind), pod=pending, now=at(400)))
    assert never.status["status"] == "FAILED" and keeps(never) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_worker_that_failed_before_its_running_status_was_written_still_has_its_log_kept(kind):
    queued = decide(replace(facts(kind), may_dispatch=False)).status  # its RUNNING write lost (409, a crash)
    assert queued["status"] == "QUEUED"
    failed_pod = replace(POD, phase="Failed", exit_code=3, termination_reason="Error")
    adopted = decide(facts(kind, status=queued, pod=failed_pod, now=at(2)))
    assert adopted.status["status"] == "FAILED"
    assert keeps(adopted) == [KeepLogs("job-worker", "pod-uid-1", "failure")]


@pytest.mark.parametrize("kind", KINDS)
def test_an_escalation_deletes_without_keeping_the_log_again(kind):
    status, cancel = cancelling(kind, escalate=1)
    raised_at = max(3, IMMEDIATE_GRACE_SECONDS) + STUCK_MARGIN_SECONDS
    raised = decide(stuck_facts(kind, status, cancel, HELD, at(raised_at)))
    escalated = decide(stuck_facts(kind, raised.status, cancel, HELD, at(raised_at + 1)))
    assert DeletePod("job-worker", "pod-uid-1", False, 0) in escalated.actions and keeps(escalated) == []


# --- backoffLimit -----------------------------------------------------------------------------------------

CRASHED = replace(POD, phase="Failed", exit_code=2, termination_reason="Error")


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_worker_runs_again_after_a_backoff_then_fails_when_the_attempts_are_used_up(kind):
    status = running(kind, backoffLimit=2)
    first = decide(facts(kind, status=status, pod=CRASHED, now=at(1), backoffLimit=2))
    assert first.status["status"] == "RUNNING" and first.status["attempts"] == 2
    cond = get_condition(first.status, "Retrying")
    assert (
        cond["status"] == "True"
        and "attempt 1 of 3 failed" in cond["message"]
        and "exit code 2" in cond["message"]
    )
    assert KeepLogs("job-worker", "pod-uid-1", "failure") in first.actions
    assert DeletePod("job-worker", "pod-uid-1", False, IMMEDIATE_GRACE_SECONDS) in first.actions
    assert any(isinstance(a, Emit) and a.reason == "Retrying" and a.warning for a in first.actions)
    # the pod is going: nothing created while it exists
    going = decide(
        facts(kind, status=first.status, pod=replace(CRASHED, deleting=True), now=at(2), backoffLimit=2)
    )
    assert not any(isinstance(a, CreatePod) for a in going.actions)
    # gone, backoff (2 s) not over: wait; over: attempt 2 is created
    early = decide(facts(kind, status=first.status, pod=None, now=at(2), backoffLimit=2))
    assert early.status is None and early.actions == [Recheck(1.0)]
    second = decide(facts(kind, status=first.status, pod=None, now=at(3), backoffLimit=2))
    assert CreatePod() in second.actions
    assert get_condition(second.status, "Retrying")["reason"] == "AttemptStarted"
    # attempt 2 runs and fails: attempt 3 after 4 s
    observed = decide(facts(kind, status=second.status, pod=POD, now=at(4), backoffLimit=2)).status
    third = decide(facts(kind, status=observed, pod=CRASHED, now=at(5), backoffLimit=2))
    assert (
        third.status["attempts"] == 3
        and "attempt 2 of 3 failed" in get_condition(third.status, "Retrying")["message"]
    )
    assert decide(facts(kind, status=third.status, pod=None, now=at(8), backoffLimit=2)).actions == [
        Recheck(1.0)
    ]
    started = decide(facts(kind, status=third.status, pod=None, now=at(9), backoffLimit=2))
    assert CreatePod() in started.actions
    # attempt 3 fails: no attempts left, FAILED with the attempts shown
    observed = decide(facts(kind, status=started.status, pod=POD, now=at(10), backoffLimit=2)).status
    last = decide(facts(kind, status=observed, pod=CRASHED, now=at(11), backoffLimit=2))
    assert last.status["status"] == "FAILED" and last.status["attempts"] == 3
    assert not any(isinstance(a, CreatePod | DeletePod) for a in last.actions)


@pytest.mark.parametrize("kind", KINDS)
def test_without_a_backoff_limit_a_failure_is_final(kind):
    decision = decide(facts(kind, status=running(kind), pod=CRASHED, now=at(1)))
    assert decision.status["status"] == "FAILED" and "attempts" not in decision.status


@pytest.mark.parametrize("kind", KINDS)
def test_a_worker_that_reports_its_own_failure_with_exit_zero_is_not_retried(kind):
    claimed = replace(POD, phase="Succeeded", exit_code=0, termination_message='{"status": "FAILED"}')
    decision = decide(
        facts(kind, status=running(kind, backoffLimit=2), pod=claimed, now=at(1), backoffLimit=2)
    )
    assert get_condition(decision.status, "Retrying") is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_between_attempts_ends_cancelled_with_no_next_attempt(kind):
    first = decide(facts(kind, status=running(kind, backoffLimit=2), pod=CRASHED, now=at(1), backoffLimit=2))
    cancel = {"graceful": True}
    decision = decide(
        facts(kind, status=first.status, pod=None, now=at(9), cancel=cancel, generation=2, backoffLimit=2)
    )
    assert decision.status["status"] == "CANCELLED"
    assert not any(isinstance(a, CreatePod) for a in decision.actions)


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancelled_or_deadline_stopped_attempt_is_never_retried(kind):
    status = running(kind, backoffLimit=2, activeDeadlineSeconds=5)
    stopping = decide(facts(kind, status=status, pod=POD, now=at(5), backoffLimit=2, activeDeadlineSeconds=5))
    killed = replace(CRASHED, deleting=True)  # the stopped worker exits non-zero
    gone = decide(
        facts(kind, status=stopping.status, pod=killed, now=at(6), backoffLimit=2, activeDeadlineSeconds=5)
    )
    assert get_condition(gone.status or stopping.status, "Retrying") is None
    final = decide(
        facts(kind, status=stopping.status, pod=None, now=at(7), backoffLimit=2, activeDeadlineSeconds=5)
    )
    assert (
        final.status["status"] == "FAILED"
        and get_condition(final.status, FINISHED)["reason"] == "DeadlineExceeded"
    )
    cancel = {"graceful": False}
    cancelled = decide(
        facts(
            kind,
            status=running(kind, backoffLimit=2),
            pod=POD,
            now=at(1),
            cancel=cancel,
            generation=2,
            backoffLimit=2,
        )
    )
    exited = decide(
        facts(
            kind, status=cancelled.status, pod=killed, now=at(2), cancel=cancel, generation=2, backoffLimit=2
        )
    )
    assert get_condition(exited.status or cancelled.status, "Retrying") is None
    end = decide(
        facts(kind, status=cancelled.status, pod=None, now=at(3), cancel=cancel, generation=2, backoffLimit=2)
    )
    assert end.status["status"] == "CANCELLED"


@pytest.mark.parametrize("kind", KINDS)
def test_a_later_attempts_start_deadline_counts_from_its_own_start(kind):
    first = decide(facts(kind, status=running(kind, backoffLimit=1), pod=CRASHED, now=at(1), backoffLimit=1))
    second = decide(facts(kind, status=first.status, pod=None, now=at(400), backoffLimit=1))
    assert CreatePod() in second.actions
    pending = replace(POD, phase="Pending")
    waiting = decide(facts(kind, status=second.status, pod=pending, now=at(401), backoffLimit=1))
    assert (waiting.status or second.status)["status"] == "RUNNING"
