"""What a lifecycle decision asks the engine to do: the actions, as plain data."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CreatePod:
    """Create the worker pod (idempotent: the name is deterministic). `first`: before the decided status is
    written, which then records the pod as well (one status write per dispatch instead of two)."""

    first: bool = False


@dataclass(frozen=True)
class DeletePod:
    """Stop the worker: annotate the cancel mode, then delete with this grace period (only the pod with
    this uid: never another pod that took the name since)."""

    name: str
    uid: str
    graceful: bool
    grace_seconds: int


@dataclass(frozen=True)
class KeepLogs:
    """Copy the tail of the worker's log into the job's kept-logs ConfigMap before the pod may go."""

    pod_name: str
    pod_uid: str
    why: str  # cancel | deadline | failure


@dataclass(frozen=True)
class DeleteJob:
    """Delete the finished job (its ttlSecondsAfterFinished is over); what it owns goes with it."""


@dataclass(frozen=True)
class Emit:
    """A Kubernetes Event on the job."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Recheck:
    """Reconcile this job again after this long, whatever events come (e.g. at its start deadline)."""

    after_seconds: float


Action = CreatePod | DeletePod | DeleteJob | Emit | KeepLogs | Recheck
