"""The API server's audit log as tests read it (the harness's AUDIT_POLICY: list/watch of pods, secrets and
our kinds; create, delete and patch of pods): the server's own record of who asked for what."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest


def audit_events(cluster: Any, since: datetime | None = None) -> list[dict[str, Any]]:
    """Audit events (stages ResponseStarted and ResponseComplete), received at or after `since` if given."""
    if cluster.local is None:
        pytest.fail("this test reads the API server's audit log: it needs the harness's own control plane")
    events = []
    for line in cluster.local.audit_log.read_text().splitlines():
        event = json.loads(line)
        if since is None or received(event) >= since:
            events.append(event)
    return events


def received(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00"))


def pod_requests(events: list[dict[str, Any]], verbs: set[str], namespace: str, name: str) -> list[dict]:
    """The completed requests with one of `verbs` on the pod namespace/name."""
    return [
        e
        for e in events
        if e["verb"] in verbs
        and (ref := e.get("objectRef") or {}).get("resource") == "pods"
        and ref.get("namespace") == namespace
        and ref.get("name") == name
        and e.get("stage") == "ResponseComplete"
    ]
