"""Pure reading of API objects into lifecycle facts: a pod into PodFacts, a job into its queue slot."""

from __future__ import annotations

from typing import Any

from datajobs.core.conditions import CANCELLING, get_condition
from datajobs.core.lifecycle import DEFAULT_GRACE_SECONDS, PodFacts
from datajobs.core.queue import Slot, SortKey
from datajobs.core.report import ANNOTATION_RESULT
from datajobs.core.workerpod import ANNOTATION_PROGRESS, WORKER_CONTAINER, worker_pod_name
from datajobs.models import TERMINAL_STATUSES


def controller_uid(pod: dict[str, Any]) -> str | None:
    """The uid of the object named as the pod's controller by its ownerReferences, if any."""
    for ref in pod["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "") or None
    return None


def is_worker_of(pod: dict[str, Any], job_meta: dict[str, Any]) -> bool:
    """A pod is a job's worker only by identity: the job's namespace, the worker's name, and a controller
    ownerReference to the job's uid (labels prove nothing: anyone who can create a pod can set them)."""
    meta = pod["metadata"]
    return (
        meta.get("namespace") == job_meta["namespace"]
        and meta.get("name") == worker_pod_name(job_meta["name"])
        and controller_uid(pod) == job_meta["uid"]
    )


def pod_facts(pod: dict[str, Any] | None) -> PodFacts | None:
    if pod is None:
        return None
    meta, spec, status = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    names = [c.get("name") for c in spec.get("containers") or []]
    worker_name = WORKER_CONTAINER if WORKER_CONTAINER in names else (names[0] if names else WORKER_CONTAINER)
    worker: dict[str, Any] = next((c for c in statuses if c.get("name") == worker_name), {})
    state = worker.get("state") or {}
    terminated = state.get("terminated") or {}
    waiting = state.get("waiting") or {}
    unschedulable: dict[str, Any] = next(
        (
            c
            for c in status.get("conditions") or []
            if c.get("type") == "PodScheduled" and c.get("status") == "False"
        ),
        {},
    )
    return PodFacts(
        name=meta["name"],
        uid=meta.get("uid") or "",
        phase=status.get("phase") or "Pending",
        deleting=bool(meta.get("deletionTimestamp")),
        exit_code=terminated.get("exitCode"),
        termination_message=terminated.get("message") or "",
        termination_reason=terminated.get("reason") or "",
        progress=(meta.get("annotations") or {}).get(ANNOTATION_PROGRESS, ""),
        result=(meta.get("annotations") or {}).get(ANNOTATION_RESULT, ""),
        grace_seconds=int(spec.get("terminationGracePeriodSeconds") or DEFAULT_GRACE_SECONDS),
        waiting_reason=waiting.get("reason") or unschedulable.get("reason") or "",
        waiting_message=waiting.get("message") or unschedulable.get("message") or "",
        finalizers=tuple(meta.get("finalizers") or ()),
        node_name=spec.get("nodeName") or "",
        deletion_grace_seconds=meta.get("deletionGracePeriodSeconds"),
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
