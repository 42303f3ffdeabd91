"""The operator's HTTP session to the API server, built from the same kopf login its watches use."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_SECONDS = 30


class ApiError(Exception):
    """The API server answered with an error status."""

    def __init__(self, status: int, reason: str, body: bytes = b"") -> None:
        super().__init__(f"HTTP {status} {reason}")
        self.status = status
        self.reason = reason
        self.body = body

    @property
    def message(self) -> str:
        """The Status message the API server sent, else the HTTP reason."""
        try:
            return str(json.loads(self.body or b"").get("message", self.reason))
        except (TypeError, ValueError, AttributeError):
            return self.reason

    @staticmethod
    def of(status: int, reason: str, body: bytes = b"") -> ApiError:
        """The most specific error for a status: Conflict for 409, Gone for 404."""
        return {409: Conflict, 404: Gone}.get(status, ApiError)(status, reason, body)


class Conflict(ApiError):
    """The object changed since it was read (HTTP 409 on a resourceVersion precondition)."""


class Gone(ApiError):
    """The object no longer exists (HTTP 404)."""


class ApiSession:
    """JSON requests over one pooled aiohttp session; on 401 it logs in again once (rotated tokens)."""

    def __init__(self, login: Callable[[], kopf.ConnectionInfo | None], max_connections: int = 16) -> None:
        self._login = login
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self.server = ""

    def _connect(self) -> aiohttp.ClientSession:
        info = self._login()
        if info is None:
            raise kopf.PermanentError("no credentials: neither a kubeconfig nor a service account token")
        self.server = info.server.rstrip("/")
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=info.as_ssl_context()),
            headers={
                **info.as_http_headers(),
                "Accept": "application/json",
                "User-Agent": "datajobs-operator",
            },
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
            proxy=info.proxy_url,  # a kubeconfig's proxy-url, as kopf's own session uses it
            # the server comes from the kubeconfig or the pod's environment, never from proxy variables;
            # trust_env would also look up ~/.netrc in a thread on every request
            trust_env=False,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request; the decoded JSON answer, or ApiError with the server's status."""
        data = None if body is None else json.dumps(body).encode()
        status, reason, payload = await self._send(method, path, params, data, content_type)
        if status == 401:
            log.info("the API server refused our credentials (401): logging in again")
            await self.close()
            status, reason, payload = await self._send(method, path, params, data, content_type)
        if status >= 400:
            raise ApiError.of(status, reason, payload)
        return json.loads(payload) if payload else {}

    async def _send(
        self, method: str, path: str, params: dict[str, Any] | None, data: bytes | None, content_type: str
    ) -> tuple[int, str, bytes]:
        if self._session is None:
            self._session = self._connect()
        headers = {"Content-Type": content_type} if data is not None else None
        async with self._session.request(
            method, self.server + path, params=params, data=data, headers=headers
        ) as response:
            return response.status, response.reason or "", await response.read()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
