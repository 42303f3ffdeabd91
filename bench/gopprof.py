"""CPU profiles of kube-apiserver through its /debug/pprof endpoint, back-to-back 2 s windows per phase."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

from bench.kapi import Kapi

log = logging.getLogger(__name__)

WINDOW_SECONDS = 2  # the window in flight when the phase ends is dropped: it would reach past the phase


class GoProfiler:
    """Fetches profiles from start() to stop(); stop() merges them and returns their top functions."""

    def __init__(self, api: Kapi, output: Path) -> None:
        self.api = api
        self.output = output
        self._parts: list[Path] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> GoProfiler:
        if shutil.which("go") is None:
            raise RuntimeError("--apiserver-pprof needs `go` (for `go tool pprof`) on PATH")
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.get_running_loop().create_task(self._loop())
        return self

    async def _loop(self) -> None:
        while True:
            raw = await self.api.get_bytes(
                "/debug/pprof/profile", {"seconds": str(WINDOW_SECONDS)}, within=WINDOW_SECONDS + 30
            )
            part = self.output.with_suffix(f".{len(self._parts)}.pb.gz")
            part.write_bytes(raw)
            self._parts.append(part)

    async def stop(self) -> dict[str, Any] | None:
        if self._task is None:
            return None
        if self._task.done() and self._task.exception() is not None:
            log.warning("no kube-apiserver profile: %s", self._task.exception())
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        if not self._parts:
            return None
        return await asyncio.to_thread(self._merge)

    def _merge(self) -> dict[str, Any]:
        merged = subprocess.run(
            ["go", "tool", "pprof", "-proto", *map(str, self._parts)], capture_output=True, check=True
        ).stdout
        self.output.write_bytes(merged)
        for part in self._parts:
            part.unlink()
        return summarise(self.output)


def summarise(profile: Path, top: int = 25) -> dict[str, Any]:
    """The `top` functions of one profile by cumulative time, as rows of `go tool pprof -top -cum`."""
    out = subprocess.run(
        ["go", "tool", "pprof", "-top", "-cum", f"-nodecount={top}", str(profile)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    lines = out.splitlines()
    header = next((i for i, line in enumerate(lines) if "flat%" in line), -1)
    return {"profile": str(profile), "cumulative": [line.rstrip() for line in lines[header:] if line.strip()]}
