"""CPU seconds and memory of the processes under test (psutil), per phase and sampled during bursts."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping

import psutil


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


class PhaseCpu:
    """CPU seconds each component used between `start()` and `stop()` (the load generator included)."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = {**pids, "bench": os.getpid()}
        self._before: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def start(self) -> PhaseCpu:
        self._before = {name: _cpu_or_zero(pid) for name, pid in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.seconds = {
            name: round(_cpu_or_zero(pid) - self._before.get(name, 0.0), 2) for name, pid in self.pids.items()
        }
        return self.seconds


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except psutil.Error:
        return 0.0


class RssSampler:
    """Samples one process's RSS every `interval` seconds in the background; `peak_mb` is the maximum."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_mb = 0.0
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RssSampler:
        self.peak_mb = rss_mb(self.pid)
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.peak_mb = max(self.peak_mb, rss_mb(self.pid))

    async def _run(self) -> None:
        while True:
            self.peak_mb = max(self.peak_mb, rss_mb(self.pid))
            await asyncio.sleep(self.interval)


async def quiesce(pid: int, below_percent: float = 5.0, window: float = 1.0, within: float = 60.0) -> float:
    """Wait until `pid` used less than `below_percent` of a core over `window` s; returns seconds waited."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while True:
        before = cpu_seconds(pid)
        await asyncio.sleep(window)
        busy = (cpu_seconds(pid) - before) / window * 100
        waited = loop.time() - started
        if busy < below_percent or waited > within:
            return round(waited, 1)
