"""The load generator's building blocks: bounded concurrency, paced (open-loop) sends, bulk creation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import aiohttp

from bench.kapi import ApiError, Kapi

T = TypeVar("T")
RETRYABLE = (429, 500, 502, 503, 504)


async def run_concurrently(items: Sequence[T], fn: Callable[[T], Awaitable[None]], concurrency: int) -> float:
    """Apply `fn` to every item with at most `concurrency` in flight (closed loop); returns wall seconds."""
    it = iter(items)

    async def worker() -> None:
        for item in it:  # one shared iterator: each item goes to exactly one worker
            await fn(item)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(items))))))
    return time.monotonic() - started


async def paced(items: Sequence[T], fn: Callable[[T], Awaitable[None]], rate: float) -> None:
    """Start `fn(item)` at a fixed rate regardless of how long each takes (open loop), then await them all."""
    start = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    for i, item in enumerate(items):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)  # pacing the load, not waiting for the system
        tasks.append(asyncio.create_task(_call(fn, item)))
    await asyncio.gather(*tasks)


async def _call(fn: Callable[[T], Awaitable[None]], item: T) -> None:
    await fn(item)


async def create_all(
    api: Kapi, collection: str, bodies: Sequence[dict[str, Any]], concurrency: int
) -> dict[str, float]:
    """Create every object with `concurrency` creators; returns the time each create was first sent."""
    sent: dict[str, float] = {}

    async def create(body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        sent[name] = time.monotonic()
        for attempt in range(8):
            try:
                await api.create(collection, body)
                return
            except ApiError as exc:
                if exc.status == 409:
                    return  # a retried create that had succeeded
                if exc.status not in RETRYABLE or attempt == 7:
                    raise
            except (aiohttp.ClientError, TimeoutError):
                if attempt == 7:
                    raise
            await asyncio.sleep(0.1 * 2**attempt)

    await run_concurrently(bodies, create, concurrency)
    return sent
