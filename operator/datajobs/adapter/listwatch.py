"""A resilient list+watch loop over one Kubernetes collection that keeps a handler current (an informer)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp

logger = logging.getLogger(__name__)

ListCall = Callable[..., Awaitable[Any]]
"""A kubernetes_asyncio list function with its positional arguments bound (e.g. via functools.partial)."""

LIST_PAGE_SIZE = 500
LIST_TIMEOUT_SECONDS = 60.0


class WatchHandler(Protocol):
    """Receives the collection: a full replacement after each list, then one call per watch event."""

    def replace(self, items: list[dict[str, Any]]) -> None: ...

    def apply(self, event_type: str, obj: dict[str, Any]) -> None: ...


class ResourceVersionGone(Exception):
    """The resourceVersion we watch from is too old (HTTP 410): the collection must be listed again."""


class WatchFailed(Exception):
    """The API server answered the list or watch with an error other than 410."""


class ListWatch:
    """List once, then watch from the list's resourceVersion; relist on 410 Gone, reconnect on errors."""

    def __init__(
        self,
        name: str,
        list_call: ListCall,
        handler: WatchHandler,
        *,
        watch_timeout_seconds: int = 290,
        backoff_initial: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        self.name = name
        self._list_call = list_call
        self._handler = handler
        self._watch_timeout = watch_timeout_seconds
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self.synced = asyncio.Event()
        self.lists = 0
        self.errors = 0
        self.resource_version: str | None = None

    async def run(self) -> None:
        """Run until cancelled. `synced` is set after the first successful list and stays set."""
        backoff = self._backoff_initial
        while True:
            try:
                if self.resource_version is None:
                    self.resource_version = await self._list()
                    self.synced.set()
                self.resource_version = await self._watch(self.resource_version)
                backoff = self._backoff_initial
            except ResourceVersionGone:
                logger.info(
                    "watch %s: resourceVersion %s expired, relisting", self.name, self.resource_version
                )
                self.resource_version = None
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.errors += 1
                logger.warning(
                    "watch %s failed (%s: %s); retrying in %.1fs", self.name, type(exc).__name__, exc, backoff
                )
                await asyncio.sleep(backoff * (0.5 + random.random()))
                backoff = min(backoff * 2, self._backoff_max)

    async def _list(self) -> str:
        items: list[dict[str, Any]] = []
        continue_token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
            if continue_token:
                kwargs["_continue"] = continue_token
            resp = await self._list_call(
                **kwargs, _preload_content=False, _request_timeout=LIST_TIMEOUT_SECONDS
            )
            try:
                body = await resp.read()
                if resp.status == 410:
                    raise ResourceVersionGone()
                if resp.status != 200:
                    raise WatchFailed(f"list returned HTTP {resp.status}: {body[:300]!r}")
            finally:
                resp.release()
            page = json.loads(body)
            items.extend(page.get("items") or [])
            metadata = page.get("metadata") or {}
            continue_token = metadata.get("continue") or None
            if not continue_token:
                self.lists += 1
                self._handler.replace(items)
                logger.debug(
                    "watch %s: listed %d objects at %s",
                    self.name,
                    len(items),
                    metadata.get("resourceVersion"),
                )
                return str(metadata["resourceVersion"])

    async def _watch(self, resource_version: str) -> str:
        resp = await self._list_call(
            watch=True,
            resource_version=resource_version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout,
            _preload_content=False,
            _request_timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=10, sock_read=self._watch_timeout + 30
            ),
        )
        try:
            if resp.status == 410:
                raise ResourceVersionGone()
            if resp.status != 200:
                raise WatchFailed(f"watch returned HTTP {resp.status}: {(await resp.read())[:300]!r}")
            while True:
                line = await resp.content.readline()
                if not line:
                    return resource_version  # the server ended the watch (timeout): watch again from here
                if not line.strip():
                    continue
                event = json.loads(line)
                event_type = event.get("type")
                obj = event.get("object") or {}
                if event_type == "ERROR":
                    if obj.get("code") == 410:
                        raise ResourceVersionGone()
                    raise WatchFailed(f"watch error event: {obj.get('message')}")
                new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                if event_type in ("ADDED", "MODIFIED", "DELETED"):
                    self._handler.apply(event_type, obj)
                if new_rv:
                    resource_version = str(new_rv)
        finally:
            resp.close()
