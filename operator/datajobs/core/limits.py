"""Time limits of a job, as pure rules: its run deadline, its life after it finished, a stop that hangs."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from datajobs.core.actions import Action, DeleteJob, DeletePod, Emit, Recheck
from datajobs.core.conditions import CANCEL_STUCK, DEADLINE_EXCEEDED, RETRYING, get_condition, set_condition

if TYPE_CHECKING:
    from datajobs.core.lifecycle import PodFacts

STUCK_MARGIN_SECONDS = 10
"""A stopped pod still there this long after its grace is over is stuck (a finalizer, a lost node)."""
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def seconds_between(earlier: str, later: str) -> float:
    try:
        return (_parse_time(later) - _parse_time(earlier)).total_seconds()
    except ValueError:
        return 0.0


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def limit(spec: dict[str, Any], key: str, default: float | None) -> float | None:
    """A per-job limit from the spec (0 counts), else the operator's default (None: off)."""
    value = spec.get(key)
    return float(value) if value is not None else default


def deadline_passed(
    deadline: float | None,
    started: str | None,
    pod: PodFacts | None,
    status: dict[str, Any],
    generation: int,
    now: str,
    actions: list[Action],
) -> bool:
    """A running worker past spec.activeDeadlineSeconds: mark DeadlineExceeded, ask for a graceful stop
    (True). Before it, a recheck at the deadline (False). A worker that already ended is left alone."""
    if deadline is None or pod is None or pod.phase in ("Succeeded", "Failed") or not started:
        return False
    elapsed = seconds_between(started, now)
    if elapsed < deadline:
        actions.append(Recheck(deadline - elapsed + 0.5))
        return False
    message = f"the job ran longer than its deadline of {deadline:g} s (activeDeadlineSeconds)"
    set_condition(status, DEADLINE_EXCEEDED, True, DEADLINE_EXCEEDED, message, generation, now)
    actions.append(Emit(DEADLINE_EXCEEDED, f"{message}; stopping the worker gracefully", warning=True))
    return True


def in_deadline_stop(status: dict[str, Any]) -> bool:
    cond = get_condition(status, DEADLINE_EXCEEDED)
    return cond is not None and cond.get("status") == "True"


def waiting_to_retry(status: dict[str, Any]) -> bool:
    cond = get_condition(status, RETRYING)
    return cond is not None and cond.get("status") == "True"


def expire(ttl: float | None, ended: str | None, now: str, actions: list[Action]) -> None:
    """A finished job is deleted ttlSecondsAfterFinished after it ended; until then, a recheck."""
    if ttl is None or not ended or ended == GO_ZERO_TIME:
        return
    elapsed = seconds_between(ended, now)
    if elapsed >= ttl:
        actions.append(DeleteJob())
    else:
        actions.append(Recheck(ttl - elapsed + 0.5))


def watch_stuck(
    pod: PodFacts,
    since: str,
    grace_seconds: int,
    escalate_after: float | None,
    status: dict[str, Any],
    generation: int,
    now: str,
    actions: list[Action],
) -> None:
    """A worker asked to stop at `since` whose pod is still there well past its grace: raise CancelStuck
    saying what holds it (once), and if the user chose an escalation, delete it again with grace 0 that
    long after. The job never ends while the pod exists; this only makes the wait visible."""
    threshold = grace_seconds + STUCK_MARGIN_SECONDS
    elapsed = seconds_between(since, now)
    if elapsed < threshold:
        actions.append(Recheck(threshold - elapsed + 0.5))
        return
    stuck = get_condition(status, CANCEL_STUCK)
    if stuck is None or stuck.get("status") != "True":
        message = (
            f"worker pod {pod.name} still exists {elapsed:.0f} s after it was asked to stop: {blocker(pod)}"
        )
        set_condition(status, CANCEL_STUCK, True, "PodNotGone", message, generation, now)
        actions.append(Emit(CANCEL_STUCK, message, warning=True))
        stuck = get_condition(status, CANCEL_STUCK)
    assert stuck is not None
    if escalate_after is None:
        return
    raised_for = seconds_between(str(stuck["lastTransitionTime"]), now)
    if raised_for < escalate_after:
        actions.append(Recheck(escalate_after - raised_for + 0.5))
        return
    if stuck.get("reason") != "Escalated":
        message = (
            f"{stuck['message']}; escalated after {escalate_after:g} s (escalateAfterSeconds): deleted again "
            "with grace 0; the job ends once the pod is gone"
        )[:32768]
        set_condition(status, CANCEL_STUCK, True, "Escalated", message, generation, now)
        actions.append(Emit("CancelEscalated", message, warning=True))
    if pod.deletion_grace_seconds != 0:
        actions.append(DeletePod(name=pod.name, uid=pod.uid, graceful=False, grace_seconds=0))


def blocker(pod: PodFacts) -> str:
    """What keeps a deleted pod in the API server, as far as the pod itself tells."""
    if pod.finalizers:
        return f"finalizers {', '.join(pod.finalizers)} hold it (whoever set them must remove them)"
    if pod.node_name:
        return (
            f"its node {pod.node_name} has not confirmed that the worker stopped "
            "(the node may be lost or its kubelet down)"
        )
    return "its deletion has not been confirmed (no node, no finalizers)"


def clear_stuck(status: dict[str, Any], generation: int, now: str) -> None:
    cond = get_condition(status, CANCEL_STUCK)
    if cond is not None and cond.get("status") == "True":
        set_condition(status, CANCEL_STUCK, False, "WorkerGone", "the worker pod is gone", generation, now)
