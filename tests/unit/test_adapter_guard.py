"""The adapter's cancel decision (guards before the patch), table-driven."""

from __future__ import annotations

from typing import Any

import pytest

from datajobs.adapter.guard import CancelParams, InProgress, Patch, Reject, RejectReason, decide, now_rfc3339

NOW = "2026-01-02T03:04:05.123456Z"


def job(
    status: str,
    *,
    requested: dict[str, Any] | None = None,
    generation: int = 1,
    conditions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"jobId": 7}
    if requested is not None:
        spec["cancelRequested"] = requested
    return {
        "metadata": {"name": "j", "namespace": "ns", "generation": generation, "resourceVersion": "42"},
        "spec": spec,
        "status": {"executionId": 1, "jobId": 7, "status": status, "conditions": conditions or []},
    }


def cond(type_: str, status: str, generation: int) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "observedGeneration": generation,
        "reason": "R",
        "message": "m",
        "lastTransitionTime": NOW,
    }


Q, R = "QUEUED", "RUNNING"
PENDING_Q = {"expectedStatus": Q, "graceful": False, "requestedAt": "t"}
PENDING_NONE = {"graceful": True, "requestedAt": "t"}


@pytest.mark.parametrize(
    ("obj", "params", "expected"),
    [
        # finished jobs are rejected whatever was asked
        (job("SUCCEEDED"), CancelParams(), RejectReason.ALREADY_FINISHED),
        (job("WARNING"), CancelParams(Q), RejectReason.ALREADY_FINISHED),
        (job("FAILED"), CancelParams(R, True), RejectReason.ALREADY_FINISHED),
        (job("CANCELLED", requested=PENDING_Q), CancelParams(), RejectReason.ALREADY_FINISHED),
        # expectedStatus is an exact guard
        (job(R), CancelParams(Q), RejectReason.STATUS_MISMATCH),
        (job(Q), CancelParams(R), RejectReason.STATUS_MISMATCH),
        (job(R, requested=PENDING_Q), CancelParams(Q), RejectReason.STATUS_MISMATCH),
        # no request yet: patch
        (job(Q), CancelParams(), Patch),
        (job(Q), CancelParams(Q), Patch),
        (job(R), CancelParams(R, True), Patch),
        # the same request is pending (not yet evaluated): no second patch
        (job(Q, requested=PENDING_Q), CancelParams(Q), InProgress),
        (job(R, requested=PENDING_NONE), CancelParams(None, True), InProgress),
        # a different request while one is pending replaces it
        (job(Q, requested=PENDING_Q), CancelParams(None), Patch),
        (job(R, requested=PENDING_NONE), CancelParams(None, False), Patch),
        # accepted for this generation: in progress, whatever the new request's options
        (
            job(R, requested=PENDING_NONE, generation=3, conditions=[cond("CancelRequest", "True", 3)]),
            CancelParams(None, False),
            InProgress,
        ),
        (
            job(R, requested=PENDING_NONE, generation=3, conditions=[cond("CancelRequest", "True", 3)]),
            CancelParams(R),
            InProgress,
        ),
        # the worker is terminating
        (
            job(
                R,
                requested=PENDING_NONE,
                generation=3,
                conditions=[cond("CancelRequest", "True", 2), cond("Cancelling", "True", 2)],
            ),
            CancelParams(None, False),
            InProgress,
        ),
        # the operator rejected this generation's request: a new request is a new patch
        (
            job(R, requested=PENDING_Q, generation=2, conditions=[cond("CancelRequest", "False", 2)]),
            CancelParams(None),
            Patch,
        ),
        (
            job(
                R,
                requested={"expectedStatus": R, "graceful": False},
                generation=2,
                conditions=[cond("CancelRequest", "False", 2)],
            ),
            CancelParams(R),
            Patch,
        ),
        # a verdict about an older generation does not count
        (
            job(R, requested=PENDING_NONE, generation=4, conditions=[cond("CancelRequest", "True", 3)]),
            CancelParams(None, False),
            Patch,
        ),
    ],
)
def test_decide(obj: dict[str, Any], params: CancelParams, expected: object) -> None:
    decision = decide(obj, params, NOW, "execution 1")
    if isinstance(expected, RejectReason):
        assert isinstance(decision, Reject)
        assert decision.reason is expected
        assert decision.actual_status == obj["status"]["status"]
        assert obj["status"]["status"] in decision.message
    else:
        assert isinstance(decision, expected)  # type: ignore[arg-type]


def test_mismatch_message_names_expected_and_actual() -> None:
    decision = decide(job(R), CancelParams(Q), NOW, "execution 1")
    assert isinstance(decision, Reject)
    assert (
        decision.message
        == "execution 1 was not cancelled: expected status QUEUED but the actual status is RUNNING"
    )


def test_finished_message_names_status() -> None:
    decision = decide(job("SUCCEEDED"), CancelParams(), NOW, "data integrity job x")
    assert isinstance(decision, Reject)
    assert "already SUCCEEDED" in decision.message


def test_patch_body_is_preconditioned_and_overwrites_every_field() -> None:
    decision = decide(job(Q, requested=PENDING_Q), CancelParams(None, True), NOW, "execution 1")
    assert isinstance(decision, Patch)
    assert decision.body == {
        "metadata": {"resourceVersion": "42"},
        # expectedStatus is an explicit null so that the merge patch removes the pending QUEUED guard
        "spec": {"cancelRequested": {"expectedStatus": None, "graceful": True, "requestedAt": NOW}},
    }


def test_requested_at_is_rfc3339_with_microseconds() -> None:
    stamp = now_rfc3339()
    assert len(stamp) == len("2026-01-02T03:04:05.123456Z")
    assert stamp.endswith("Z") and stamp[10] == "T" and stamp[19] == "."
