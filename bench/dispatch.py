"""Dispatch throughput: N jobs created at once → every worker pod Running (ours, or the Job controller's)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bench.kapi import Kapi
from bench.load import create_all
from bench.recorder import PodClock, wait_all
from bench.stats import summary_ms


async def dispatch(
    api: Kapi,
    collection: str,
    bodies: list[dict[str, Any]],
    pods: PodClock,
    concurrency: int,
    within: float,
) -> dict[str, Any]:
    """Create `bodies` with `concurrency` creators; time from the first create to the last pod Running."""
    names = [b["metadata"]["name"] for b in bodies]
    started = time.monotonic()
    sent = await create_all(api, collection, bodies, concurrency)
    created = time.monotonic()
    await wait_all(names, pods.running.__contains__, "Running", within)
    last = max(pods.running[n] for n in names)
    seconds = last - started
    return {
        "jobs": len(names),
        "create_seconds": round(created - started, 3),
        "seconds": round(seconds, 3),
        "jobs_per_s": round(len(names) / seconds, 2),
        "create_to_running": summary_ms([pods.running[n] - sent[n] for n in names]),
    }


def names(prefix: str, count: int, start: int = 0) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(start, start + count)]


def bodies(make: Callable[[str], dict[str, Any]], job_names: list[str]) -> list[dict[str, Any]]:
    return [make(n) for n in job_names]
