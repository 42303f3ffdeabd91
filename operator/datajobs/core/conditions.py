"""Pure helpers for metav1.Condition lists: read one, set one (lastTransitionTime only on change)."""

from __future__ import annotations

from typing import Any

CANCEL_REQUEST = "CancelRequest"  # True/Accepted or False/<why rejected>, for the generation evaluated
CANCELLING = "Cancelling"  # True while an accepted cancel waits for the worker pod to go
WORKER_POD = "WorkerPod"  # False/Creating after dispatch, True/Observed once the pod was seen
FINISHED = "Finished"  # True once the job reached a terminal status; reason = it, or DeadlineExceeded
DEADLINE_EXCEEDED = "DeadlineExceeded"  # True once a running job passed spec.activeDeadlineSeconds
RETRYING = "Retrying"  # True while a failed attempt's pod goes and the next waits for its backoff
ATTEMPTS = "attempts"  # status: the attempt running now (absent: the first), under spec.backoffLimit
CANCEL_STUCK = "CancelStuck"  # True while a stopped worker pod outlives its grace (says what holds it)


def get_condition(status: dict[str, Any] | None, ctype: str) -> dict[str, Any] | None:
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def set_condition(
    status: dict[str, Any],
    ctype: str,
    value: bool,
    reason: str,
    message: str,
    generation: int,
    now: str,
) -> None:
    """Set a condition in place; keep lastTransitionTime unless the status flips."""
    conditions = list(status.get("conditions") or [])
    new = {
        "type": ctype,
        "status": "True" if value else "False",
        "observedGeneration": generation,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    }
    for i, cond in enumerate(conditions):
        if cond.get("type") == ctype:
            if cond.get("status") == new["status"]:
                new["lastTransitionTime"] = cond.get("lastTransitionTime", now)
            conditions[i] = new
            break
    else:
        conditions.append(new)
    status["conditions"] = conditions
