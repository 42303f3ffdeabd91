"""Scale and memory: operator RSS and CPU with L jobs present, idle and while a burst of jobs dispatches."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from bench.dispatch import names as job_names
from bench.kapi import Kapi
from bench.load import create_all
from bench.objects import integrity_job
from bench.procstats import RssSampler, cpu_seconds, quiesce, rss_mb
from bench.recorder import PodClock, wait_all
from bench.stats import ratio

log = logging.getLogger(__name__)


async def idle(pid: int, window: float) -> dict[str, float]:
    before, t = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)  # a measurement window, not a wait for the system
    elapsed = time.monotonic() - t
    return {
        "rss_mb": round(rss_mb(pid), 1),
        "cpu_percent": round((cpu_seconds(pid) - before) / elapsed * 100, 2),
        "window_s": round(elapsed, 1),
    }


async def scale(
    api: Kapi,
    collection: str,
    pods: PodClock,
    pid: int,
    levels: list[int],
    burst: int,
    idle_window: float,
    concurrency: int,
    timeout_per_job: float,
    settle: float = 60.0,
) -> dict[str, Any]:
    present = 0
    rows: list[dict[str, Any]] = []
    await quiesce(pid, within=settle)
    baseline = await idle(pid, idle_window)
    for level in levels:
        fill = level - burst - present
        if fill > 0:
            log.info("scale: filling to %d jobs", present + fill)
            batch = job_names("scale", fill, present)
            await create_all(api, collection, [integrity_job(n) for n in batch], concurrency)
            await wait_all(batch, pods.running.__contains__, "Running", 120 + fill * timeout_per_job)
            present += fill
        await quiesce(pid, within=settle)
        before = await idle(pid, idle_window)

        log.info("scale: burst of %d jobs on top of %d", burst, present)
        batch = job_names("scale", burst, present)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        async with RssSampler(pid) as sampler:
            await create_all(api, collection, [integrity_job(n) for n in batch], concurrency)
            await wait_all(batch, pods.running.__contains__, "Running", 120 + burst * timeout_per_job)
            wall = max(pods.running[n] for n in batch) - t0
            cpu_running = cpu_seconds(pid) - cpu0
            await quiesce(pid, within=settle)
        settled = time.monotonic() - t0
        # Everything the burst cost the operator until it went quiet, minus what it burns idle anyway.
        cpu_total = cpu_seconds(pid) - cpu0 - before["cpu_percent"] / 100 * settled
        present += burst
        after = await idle(pid, idle_window)
        rows.append(
            {
                "jobs": present,
                "idle": after,
                "idle_before_burst": before,
                "burst": {
                    "jobs": burst,
                    "wall_s": round(wall, 3),
                    "jobs_per_s": round(burst / wall, 2),
                    "cpu_s_to_running": round(cpu_running, 3),
                    "cpu_s_settled": round(cpu_total, 3),
                    "cpu_ms_per_job": round(cpu_total / burst * 1000, 2),
                    "wall_ms_per_job": round(wall / burst * 1000, 2),
                    "rss_peak_mb": round(sampler.peak_mb, 1),
                },
            }
        )
    first, last = rows[0]["burst"], rows[-1]["burst"]
    for row in rows:
        row["kib_per_job"] = round((row["idle"]["rss_mb"] - baseline["rss_mb"]) * 1024 / row["jobs"], 1)
    return {
        "no_jobs": baseline,
        "levels": rows,
        "per_job_cpu_ratio": ratio(last["cpu_ms_per_job"], first["cpu_ms_per_job"]),
        "per_job_wall_ratio": ratio(last["wall_ms_per_job"], first["wall_ms_per_job"]),
        "compared": [rows[0]["jobs"], rows[-1]["jobs"]],
    }
