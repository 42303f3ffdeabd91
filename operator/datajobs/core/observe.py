"""Pure reading of API objects into lifecycle facts: a pod into PodFacts, a job into its queue slot."""

from __future__ import annotations

from typing import Any

from datajobs.core.conditions import CANCELLING, get_condition
from datajobs.core.lifecycle import DEFAULT_GRACE_SECONDS, PodFacts
from datajobs.core.queue import Slot, SortKey
from datajobs.core.workerpod import ANNOTATION_PROGRESS, WORKER_CONTAINER
from datajobs.models import TERMINAL_STATUSES


def pod_facts(pod: dict[str, Any] | None) -> PodFacts | None:
    if pod is None:
        return None
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    names = [c.get("name") for c in spec.get("containers") or []]
    worker_name = WORKER_CONTAINER if WORKER_CONTAINER in names else (names[0] if names else WORKER_CONTAINER)
    worker: dict[str, Any] = next((c for c in statuses if c.get("name") == worker_name), {})
    terminated = (worker.get("state") or {}).get("terminated") or {}
    return PodFacts(
        name=meta["name"],
        phase=status.get("phase") or "Pending",
        deleting=bool(meta.get("deletionTimestamp")),
        exit_code=terminated.get("exitCode"),
        termination_message=terminated.get("message") or "",
        termination_reason=terminated.get("reason") or "",
        progress=(meta.get("annotations") or {}).get(ANNOTATION_PROGRESS, ""),
        grace_seconds=int(spec.get("terminationGracePeriodSeconds") or DEFAULT_GRACE_SECONDS),
    )


def queue_slot(body: dict[str, Any]) -> Slot:
    """A job with no status yet or QUEUED waits for a slot; RUNNING holds one; a finished job holds none."""
    status = body.get("status") or {}
    value = status.get("status")
    if not value or value == "QUEUED":
        return Slot.QUEUED
    if value in TERMINAL_STATUSES:
        return Slot.NONE
    return Slot.RUNNING


def sort_key(body: dict[str, Any], submitted: str) -> SortKey:
    """A job's place in the queue: when it was submitted (the operator's first sight of it), then its name."""
    meta = body["metadata"]
    return (submitted, f"{meta['namespace']}/{meta['name']}")


def is_cancelling(body: dict[str, Any]) -> bool:
    cond = get_condition(body.get("status"), CANCELLING)
    return cond is not None and cond.get("status") == "True"
