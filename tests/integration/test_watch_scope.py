"""The operator and the adapter ask the API server for their objects only: the pod watch (the engine's own
informer; kopf watches only the jobs) carries the worker label selector, and with --namespace every list and
watch is of that namespace. Asserted from the server's side: the API server's audit log (tests/conftest.py's
control plane records every list and watch of pods, secrets and our kinds)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from auditkit import audit_events
from operatorkit import Jobs, integrity_spec
from test_adapter_contract import start_adapter  # noqa: F401 (fixture)

from helpers import wait_for

SELECTOR = "app.kubernetes.io/managed-by=datajobs-operator"
OPERATOR = "datajobs-operator"  # the user agent of the operator's own session (its pod list and watch)


def reads(events: list[dict[str, Any]], agent: str, resource: str) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e.get("userAgent", "").startswith(agent)
        and e["verb"] in ("list", "watch")
        and (e.get("objectRef") or {}).get("resource") == resource
    ]


def query(event: dict[str, Any]) -> dict[str, list[str]]:
    return parse_qs(urlsplit(event["requestURI"]).query)


def test_the_operators_pod_watch_asks_the_server_for_worker_pods_of_its_namespace_only(
    cluster: Any, run_operator: Any, jobs: Jobs, namespace: str
) -> None:
    since = datetime.now(UTC)  # to the microsecond: the last test's operator ran in this second maybe
    run_operator()
    jobs.create("IntegrityJob", "scoped", integrity_spec())
    jobs.wait_pod_running("scoped")

    def pod_watches() -> list[dict[str, Any]]:
        return [e for e in reads(audit_events(cluster, since), OPERATOR, "pods") if e["verb"] == "watch"]

    watches = wait_for(pod_watches, message="the operator's pod watch in the audit log")
    events = audit_events(cluster, since)
    assert not reads(events, "kopf/", "pods")  # the engine's own informer watches pods, not kopf
    pod_reads = reads(events, OPERATOR, "pods")
    assert {e["verb"] for e in pod_reads} >= {"list", "watch"}, (
        pod_reads
    )  # its start-up listing and the watch
    for event in pod_reads:
        assert event["objectRef"].get("namespace") == namespace, event["requestURI"]
        assert query(event).get("labelSelector") == [SELECTOR], event["requestURI"]
    assert all(query(w).get("watch") == ["true"] for w in watches)
    for resource in ("integrityjobs", "maskingexecutions"):
        job_reads = reads(events, "kopf/", resource)
        assert job_reads, f"no {resource} watch by the operator"
        assert {e["objectRef"].get("namespace") for e in job_reads} == {namespace}


def test_the_adapters_watches_are_of_its_namespace_only(
    cluster: Any,
    start_adapter: Any,  # noqa: F811 (fixture)
    namespace: str,
) -> None:
    since = datetime.now(UTC)  # to the microsecond: the last test's operator ran in this second maybe
    start_adapter()

    def job_watches() -> list[dict[str, Any]]:
        events = audit_events(cluster, since)
        found = [
            e
            for resource in ("integrityjobs", "maskingexecutions")
            for e in reads(events, "", resource)
            if e["verb"] == "watch" and not e.get("userAgent", "").startswith("kopf/")
        ]
        return (
            found
            if {e["objectRef"]["resource"] for e in found} == {"integrityjobs", "maskingexecutions"}
            else []
        )

    watches = wait_for(job_watches, message="the adapter's job watches in the audit log")
    agents = {e["userAgent"] for e in watches}
    events = audit_events(cluster, since)
    adapter_reads = [
        e
        for agent in agents
        for resource in ("integrityjobs", "maskingexecutions", "pods")
        for e in reads(events, agent, resource)
    ]
    assert not [e for e in adapter_reads if e["objectRef"]["resource"] == "pods"]  # it never reads pods
    assert {e["objectRef"].get("namespace") for e in adapter_reads} == {namespace}, [
        e["requestURI"] for e in adapter_reads
    ]


def test_cluster_wide_the_operators_pod_reads_still_carry_the_selector(
    cluster: Any, run_operator: Any, jobs: Jobs
) -> None:
    """Without --namespace the operator lists and watches pods of every namespace, but only its workers."""
    since = datetime.now(UTC)
    run_operator(cluster_wide=True)
    jobs.create("IntegrityJob", "everywhere", integrity_spec())
    jobs.wait_pod_running("everywhere")
    wait_for(
        lambda: [e for e in reads(audit_events(cluster, since), OPERATOR, "pods") if e["verb"] == "watch"],
        message="the operator's pod watch in the audit log",
    )
    events = audit_events(cluster, since)
    assert not reads(events, "kopf/", "pods")  # the engine's own informer watches pods, not kopf
    pod_reads = reads(events, OPERATOR, "pods")
    assert {e["verb"] for e in pod_reads} >= {"list", "watch"}, pod_reads
    for event in pod_reads:
        assert event["objectRef"].get("namespace") is None, event["requestURI"]  # cluster scope
        assert query(event).get("labelSelector") == [SELECTOR], event["requestURI"]
