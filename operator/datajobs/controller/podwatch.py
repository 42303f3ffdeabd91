"""The engine's own informer of worker pods: a watch from a list's resourceVersion, resumed where it broke.

kopf's pod watch kept a memory of every pod (~1 KB each, until the pod is deleted) and ran its per-event
machinery on the operator's busiest path (three pod events per dispatched job); the engine needs neither.
Like client-go's reflector: each event moves the resourceVersion on (bookmarks too), a watch the server
ends is opened again from there, a broken one after a backoff, and a 410 (the revision is older than the
server keeps) lists the pods again, which also drops the ones deleted meanwhile."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from datajobs.controller.apisession import CONNECTION_ERRORS, ApiError, Expired
from datajobs.core.backoff import Backoff

log = logging.getLogger("datajobs.operator")
WATCH_RETRY = Backoff(base=0.5, cap=30.0)
SHORT_WATCH_SECONDS = 1.0  # a watch that ends sooner with no events is a failure (client-go's rule too)


class PodWatchIO(Protocol):
    def watch_pods(
        self, namespace: str | None, selector: str, resource_version: str
    ) -> AsyncIterator[dict[str, Any]]: ...


class PodInformer:
    """`run(resource_version)` feeds `on_event(type, pod)` until cancelled; `relist(namespace)` lists the
    pods again (feeding them the same way) and returns the list's resourceVersion."""

    def __init__(
        self,
        io: PodWatchIO,
        namespace: str | None,
        selector: str,
        relist: Callable[[str | None], Awaitable[str]],
        on_event: Callable[[str, dict[str, Any]], None],
        backoff: Backoff = WATCH_RETRY,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.io = io
        self.namespace = namespace
        self.selector = selector
        self.relist = relist
        self.on_event = on_event
        self.backoff = backoff
        self.sleep = sleep
        self.resource_version = ""

    async def run(self, resource_version: str) -> None:
        self.resource_version = resource_version
        failures = 0
        while True:
            try:
                if not self.resource_version:
                    self.resource_version = await self.relist(self.namespace)
                started = time.monotonic()
                events = await self._watch_once()
                if events == 0 and time.monotonic() - started < SHORT_WATCH_SECONDS:
                    # ended at once with nothing in it (the server's storage away, say): like client-go's
                    # reflector, take it as a failure and back off rather than ask again in a tight loop
                    raise ApiError(503, "the watch ended at once with no events")
                failures = 0  # the server ended the watch: open it again from where it was
            except Expired:
                log.info("pod watch (%s): its revision expired; listing again", self._scope)
                self.resource_version = ""
            except Exception as exc:  # anything else too: a dead informer would leave the view stale
                delay = self.backoff.delay(failures)
                failures += 1
                expected = isinstance(exc, (ApiError, *CONNECTION_ERRORS))
                log.warning(
                    "pod watch (%s) broke, again in %.1fs: %s",
                    self._scope,
                    delay,
                    exc,
                    exc_info=None if expected else exc,
                )
                await self.sleep(delay)

    @property
    def _scope(self) -> str:
        return self.namespace or "all namespaces"

    async def _watch_once(self) -> int:
        """One watch, to its end; how many events it delivered (bookmarks included)."""
        events = 0
        async for event in self.io.watch_pods(self.namespace, self.selector, self.resource_version):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                raise ApiError.of(code, str(obj.get("reason") or ""), json.dumps(obj).encode())
            self.resource_version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if not self.resource_version:
                raise ApiError(500, f"a {kind} event without a resourceVersion")
            events += 1
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.on_event(kind, obj)
        return events
