"""A de-duplicating, rate-limited work queue (like client-go's): one worker at a time per key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable

from datajobs.core.backoff import ItemBackoff, TokenBucket

# client-go's DefaultControllerRateLimiter: per-item exponential backoff, and a shared bucket for all retries
ITEM_BACKOFF_BASE_SECONDS = 0.5
ITEM_BACKOFF_CAP_SECONDS = 300.0
RETRY_QPS, RETRY_BURST = 10.0, 100


class WorkQueue:
    """Adding a key that is queued is a no-op; adding one being processed re-queues it once it is done.
    A failed key comes back after max(its own exponential delay, the shared retry bucket's wait)."""

    def __init__(self, backoff: ItemBackoff | None = None, retry_bucket: TokenBucket | None = None) -> None:
        self._queue: asyncio.Queue[Hashable] = asyncio.Queue()
        self._queued: set[Hashable] = set()
        self._processing: set[Hashable] = set()
        self._dirty: set[Hashable] = set()
        self._backoff = backoff or ItemBackoff(ITEM_BACKOFF_BASE_SECONDS, ITEM_BACKOFF_CAP_SECONDS)
        self._retry_bucket = retry_bucket or TokenBucket(RETRY_QPS, RETRY_BURST)

    def add(self, key: Hashable) -> None:
        if key in self._processing:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Hashable, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    def add_rate_limited(self, key: Hashable) -> float:
        """Re-queue a key whose processing failed; returns the delay chosen."""
        delay = max(self._backoff.next_delay(key), self._retry_bucket.reserve(time.monotonic()))
        self.add_after(key, delay)
        return delay

    def forget(self, key: Hashable) -> None:
        """The key was processed successfully: its next failure starts from the base delay again."""
        self._backoff.forget(key)

    def failures(self, key: Hashable) -> int:
        return self._backoff.failures(key)

    async def get(self) -> Hashable:
        key = await self._queue.get()
        self._queued.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)

    def __len__(self) -> int:
        return len(self._queued)
