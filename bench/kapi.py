"""A lean async client for the load generator: raw JSON over aiohttp with the admin client certificate."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

MERGE_PATCH = "application/merge-patch+json"


DELETE_COLLECTION_ATTEMPTS = 10


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str, what: str) -> None:
        super().__init__(f"{what}: HTTP {status}: {body[:300]}")
        self.status = status


class Kapi:
    """Talks to one API server; one connection pool shared by every request of the load generator."""

    def __init__(self, server: str, ca: Path, cert: Path, key: Path, connections: int = 128) -> None:
        self.server = server
        ctx = ssl.create_default_context(cafile=str(ca))
        ctx.load_cert_chain(str(cert), str(key))
        self._ssl = ctx
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Kapi:
        connector = aiohttp.TCPConnector(ssl=self._ssl, limit=self._connections)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use Kapi as an async context manager"
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        params: dict[str, str] | None = None,
        content_type: str = "application/json",
        within: float = 60.0,
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        async with self.session.request(
            method,
            self.server + path,
            data=data,
            params=params,
            headers={"Content-Type": content_type, "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=within),
        ) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise ApiError(resp.status, raw.decode(errors="replace"), f"{method} {path}")
        return json.loads(raw) if raw else None

    async def get_bytes(self, path: str, params: dict[str, str], within: float) -> bytes:
        """GET a non-JSON resource (a profile) as it comes."""
        async with self.session.get(
            self.server + path, params=params, timeout=aiohttp.ClientTimeout(total=within)
        ) as resp:
            raw = await resp.read()
            if resp.status >= 300:
                raise ApiError(resp.status, raw.decode(errors="replace"), f"GET {path}")
        return raw

    async def create(self, collection: str, body: dict[str, Any]) -> Any:
        return await self.request("POST", collection, body)

    async def merge_patch(self, path: str, patch: dict[str, Any]) -> Any:
        return await self.request("PATCH", path, patch, content_type=MERGE_PATCH)

    async def list(self, collection: str, **params: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", collection, params=params or None)
        return result

    async def count(self, collection: str) -> int:
        """How many objects `collection` holds (paged list, metadata only)."""
        total, token = 0, ""
        while True:
            params = {"limit": "2000", **({"continue": token} if token else {})}
            page = await self.list(collection, **params)
            total += len(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return total

    async def delete_collection(self, collection: str, grace_seconds: int | None = None) -> None:
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
        }
        if grace_seconds is not None:
            options["gracePeriodSeconds"] = grace_seconds
        for attempt in range(1, DELETE_COLLECTION_ATTEMPTS + 1):
            try:
                await self.request("DELETE", collection, options, within=600)
                return
            except ApiError as exc:
                # thousands of objects can outlast the server's own 60 s request timeout; what it deleted
                # stays deleted, so asking again finishes the rest
                if exc.status != 504 or attempt == DELETE_COLLECTION_ATTEMPTS:
                    raise
            except aiohttp.ServerDisconnectedError:
                if attempt == DELETE_COLLECTION_ATTEMPTS:  # (a loaded server may close it instead of a 504)
                    raise

    async def watch(self, collection: str, resource_version: str) -> AsyncIterator[bytes]:
        """Raw event lines of one watch from `resource_version` (with bookmarks) until the server ends it."""
        params = {
            "watch": "1",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": "3600",
        }
        async with self.session.get(
            self.server + collection,
            params=params,
            headers={"Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
            read_bufsize=1 << 22,
        ) as resp:
            if resp.status >= 300:
                raise ApiError(
                    resp.status, (await resp.read()).decode(errors="replace"), f"WATCH {collection}"
                )
            while True:
                line = await resp.content.readline()
                if not line:
                    return
                yield line
