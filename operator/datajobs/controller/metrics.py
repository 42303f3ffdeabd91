"""The operator's Prometheus metrics: jobs by status, queue depth, latencies, errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

RECONCILE_ERRORS = Counter(
    "datajobs_reconcile_errors_total", "Reconciles that raised and were retried", ["kind"]
)
STATUS_WRITES = Counter("datajobs_status_writes_total", "Job status writes by result", ["kind", "result"])
DISPATCH_LATENCY = Histogram(
    "datajobs_dispatch_latency_seconds",
    "From the job first seen to its worker pod created",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
CANCEL_LATENCY = Histogram(
    "datajobs_cancel_latency_seconds",
    "From a cancel request first seen to the pod's deletion requested (phase=delete_requested) or CANCELLED",
    ["kind", "phase"],
    buckets=LATENCY_BUCKETS,
)


class EngineCollector(Collector):
    """Gauges read from the engine's store at scrape time (no bookkeeping on the hot path)."""

    def __init__(self, engine_getter: Callable[[], Any]) -> None:
        self.engine_getter = engine_getter

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self.engine_getter()
        jobs = GaugeMetricFamily("datajobs_jobs", "Jobs by kind and status", labels=["kind", "status"])
        depth = GaugeMetricFamily("datajobs_queue_depth", "QUEUED jobs waiting for a slot", labels=["kind"])
        running = GaugeMetricFamily("datajobs_running_jobs", "Jobs holding a slot", labels=["kind"])
        stuck = GaugeMetricFamily(
            "datajobs_stuck_stops",
            "Jobs whose stopped worker pod outlived its grace (condition CancelStuck=True)",
            labels=["kind"],
        )
        backlog = GaugeMetricFamily(
            "datajobs_reconcile_backlog",
            "Jobs waiting for a reconcile, by lane (urgent: an event or timer; background: a relist)",
            labels=["lane"],
        )
        if engine is not None:
            for kind, counts in engine.counts().items():
                for status, n in counts.items():
                    jobs.add_metric([kind, status], n)
            for kind, queue in engine.queues.items():
                depth.add_metric([kind], queue.depth)
                running.add_metric([kind], queue.running)
            for kind, n in engine.stuck_counts().items():
                stuck.add_metric([kind], n)
            urgent, background = engine.work.backlog()
            backlog.add_metric(["urgent"], urgent)
            backlog.add_metric(["background"], background)
        yield from (jobs, depth, running, stuck, backlog)


def register_engine(engine_getter: Callable[[], Any]) -> None:
    REGISTRY.register(EngineCollector(engine_getter))


API_REQUESTS = Counter(
    "datajobs_api_requests_total",
    "Requests sent to the API server, by method and HTTP code",
    ["method", "code"],
)
API_RETRIES = Counter(
    "datajobs_api_retries_total", "Requests retried, by cause (HTTP code or connection)", ["reason"]
)
API_THROTTLED_SECONDS = Counter(
    "datajobs_api_throttled_seconds_total", "Seconds every request paused for after a 429 (Retry-After)"
)
RELISTS = Counter(
    "datajobs_relists_total",
    "Lists that replaced the operator's view: of jobs and pods, or of the worker pods alone when their "
    "watch could not resume (410)",
)
LEADER = Gauge("datajobs_leader", "1 while this replica holds the leader Lease", ["identity"])
