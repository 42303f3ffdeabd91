"""Generate the chart's Grafana dashboard (charts/datajobs-operator/dashboards/datajobs-operator.json).

`python scripts/grafana_dashboard.py --write` rewrites it; tests/unit/test_dashboard.py fails when the
committed file differs, and tests/integration/test_alerts.py evaluates every query on a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent.parent / "charts/datajobs-operator/dashboards/datajobs-operator.json"
NS = 'namespace=~"$namespace"'  # the ServiceMonitor's targets carry their namespace
DS = {"type": "prometheus", "uid": "${datasource}"}


def _q(expr: str, legend: str) -> dict[str, Any]:
    return {"expr": expr, "legendFormat": legend}


# (title, unit, width, [(expr, legend)], description); a row of 24 columns is filled left to right.
PANELS: list[tuple[str, str, int, list[dict[str, Any]], str]] = [
    (
        "Jobs by status",
        "short",
        12,
        [_q(f"sum by (kind, status) (datajobs_jobs{{{NS}}})", "{{kind}} {{status}}")],
        "Jobs the operator knows, by kind and status.",
    ),
    (
        "Queue depth and running jobs",
        "short",
        12,
        [
            _q(f"sum by (kind) (datajobs_queue_depth{{{NS}}})", "{{kind}} queued"),
            _q(f"sum by (kind) (datajobs_running_jobs{{{NS}}})", "{{kind}} running"),
        ],
        "QUEUED jobs waiting for a slot, and jobs holding one (--max-running per kind).",
    ),
    (
        "Queue wait (first seen to pod created), p50 / p95",
        "s",
        12,
        [
            _q(
                f"histogram_quantile({q}, sum by (kind, le) "
                f"(rate(datajobs_dispatch_latency_seconds_bucket{{{NS}}}[$__rate_interval])))",
                f"{{{{kind}}}} p{int(q * 100)}",
            )
            for q in (0.5, 0.95)
        ],
        "From a job first seen to its worker pod created: the time it waited in the queue plus dispatch.",
    ),
    (
        "Dispatches per second",
        "ops",
        12,
        [
            _q(
                f"sum by (kind) (rate(datajobs_dispatch_latency_seconds_count{{{NS}}}[$__rate_interval]))",
                "{{kind}}",
            )
        ],
        "Worker pods created per second.",
    ),
    (
        "Cancel latency p95",
        "s",
        12,
        [
            _q(
                "histogram_quantile(0.95, sum by (kind, phase, le) "
                f"(rate(datajobs_cancel_latency_seconds_bucket{{{NS}}}[$__rate_interval])))",
                "{{kind}} {{phase}}",
            )
        ],
        "From a cancel request seen to the pod's deletion requested (delete_requested) and to CANCELLED.",
    ),
    (
        "Stuck stops (CancelStuck)",
        "short",
        12,
        [_q(f"max by (kind) (datajobs_stuck_stops{{{NS}}})", "{{kind}}")],
        "Jobs whose stopped worker pod is still there past its grace (a finalizer, a lost node): the "
        "DatajobsCancelStuck alert's measure.",
    ),
    (
        "Reconcile errors per second",
        "ops",
        12,
        [_q(f"sum by (kind) (rate(datajobs_reconcile_errors_total{{{NS}}}[$__rate_interval]))", "{{kind}}")],
        "Reconciles that raised and were retried (the operator's log says why).",
    ),
    (
        "Status writes per second",
        "ops",
        12,
        [
            _q(
                f"sum by (kind, result) (rate(datajobs_status_writes_total{{{NS}}}[$__rate_interval]))",
                "{{kind}} {{result}}",
            )
        ],
        "Status writes, ok or refused by a resourceVersion conflict (then re-read and retried).",
    ),
    (
        "Adapter requests per second by code",
        "reqps",
        8,
        [_q(f"sum by (code) (rate(datajobs_adapter_requests_total{{{NS}}}[$__rate_interval]))", "{{code}}")],
        "The HTTP adapter's responses, by status code.",
    ),
    (
        "Adapter 5xx ratio",
        "percentunit",
        8,
        [
            _q(
                f'sum(rate(datajobs_adapter_requests_total{{code=~"5..",{NS}}}[$__rate_interval])) / '
                f"sum(rate(datajobs_adapter_requests_total{{{NS}}}[$__rate_interval]))",
                "5xx",
            )
        ],
        "Share of the adapter's responses that are 5xx (the DatajobsAdapter5xx alert's measure).",
    ),
    (
        "Adapter latency p95 by route",
        "s",
        8,
        [
            _q(
                "histogram_quantile(0.95, sum by (route, le) "
                f"(rate(datajobs_adapter_request_duration_seconds_bucket{{{NS}}}[$__rate_interval])))",
                "{{route}}",
            )
        ],
        "95th percentile of the adapter's response time, by route template.",
    ),
    (
        "Adapter cancels by outcome",
        "ops",
        12,
        [
            _q(
                f"sum by (kind, outcome) (rate(datajobs_adapter_cancels_total{{{NS}}}[$__rate_interval]))",
                "{{kind}} {{outcome}}",
            )
        ],
        "Cancel calls that found their job: patched, in_progress, already_finished, status_mismatch, ...",
    ),
    (
        "Adapter auth failures per second",
        "ops",
        12,
        [
            _q(
                f"sum by (vendor) (rate(datajobs_adapter_auth_failures_total{{{NS}}}[$__rate_interval]))",
                "{{vendor}}",
            )
        ],
        "Requests without a valid API key.",
    ),
    (
        "Leader Lease by replica",
        "short",
        24,
        [_q(f"max by (identity) (datajobs_leader{{{NS}}})", "{{identity}}")],
        "1 on the replica holding the leader Lease (the only one that dispatches, cancels and writes "
        "status), 0 on a standby; no replica at 1 is the DatajobsNoLeader alert.",
    ),
]


def panel(
    index: int, x: int, y: int, spec: tuple[str, str, int, list[dict[str, Any]], str]
) -> dict[str, Any]:
    title, unit, width, targets, description = spec
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [{**t, "refId": chr(ord("A") + i), "datasource": DS} for i, t in enumerate(targets)],
    }


def dashboard() -> dict[str, Any]:
    panels, x, y = [], 0, 0
    for index, spec in enumerate(PANELS):
        if x + spec[2] > 24:
            x, y = 0, y + 8
        panels.append(panel(index, x, y, spec))
        x += spec[2]
    return {
        "uid": "datajobs-operator",
        "title": "Datajobs operator",
        "description": "IntegrityJobs and MaskingExecutions: jobs, queue, dispatch and cancel latency",
        "tags": ["datajobs", "kubernetes-operator"],
        "editable": False,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "utc",
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
                {
                    "name": "namespace",
                    "label": "Operator namespace",
                    "type": "query",
                    "datasource": DS,
                    "query": {"query": "label_values(datajobs_jobs, namespace)", "refId": "namespaces"},
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"write {OUTPUT.name} instead of printing it")
    if parser.parse_args().write:
        OUTPUT.write_text(render())
    else:
        print(render(), end="")  # noqa: T201


if __name__ == "__main__":
    main()
