"""The cancel decision on a job as read: reject, already in progress, or the merge patch to send (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from datajobs.core.conditions import CANCEL_REQUEST, CANCELLING
from datajobs.core.lifecycle import CANCEL_EVALUATED
from datajobs.models import TERMINAL_STATUSES


@dataclass(frozen=True)
class CancelParams:
    """What the caller asked for (already validated)."""

    expected_status: str | None = None  # "QUEUED" | "RUNNING" | None
    graceful: bool = False


class RejectReason(StrEnum):
    ALREADY_FINISHED = "AlreadyFinished"
    STATUS_MISMATCH = "ExpectedStatusMismatch"


@dataclass(frozen=True)
class Reject:
    reason: RejectReason
    actual_status: str
    message: str


@dataclass(frozen=True)
class InProgress:
    """A cancel is already under way (accepted, cancelling, or the same request still pending)."""


@dataclass(frozen=True)
class Patch:
    body: dict[str, Any]


Decision = Reject | InProgress | Patch


def now_rfc3339() -> str:
    """Current UTC time, RFC 3339 with microseconds and a Z (so every request is a distinct value)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def decide(obj: dict[str, Any], params: CancelParams, requested_at: str, job_label: str) -> Decision:
    """Apply the adapter's guards to the object read; the operator re-checks them when it evaluates."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    actual = str(status.get("status") or "")
    if actual in TERMINAL_STATUSES:
        return Reject(
            RejectReason.ALREADY_FINISHED,
            actual,
            f"{job_label} is already {actual}: a finished job cannot be cancelled",
        )
    if params.expected_status is not None and params.expected_status != actual:
        return Reject(
            RejectReason.STATUS_MISMATCH,
            actual,
            f"{job_label} was not cancelled: expected status {params.expected_status} "
            f"but the actual status is {actual or 'unknown'}",
        )
    if _in_progress(spec.get("cancelRequested"), status, metadata.get("generation"), params):
        return InProgress()
    return Patch(
        {
            # The resourceVersion read is a precondition: the API server answers 409 if anything changed.
            "metadata": {"resourceVersion": metadata.get("resourceVersion")},
            "spec": {
                "cancelRequested": {
                    # Explicit null, not omission: a merge patch would otherwise keep an older value.
                    "expectedStatus": params.expected_status,
                    "graceful": params.graceful,
                    "requestedAt": requested_at,
                }
            },
        }
    )


def _in_progress(requested: Any, status: dict[str, Any], generation: Any, params: CancelParams) -> bool:
    if not isinstance(requested, dict):
        return False
    conditions = {c.get("type"): c for c in (status.get("conditions") or []) if isinstance(c, dict)}
    cancelling = conditions.get(CANCELLING) or {}
    if cancelling.get("status") == "True":
        return True
    verdict = conditions.get(CANCEL_REQUEST)
    if CANCEL_EVALUATED in status:  # the verdict names the request it judged: compare contents
        evaluated = verdict is not None and status[CANCEL_EVALUATED] == requested
    else:  # a verdict written before the operator recorded the request
        evaluated = verdict is not None and verdict.get("observedGeneration") == generation
    if evaluated:
        return bool(verdict and verdict.get("status") == "True")
    same = (
        requested.get("expectedStatus") == params.expected_status
        and bool(requested.get("graceful", False)) == params.graceful
    )
    return same
