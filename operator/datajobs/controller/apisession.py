"""The operator's HTTP session to the API server (kopf's login), with client-go's retry and rate limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import kopf

from datajobs.controller import metrics
from datajobs.core.backoff import (
    Backoff,
    ConcurrencyWindow,
    TokenBucket,
    retry_after_seconds,
    retry_delay,
    should_retry,
)

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_SECONDS = 30
LIST_PAGE_SIZE = 500
WATCH_TIMEOUT_SECONDS = 600  # the server ends a watch after this long; it is opened again from where it was
REQUEST_BACKOFF = Backoff(base=0.2, cap=10.0)  # 8 retries span about 30 s
CONNECTION_ERRORS = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError)


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
        """The most specific error for a status: Conflict for 409, Gone for 404, Expired for 410."""
        return {409: Conflict, 404: Gone, 410: Expired}.get(status, ApiError)(status, reason, body)


class Conflict(ApiError):
    """The object changed since it was read (HTTP 409 on a resourceVersion precondition)."""


class Gone(ApiError):
    """The object no longer exists (HTTP 404)."""


class Expired(ApiError):
    """A list's continue token (or a resourceVersion) is too old (HTTP 410)."""


class ApiSession:
    """JSON requests over one pooled aiohttp session, like client-go's REST client: a client-side rate limit
    (qps/burst); retries with exponential backoff and jitter on 429, 5xx and connection errors, waiting at
    least the server's Retry-After (a 429 pauses every request of this session, not just the one refused,
    and halves how many may be in flight: see ConcurrencyWindow);
    on a 401 a fresh login whose new session serves every later request while the old one is closed only
    once the requests still using it are over.

    Retrying a write is safe here: every write the operator makes is idempotent or guarded (deterministic pod
    names, resourceVersion preconditions on status and counter writes), so a write that landed before its
    answer was lost fails its retry with 409/404, which callers already handle.
    """

    def __init__(
        self,
        login: Callable[[], kopf.ConnectionInfo | None],
        max_connections: int = 16,
        *,
        qps: float = 500.0,
        burst: int = 1000,
        max_retries: int = 8,
        backoff: Backoff = REQUEST_BACKOFF,
        watches: int = 0,
    ) -> None:
        self._login = login
        self._max_connections = max_connections
        self._watches = watches  # long-lived watch streams: connections of their own, outside the window
        self._session: aiohttp.ClientSession | None = None
        self._retiring: dict[asyncio.Task[None], aiohttp.ClientSession] = {}
        self._bucket = TokenBucket(qps, burst)
        self._window = ConcurrencyWindow(max_connections)
        self._in_flight = 0
        self._turns = asyncio.Condition()
        self._max_retries = max_retries
        self._backoff = backoff
        self._not_before = 0.0  # monotonic: no request leaves before (a 429's Retry-After)
        self.server = ""
        self.reachable = True  # False from a connection error or 5xx until the next answer below 500
        self.on_reconnect: Callable[[], None] | None = None

    def _connect(self) -> aiohttp.ClientSession:
        info = self._login()
        if info is None:
            raise kopf.PermanentError("no credentials: neither a kubeconfig nor a service account token")
        self.server = info.server.rstrip("/")
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._max_connections + self._watches, ssl=info.as_ssl_context()
            ),
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
        raw: bool = False,
        max_retries: int | None = None,
    ) -> dict[str, Any]:
        """Send one request (retried as above); the decoded JSON answer, or ApiError with the status.
        raw: the answer is not JSON (a pod's log): {"text": its bytes decoded as UTF-8}.
        max_retries: fewer retries than the session's (a best-effort read that must not hold anything up)."""
        retries = self._max_retries if max_retries is None else max_retries
        data = None if body is None else json.dumps(body).encode()
        logged_in_again = False
        attempt = 0
        while True:
            await self._wait_turn()
            session = self._session_now()
            try:
                async with self._in_window():
                    status, reason, headers, payload = await self._send(
                        session, method, path, params, data, content_type
                    )
            except CONNECTION_ERRORS as exc:
                metrics.API_REQUESTS.labels(method=method, code="error").inc()
                self._unreachable()
                if attempt >= retries:
                    raise
                delay = self._backoff.delay(attempt)
                metrics.API_RETRIES.labels(reason="connection").inc()
                log.debug("%s %s: %s; retrying in %.2fs", method, path, type(exc).__name__, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            metrics.API_REQUESTS.labels(method=method, code=str(status)).inc()
            if status == 429:
                self._window.throttled()
            else:
                self._window.answered()
            if status >= 500:
                self._unreachable()  # up, but its storage (etcd) is not
            else:
                self._reached()
            if status == 401 and not logged_in_again:
                log.info("the API server refused our credentials (401): logging in again")
                self._retire(session)
                logged_in_again = True
                continue
            if should_retry(status) and attempt < retries:
                delay = retry_delay(status, attempt, retry_after_seconds(headers, time.time()), self._backoff)
                if status == 429:
                    self._not_before = max(self._not_before, time.monotonic() + delay)
                    metrics.API_THROTTLED_SECONDS.inc(delay)
                metrics.API_RETRIES.labels(reason=str(status)).inc()
                log.debug("%s %s: HTTP %d; retrying in %.2fs", method, path, status, delay)
                attempt += 1
                await asyncio.sleep(delay)
                continue
            if status >= 400:
                raise ApiError.of(status, reason, payload)
            if raw:
                return {"text": payload.decode("utf-8", "replace")}
            return json.loads(payload) if payload else {}

    async def pages(
        self, path: str, params: dict[str, Any] | None = None
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """A collection page by page (limit/continue, LIST_PAGE_SIZE items), each with the list's
        resourceVersion (one snapshot for all pages). If the continue token expires (410) the list starts
        over, as client-go's pager does: a consumer may see an object twice, never miss one."""
        query = {**(params or {}), "limit": str(LIST_PAGE_SIZE)}
        token = ""
        while True:
            try:
                page = await self.request(
                    "GET", path, params={**query, "continue": token} if token else query
                )
            except Expired:
                if not token:
                    raise
                log.info("list %s: continue token expired; listing again from the start", path)
                token = ""
                continue
            meta = page.get("metadata") or {}
            yield page.get("items") or [], str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or ""
            if not token:
                return

    async def watch(self, path: str, params: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """A watch's events as they arrive (one JSON object a line) until the server ends the watch; an
        error status raises ApiError (Expired for 410), a broken connection one of CONNECTION_ERRORS. Not
        retried here: the caller resumes from the last resourceVersion it saw."""
        await self._wait_turn()
        session = self._session_now()
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=REQUEST_TIMEOUT_SECONDS, sock_read=WATCH_TIMEOUT_SECONDS + 60
        )
        query = {**params, "watch": "true", "timeoutSeconds": str(WATCH_TIMEOUT_SECONDS)}
        try:
            async with session.get(self.server + path, params=query, timeout=timeout) as response:
                metrics.API_REQUESTS.labels(method="WATCH", code=str(response.status)).inc()
                if response.status == 401:
                    self._retire(session)  # the next attempt logs in again
                if response.status >= 400:
                    raise ApiError.of(response.status, response.reason or "", await response.read())
                self._reached()
                pending: list[bytes] = []
                async for chunk in response.content.iter_any():
                    if b"\n" not in chunk:
                        pending.append(chunk)  # a large object arrives in several chunks
                        continue
                    pending.append(chunk)
                    *lines, rest = b"".join(pending).split(b"\n")
                    pending = [rest] if rest else []
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except CONNECTION_ERRORS:
            metrics.API_REQUESTS.labels(method="WATCH", code="error").inc()
            self._unreachable()
            raise

    async def _wait_turn(self) -> None:
        delay = self._bucket.reserve(time.monotonic())
        pause = self._not_before - time.monotonic()
        if max(delay, pause) > 0:
            await asyncio.sleep(max(delay, pause))

    @contextlib.asynccontextmanager
    async def _in_window(self) -> AsyncIterator[None]:
        async with self._turns:
            await self._turns.wait_for(lambda: self._in_flight < self._window.size)
            self._in_flight += 1
        try:
            yield
        finally:
            async with self._turns:
                self._in_flight -= 1
                self._turns.notify_all()

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = self._connect()
        return self._session

    def _retire(self, session: aiohttp.ClientSession) -> None:
        """Stop handing out `session` (the next request logs in again); close it once what still uses it is
        over: requests cannot outlive their timeout, so closing after it never cuts one off."""
        if self._session is not session:
            return  # another request already logged in again
        self._session = None

        async def close_later() -> None:
            await asyncio.sleep(REQUEST_TIMEOUT_SECONDS + 1)
            await session.close()

        task = asyncio.create_task(close_later())
        self._retiring[task] = session
        task.add_done_callback(lambda t: self._retiring.pop(t, None))

    def _unreachable(self) -> None:
        self.reachable = False

    def _reached(self) -> None:
        if not self.reachable:
            self.reachable = True
            log.info("the API server answers again")
            if self.on_reconnect is not None:
                self.on_reconnect()

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        data: bytes | None,
        content_type: str,
    ) -> tuple[int, str, dict[str, str], bytes]:
        headers = {"Content-Type": content_type} if data is not None else None
        async with session.request(
            method, self.server + path, params=params, data=data, headers=headers
        ) as response:
            return response.status, response.reason or "", dict(response.headers), await response.read()

    async def close(self) -> None:
        for task, retired in list(self._retiring.items()):
            task.cancel()
            await retired.close()
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
