"""A de-duplicating, rate-limited work queue (like client-go's): one worker at a time per key, two lanes."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Hashable

from datajobs.core.backoff import ItemBackoff, TokenBucket

# client-go's DefaultControllerRateLimiter: per-item exponential backoff, and a shared bucket for all retries
ITEM_BACKOFF_BASE_SECONDS = 0.5
ITEM_BACKOFF_CAP_SECONDS = 300.0
RETRY_QPS, RETRY_BURST = 10.0, 100

URGENT, BACKGROUND = 0, 1


class WorkQueue:
    """Adding a key that is queued is a no-op; adding one being processed re-queues it once it is done.
    A failed key comes back after max(its own exponential delay, the shared retry bucket's wait).

    Keys added with `background=True` (a relist or resync: nothing happened to them) wait behind every
    urgent key (a watch event, a timer), like controller-runtime's priority queue: a cancel never waits in
    the queue behind a resync of 10,000 jobs. An urgent add of a key waiting in the background lane moves
    it forward."""

    def __init__(self, backoff: ItemBackoff | None = None, retry_bucket: TokenBucket | None = None) -> None:
        # entries (lane, sequence, key); an entry whose key has since moved lanes or left is skipped
        self._queue: asyncio.PriorityQueue[tuple[int, int, Hashable]] = asyncio.PriorityQueue()
        self._sequence = itertools.count()
        self._lane: dict[Hashable, int] = {}  # queued key -> its lane
        self._processing: set[Hashable] = set()
        self._dirty: dict[Hashable, int] = {}  # added while processing -> the most urgent lane asked for
        self._backoff = backoff or ItemBackoff(ITEM_BACKOFF_BASE_SECONDS, ITEM_BACKOFF_CAP_SECONDS)
        self._retry_bucket = retry_bucket or TokenBucket(RETRY_QPS, RETRY_BURST)

    def add(self, key: Hashable, background: bool = False) -> None:
        lane = BACKGROUND if background else URGENT
        if key in self._processing:
            self._dirty[key] = min(lane, self._dirty.get(key, lane))
            return
        queued = self._lane.get(key)
        if queued is None or lane < queued:
            self._lane[key] = lane
            self._queue.put_nowait((lane, next(self._sequence), key))

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
        while True:
            lane, _, key = await self._queue.get()
            if self._lane.get(key) == lane:
                break
        del self._lane[key]
        self._processing.add(key)
        return key

    def done(self, key: Hashable) -> None:
        self._processing.discard(key)
        lane = self._dirty.pop(key, None)
        if lane is not None:
            self.add(key, background=lane == BACKGROUND)

    def __len__(self) -> int:
        return len(self._lane)

    def backlog(self) -> tuple[int, int]:
        """Keys queued (urgent, background)."""
        urgent = sum(1 for lane in self._lane.values() if lane == URGENT)
        return urgent, len(self._lane) - urgent
