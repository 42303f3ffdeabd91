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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

from datajobs.controller.apisession import CONNECTION_ERRORS, ApiError, Expired
from datajobs.core.backoff import Backoff

log = logging.getLogger("datajobs.operator")
WATCH_RETRY = Backoff(base=0.5, cap=30.0)


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
    ) -> None:
        self.io = io
        self.namespace = namespace
        self.selector = selector
        self.relist = relist
        self.on_event = on_event
        self.backoff = backoff
        self.resource_version = ""
        self.watches = 0  # watches opened (for tests and logs)

    async def run(self, resource_version: str) -> None:
        self.resource_version = resource_version
        failures = 0
        while True:
            try:
                if not self.resource_version:
                    self.resource_version = await self.relist(self.namespace)
                await self._watch_once()
                failures = 0  # the server ended the watch: open it again from where it was
            except Expired:
                log.info("pod watch (%s): its revision expired; listing again", self._scope)
                self.resource_version = ""
            except (ApiError, *CONNECTION_ERRORS) as exc:
                delay = self.backoff.delay(failures)
                failures += 1
                log.warning("pod watch (%s) broke, again in %.1fs: %s", self._scope, delay, exc)
                await asyncio.sleep(delay)

    @property
    def _scope(self) -> str:
        return self.namespace or "all namespaces"

    async def _watch_once(self) -> None:
        self.watches += 1
        async for event in self.io.watch_pods(self.namespace, self.selector, self.resource_version):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                raise ApiError.of(code, str(obj.get("reason") or ""), json.dumps(obj).encode())
            self.resource_version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if not self.resource_version:
                raise ApiError(500, f"a {kind} event without a resourceVersion")
            if kind in ("ADDED", "MODIFIED", "DELETED"):
                self.on_event(kind, obj)
