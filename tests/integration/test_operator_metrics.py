"""The operator's Prometheus metrics, scraped from a running `datajobs run` as jobs queue, run and cancel."""

# ruff: noqa: F811 (pytest fixtures imported from operatorkit are redefined as parameters)

from __future__ import annotations

from typing import Any

from operatorkit import SPECS, Jobs, jobs, run_operator  # noqa: F401 (fixtures)
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from helpers import wait_for

FAMILIES = {
    "datajobs_jobs": "gauge",
    "datajobs_queue_depth": "gauge",
    "datajobs_running_jobs": "gauge",
    "datajobs_dispatch_latency_seconds": "histogram",
    "datajobs_cancel_latency_seconds": "histogram",
    "datajobs_reconcile_errors_total": "counter",
    "datajobs_status_writes_total": "counter",
}


def scrape(operator: Any) -> dict[str, Metric]:
    # the parser names counters without their _total suffix; key the families by the exposed name
    families = {}
    for family in text_string_to_metric_families(operator.metrics()):
        name = family.name + ("_total" if family.type == "counter" else "")
        families[name] = family
    return families


def value(families: dict[str, Metric], family: str, sample: str | None = None, **labels: str) -> float | None:
    for s in families[family].samples:
        if s.name == (sample or family) and all(s.labels.get(k) == v for k, v in labels.items()):
            return float(s.value)
    return None


def test_every_operator_metric_family_is_exposed_with_the_lifecycle_in_it(
    run_operator: Any, jobs: Jobs
) -> None:
    operator = run_operator(max_running=1)
    jobs.create("IntegrityJob", "first", SPECS["IntegrityJob"]())
    jobs.wait_pod_running("first")
    jobs.create("IntegrityJob", "second", SPECS["IntegrityJob"]())
    jobs.wait_status("IntegrityJob", "second", "QUEUED")
    jobs.create("MaskingExecution", "masked", SPECS["MaskingExecution"]())
    jobs.wait_pod_running("masked")

    # while one IntegrityJob waits for the only slot
    m = wait_for(
        lambda: (f := scrape(operator)) and value(f, "datajobs_queue_depth", kind="IntegrityJob") == 1 and f,
        timeout=15,
        message="queue depth 1",
    )
    assert value(m, "datajobs_running_jobs", kind="IntegrityJob") == 1
    assert value(m, "datajobs_running_jobs", kind="MaskingExecution") == 1
    assert value(m, "datajobs_jobs", kind="IntegrityJob", status="QUEUED") == 1
    assert value(m, "datajobs_jobs", kind="IntegrityJob", status="RUNNING") == 1

    # one job cancelled, one finished, the queued one dispatched
    jobs.cancel("MaskingExecution", "masked", graceful=False)
    jobs.wait_status("MaskingExecution", "masked", "CANCELLED", timeout=30)
    jobs.finish_pod("first", 0)
    jobs.wait_status("IntegrityJob", "first", "SUCCEEDED")
    jobs.wait_pod_running("second")

    def settled() -> dict[str, Metric] | None:
        f = scrape(operator)
        ok = (
            value(f, "datajobs_jobs", kind="IntegrityJob", status="SUCCEEDED") == 1
            and value(f, "datajobs_jobs", kind="IntegrityJob", status="RUNNING") == 1
            and value(f, "datajobs_jobs", kind="MaskingExecution", status="CANCELLED") == 1
            and value(f, "datajobs_queue_depth", kind="IntegrityJob") == 0
        )
        return f if ok else None

    m = wait_for(settled, timeout=15, message="metrics reflect the settled jobs")
    assert {name: m[name].type for name in FAMILIES if name in m} == FAMILIES, sorted(m)
    assert value(m, "datajobs_running_jobs", kind="MaskingExecution") == 0

    count = "datajobs_dispatch_latency_seconds_count"
    assert value(m, "datajobs_dispatch_latency_seconds", count, kind="IntegrityJob") == 2
    assert value(m, "datajobs_dispatch_latency_seconds", count, kind="MaskingExecution") == 1
    buckets = [
        s.value
        for s in m["datajobs_dispatch_latency_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["kind"] == "IntegrityJob"
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # cumulative, +Inf holds every observation

    cancels = [
        s
        for s in m["datajobs_cancel_latency_seconds"].samples
        if s.name.endswith("_count") and s.labels["kind"] == "MaskingExecution"
    ]
    assert cancels and all(s.value >= 1 for s in cancels), cancels
    assert {s.labels["phase"] for s in cancels} <= {"delete_requested", "cancelled"}

    writes = [s for s in m["datajobs_status_writes_total"].samples if s.name.endswith("_total")]
    ok = {s.labels["kind"]: s.value for s in writes if s.labels["result"] == "ok"}
    assert ok["IntegrityJob"] >= 4 and ok["MaskingExecution"] >= 2, writes  # one per transition at least
    assert not [s for s in m["datajobs_reconcile_errors_total"].samples if s.value > 0]
