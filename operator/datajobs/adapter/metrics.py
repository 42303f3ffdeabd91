"""Prometheus metrics of one adapter instance (its own registry, so several can run in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from datajobs.models import KindInfo

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class AdapterMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "datajobs_adapter_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "code"],
            registry=r,
        )
        self.latency = Histogram(
            "datajobs_adapter_request_duration_seconds",
            "HTTP request latency by route template, method and status code.",
            ["route", "method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.cancels = Counter(
            "datajobs_adapter_cancels",
            "Cancel calls that found their job, by kind and outcome (patched, in_progress, already_finished, "
            "status_mismatch, gone, conflicts_exhausted, api_error).",
            ["kind", "outcome"],
            registry=r,
        )
        self.conflicts = Counter(
            "datajobs_adapter_patch_conflicts",
            "Patches refused by the resourceVersion precondition (each one leads to a re-read).",
            ["kind"],
            registry=r,
        )
        self.auth_failures = Counter(
            "datajobs_adapter_auth_failures", "Requests without a valid API key.", ["vendor"], registry=r
        )
        self.cache_objects = Gauge(
            "datajobs_adapter_cache_objects", "Objects in the watch-backed cache.", ["kind"], registry=r
        )
        self.cache_synced = Gauge(
            "datajobs_adapter_cache_synced", "1 once every watch of the cache has listed once.", registry=r
        )
        self.api_keys = Gauge("datajobs_adapter_api_keys", "API keys currently accepted.", registry=r)

    def count_conflict(self, kind: KindInfo) -> None:
        """Canceller's on_conflict callback."""
        self.conflicts.labels(kind.kind).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
