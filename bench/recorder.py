"""Watch-based clocks: the first time (bench-side, monotonic) each pod or job was seen in each state."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from bench.kapi import ApiError, Kapi

log = logging.getLogger(__name__)

JOB_LABELS = ("datajobs.io/job", "batch.kubernetes.io/job-name", "job-name")


def job_of_pod(pod: dict[str, Any]) -> str:
    labels = pod["metadata"].get("labels") or {}
    return str(next((labels[k] for k in JOB_LABELS if k in labels), pod["metadata"]["name"]))


class Recorder:
    """List, then watch `collection`; `observe(obj, event_type, t)` turns each event into timestamps."""

    def __init__(self, api: Kapi, collection: str) -> None:
        self.api = api
        self.collection = collection
        self.events = 0
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch {self.collection}")
        await asyncio.wait_for(self._synced.wait(), 60)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def observe(self, obj: dict[str, Any], event_type: str, t: float) -> None:
        raise NotImplementedError

    async def _run(self) -> None:
        rv = ""
        while True:
            try:
                if not rv:
                    listing = await self.api.list(self.collection)
                    now = time.monotonic()
                    for item in listing.get("items") or []:
                        self.observe(item, "ADDED", now)
                    rv = listing["metadata"]["resourceVersion"]
                    self._synced.set()
                async for line in self.api.watch(self.collection, rv):
                    t = time.monotonic()
                    event = json.loads(line)
                    obj = event["object"]
                    if event["type"] == "ERROR":
                        if obj.get("code") == 410:
                            rv = ""  # expired: list again
                            break
                        raise ApiError(int(obj.get("code") or 500), str(obj.get("message")), "watch")
                    rv = obj["metadata"]["resourceVersion"]
                    if event["type"] != "BOOKMARK":
                        self.events += 1
                        self.observe(obj, event["type"], t)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("watch of %s broke (%s); resuming", self.collection, exc)
                await asyncio.sleep(0.5)


class PodClock(Recorder):
    """Per job name (from the pod's labels): first seen, first Running, deletion requested, deleted."""

    def __init__(self, api: Kapi, namespace: str) -> None:
        super().__init__(api, f"/api/v1/namespaces/{namespace}/pods")
        self.seen: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.deleting: dict[str, float] = {}
        self.deleted: dict[str, float] = {}

    def observe(self, obj: dict[str, Any], event_type: str, t: float) -> None:
        job = job_of_pod(obj)
        self.seen.setdefault(job, t)
        if event_type == "DELETED":
            self.deleted.setdefault(job, t)
            self.deleting.setdefault(job, t)
            return
        if obj["metadata"].get("deletionTimestamp"):
            self.deleting.setdefault(job, t)
        elif (obj.get("status") or {}).get("phase") == "Running":
            self.running.setdefault(job, t)


class JobClock(Recorder):
    """Per job name: the first time each value of status.status was seen (custom resources; a batch/v1
    Job has no status.status, its watch only keeps the peer's load generator the same as ours)."""

    def __init__(self, api: Kapi, collection: str) -> None:
        super().__init__(api, collection)
        self.status: dict[str, dict[str, float]] = {}
        self.objects: dict[str, dict[str, Any]] = {}

    def observe(self, obj: dict[str, Any], event_type: str, t: float) -> None:
        name = obj["metadata"]["name"]
        if event_type == "DELETED":
            self.objects.pop(name, None)
            return
        self.objects[name] = obj
        value = (obj.get("status") or {}).get("status")
        if value:
            self.status.setdefault(name, {}).setdefault(value, t)

    def reached(self, name: str, value: str) -> float | None:
        return self.status.get(name, {}).get(value)


async def wait_all(
    names: Iterable[str], seen: Callable[[str], bool], what: str, within: float, poll: float = 0.05
) -> None:
    """Poll (the recorders' in-memory maps) until `seen(name)` holds for every name, or fail naming some."""
    pending = list(names)
    deadline = time.monotonic() + within
    while True:
        pending = [n for n in pending if not seen(n)]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(pending)} never {what} within {within:.0f} s (e.g. {pending[:3]})")
        await asyncio.sleep(poll)
