"""Per-phase deltas of Prometheus counters: API server requests by verb and resource, operator writes."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import aiohttp

from bench.kapi import Kapi

_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
APISERVER = ("apiserver_request_total", "apiserver_request_duration_seconds_sum")
OPERATOR = (
    "datajobs_status_writes_total",
    "datajobs_reconcile_errors_total",
    "datajobs_dispatch_latency_seconds_sum",
    "datajobs_dispatch_latency_seconds_count",
    "datajobs_cancel_latency_seconds_sum",
    "datajobs_cancel_latency_seconds_count",
    "datajobs_relists_total",
)
Sample = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str, names: tuple[str, ...]) -> Sample:
    """The samples of the metrics in `names` (exact names), keyed by name and sorted labels."""
    out: Sample = {}
    for line in text.splitlines():
        if not line.startswith(names):
            continue
        match = _LINE.match(line)
        if match is None or match["name"] not in names:
            continue
        labels = tuple(sorted(_LABEL.findall(match["labels"] or "")))
        out[(match["name"], labels)] = float(match["value"])
    return out


def delta(before: Sample, after: Sample) -> Sample:
    return {k: v - before.get(k, 0.0) for k, v in after.items() if v - before.get(k, 0.0)}


class Scraper:
    """Reads the API server's and the operator's /metrics."""

    def __init__(self, api: Kapi, operator_url: str) -> None:
        self.api = api
        self.operator_url = operator_url

    async def snapshot(self) -> tuple[Sample, Sample]:
        async with self.api.session.get(self.api.server + "/metrics") as resp:
            apiserver = parse(await resp.text(), APISERVER)
        async with aiohttp.ClientSession() as http, http.get(self.operator_url) as resp:
            operator = parse(await resp.text(), OPERATOR)
        return apiserver, operator


def summarise_apiserver(d: Sample) -> dict[str, Any]:
    """Requests by 'VERB resource[/subresource]' (reads included), with the mean server-side latency."""
    count: dict[str, float] = defaultdict(float)
    seconds: dict[str, float] = defaultdict(float)
    for (name, labels), value in d.items():
        lab = dict(labels)
        if lab.get("resource") in (None, "", "leases", "nodes", "events.k8s.io"):
            continue
        key = f"{lab.get('verb')} {lab['resource']}" + (
            f"/{lab['subresource']}" if lab.get("subresource") else ""
        )
        if name == "apiserver_request_total":
            count[key] += value
        else:
            seconds[key] += value
    return {
        k: {"requests": int(n), "mean_ms": round(1000 * seconds[k] / n, 2) if n and k in seconds else None}
        for k, n in sorted(count.items(), key=lambda kv: -kv[1])
    }


def summarise_operator(d: Sample) -> dict[str, Any]:
    out: dict[str, Any] = {"status_writes": {}, "reconcile_errors": 0, "relists": 0}
    hist: dict[str, dict[str, float]] = defaultdict(dict)
    for (name, labels), value in d.items():
        lab = dict(labels)
        if name == "datajobs_status_writes_total":
            out["status_writes"][lab.get("result", "?")] = out["status_writes"].get(
                lab.get("result", "?"), 0
            ) + int(value)
        elif name == "datajobs_reconcile_errors_total":
            out["reconcile_errors"] += int(value)
        elif name == "datajobs_relists_total":  # full lists in the phase (resync, kopf's relist, a 410)
            out["relists"] += int(value)
        else:
            base, _, part = name.rpartition("_")
            key = base.removeprefix("datajobs_").removesuffix("_seconds") + (
                f"_{lab['phase']}" if "phase" in lab else ""
            )
            hist[key][part] = hist[key].get(part, 0.0) + value
    for key, parts in hist.items():
        if parts.get("count"):
            out[f"{key}_mean_ms"] = round(1000 * parts.get("sum", 0.0) / parts["count"], 2)
            out[f"{key}_count"] = int(parts["count"])
    return out
