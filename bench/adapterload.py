"""Adapter throughput: vendor cancel calls at 1/16/64 clients vs the same number of raw merge patches."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.kapi import ApiError, Kapi
from bench.load import run_concurrently
from bench.objects import DESTINATION, ij_collection
from bench.recorder import JobClock, wait_all
from bench.stats import ratio, summary_ms


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class AdapterLoad:
    """One HTTP client (keep-alive pool) for the adapter and the Kapi for raw patches, same load generator."""

    def __init__(self, api: Kapi, adapter_url: str, api_key: str, namespace: str, jobs: JobClock) -> None:
        self.api = api
        self.url = adapter_url
        self.key = api_key
        self.namespace = namespace
        self.jobs = jobs
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AdapterLoad:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256), timeout=aiohttp.ClientTimeout(total=60)
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._http is not None:
            await self._http.close()

    @property
    def http(self) -> aiohttp.ClientSession:
        assert self._http is not None
        return self._http

    def _job_url(self, name: str) -> str:
        uid = self.jobs.objects[name]["metadata"]["uid"]
        return f"{self.url}/destinations/{DESTINATION}/data-integrity/{uid}"

    async def wait_visible(self, names: list[str], within: float) -> None:
        """Every job is RUNNING and the adapter's cache answers for it (GET 200)."""
        await wait_all(names, lambda n: self.jobs.reached(n, "RUNNING") is not None, "RUNNING", within)
        deadline = time.monotonic() + within

        async def visible(name: str) -> None:
            while True:
                async with self.http.get(self._job_url(name), headers={"X-API-KEY": self.key}) as resp:
                    await resp.read()
                    if resp.status == 200:
                        return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the adapter never served {name} (last HTTP {resp.status})")
                await asyncio.sleep(0.1)

        await run_concurrently(names, visible, 16)

    async def level(
        self,
        clients: int,
        raw_names: list[str],
        adapter_names: list[str],
        settle: float,
        quiet: Callable[[], Awaitable[None]],
    ) -> dict[str, Any]:
        """Raw and adapter batches in ABBA order, each from a quiet cluster: a drift hits both alike."""
        half_raw, half_adapter = len(raw_names) // 2, len(adapter_names) // 2
        batches = [
            ("raw", raw_names[:half_raw]),
            ("adapter", adapter_names[:half_adapter]),
            ("adapter", adapter_names[half_adapter:]),
            ("raw", raw_names[half_raw:]),
        ]
        runs: dict[str, list[dict[str, Any]]] = {"raw": [], "adapter": []}
        for who, batch in batches:
            if not batch:
                continue
            await quiet()
            run = self._raw if who == "raw" else self._adapter
            runs[who].append(await run(batch, clients))
            await self._settle(batch, settle)
        raw, adapter = _pooled(runs["raw"]), _pooled(runs["adapter"])
        return {
            "clients": clients,
            "requests": len(adapter_names),
            "order": "raw, adapter, adapter, raw (each batch after the cluster went quiet)",
            "raw": raw,
            "adapter": adapter,
            "throughput_ratio": ratio(adapter["per_s"], raw["per_s"]),
        }

    async def _raw(self, names: list[str], clients: int) -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0

        async def one(name: str) -> None:
            nonlocal errors
            t = time.monotonic()
            try:
                patch = {"spec": {"cancelRequested": {"requestedAt": _now()}}}
                await self.api.merge_patch(f"{ij_collection(self.namespace)}/{name}", patch)
            except (ApiError, aiohttp.ClientError, TimeoutError):
                errors += 1
            latencies.append(time.monotonic() - t)

        wall = await run_concurrently(names, one, clients)
        return {"wall": wall, "latencies": latencies, "errors": errors, "error_kinds": {}}

    async def _adapter(self, names: list[str], clients: int) -> dict[str, Any]:
        latencies: list[float] = []
        errors: dict[str, int] = {}
        urls = {n: self._job_url(n) + "/cancel" for n in names}

        async def one(name: str) -> None:
            t = time.monotonic()
            try:
                async with self.http.post(urls[name], headers={"X-API-KEY": self.key}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors[str(resp.status)] = errors.get(str(resp.status), 0) + 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            latencies.append(time.monotonic() - t)

        wall = await run_concurrently(names, one, clients)
        return {"wall": wall, "latencies": latencies, "errors": sum(errors.values()), "error_kinds": errors}

    async def _settle(self, names: list[str], within: float) -> None:
        """Let the operator finish stopping these jobs, so one batch's aftermath never slows the next."""
        await wait_all(
            names, lambda n: self.jobs.reached(n, "CANCELLED") is not None, "reached CANCELLED", within
        )


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure for several batches: requests over their summed wall time, latencies pooled."""
    latencies = [x for r in runs for x in r["latencies"]]
    wall = sum(r["wall"] for r in runs)
    kinds: dict[str, int] = {}
    for r in runs:
        for k, v in r["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    return {
        "per_s": round(len(latencies) / wall, 1) if wall else 0.0,
        "errors": sum(r["errors"] for r in runs),
        "error_kinds": kinds,
        "batches_per_s": [round(len(r["latencies"]) / r["wall"], 1) for r in runs if r["wall"]],
        **summary_ms(latencies),
    }
