"""`kubectl datajobs describe`: a job's facts and a timeline of its conditions and Events (its pod's too)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from datajobs.core.shapes import SHAPES
from datajobs.kubectlplugin.present import age, job_id, parse_time, progress, ref_of, table

_FLOOR = datetime.min.replace(tzinfo=UTC)


def worker_pod_name(job: dict[str, Any]) -> str:
    return f"{job['metadata']['name']}-worker"


def event_time(event: dict[str, Any]) -> str:
    return str(
        event.get("lastTimestamp")
        or (event.get("series") or {}).get("lastObservedTime")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or (event.get("metadata") or {}).get("creationTimestamp")
        or ""
    )


def timeline(job: dict[str, Any], job_events: list[dict], pod_events: list[dict]) -> list[list[str]]:
    """Rows TIME, FROM, WHAT, MESSAGE, oldest first: conditions as they last changed, Events as they last
    happened (with their count)."""
    entries: list[tuple[datetime, int, int, list[str]]] = []
    status = job.get("status") or {}
    for cond in status.get("conditions") or []:
        when = str(cond.get("lastTransitionTime") or "")
        what = f"{cond.get('type')}={cond.get('status')} {cond.get('reason') or ''}".rstrip()
        entries.append(
            (parse_time(when) or _FLOOR, 1, 0, [when, "condition", what, str(cond.get("message") or "")])
        )
    for source, events in (("event", job_events), ("pod event", pod_events)):
        for event in events:
            when = event_time(event)
            count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
            what = f"{event.get('type') or 'Normal'} {event.get('reason') or ''}".rstrip()
            if count > 1:
                what += f" (x{count})"
            # Events' times are whole seconds: within one second, their commit order (resourceVersion)
            rv = str((event.get("metadata") or {}).get("resourceVersion") or "0")
            order = int(rv) if rv.isdigit() else 0
            cells = [when, source, what, str(event.get("message") or "")]
            entries.append((parse_time(when) or _FLOOR, 0, order, cells))
    entries.sort(key=lambda e: e[:3])
    return [cells for *_, cells in entries]


def _field(label: str, value: object) -> str:
    return f"{label + ':':<17}{value}\n"


def render(
    job: dict[str, Any],
    pod: dict[str, Any] | None,
    job_events: list[dict],
    pod_events: list[dict],
    queue_position: int | None,
    now: datetime,
) -> str:
    ref = ref_of(job)
    shape = SHAPES[job["kind"]]
    status = job.get("status") or {}
    meta = job["metadata"]
    out = [
        _field("Name", meta["name"]),
        _field("Namespace", meta.get("namespace", "")),
        _field("Kind", f"{job['kind']} ({ref.short})"),
        _field(
            "Labels", ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())) or "<none>"
        ),
        _field("Created", f"{meta.get('creationTimestamp')} ({age(job, now)} ago)"),
        _field("Status", status.get("status") or "<not seen by the operator yet>"),
        _field("ID", job_id(job)),
    ]
    if queue_position is not None:
        out.append(_field("Queue position", queue_position))
    for label, key in (("Submitted", shape.submitted), ("Started", shape.started), ("Ended", shape.ended)):
        when = status.get(key)
        out.append(_field(label, when if parse_time(when) else "-"))
    out.append(_field("Progress", progress(job)))
    message = status.get("log_message")
    if message:
        out.append(_field("Log message", message))
    request = (job.get("spec") or {}).get("cancelRequested")
    out.append(_field("Cancel request", "<none>" if request is None else json.dumps(request, sort_keys=True)))
    if pod is None:
        out.append(_field("Worker pod", f"{worker_pod_name(job)} (does not exist)"))
    else:
        pod_meta, pod_status = pod["metadata"], pod.get("status") or {}
        state = pod_status.get("phase") or "Unknown"
        if pod_meta.get("deletionTimestamp"):
            state += f", terminating (grace until {pod_meta['deletionTimestamp']})"
        node = (pod.get("spec") or {}).get("nodeName") or "<not scheduled>"
        out.append(_field("Worker pod", f"{pod_meta['name']} ({state}) on {node}"))
    rows = timeline(job, job_events, pod_events)
    out.append("Timeline:\n")
    if rows:
        out.append(
            "".join(f"  {line}\n" for line in table(["TIME", "FROM", "WHAT", "MESSAGE"], rows).splitlines())
        )
    else:
        out.append("  <none>\n")
    return "".join(out)
