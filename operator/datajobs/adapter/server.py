"""Start and stop the adapter as one unit: keys, Kubernetes client, job cache and HTTP site."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from kubernetes_asyncio import client

from datajobs.adapter.app import build_app
from datajobs.adapter.cache import JobCache
from datajobs.adapter.cancel import AfterRead, Canceller
from datajobs.adapter.handlers import AdapterState
from datajobs.adapter.jobapi import KubeJobApi
from datajobs.adapter.keys import KeyRing, KeysError
from datajobs.adapter.keysources import FileKeySource, SecretKeySource
from datajobs.adapter.metrics import AdapterMetrics
from datajobs.kube.config import new_api_client

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StartupError(Exception):
    """The adapter cannot start (no keys, unreadable keys, no cluster access); the message says why."""


@dataclass
class AdapterConfig:
    host: str = "0.0.0.0"
    port: int = 8080
    kubeconfig: str | None = None
    context: str | None = None
    namespaces: tuple[str, ...] = ()
    api_keys_file: Path | None = None
    api_keys_secret: tuple[str, str] | None = None  # (namespace, name)
    keys_poll_interval: float = 1.0
    max_body_bytes: int = 64 * 1024
    max_attempts: int = 16
    after_read: AfterRead | None = field(default=None, repr=False)  # test seam, see cancel.AfterRead


class Adapter:
    """One running adapter. `start()` raises StartupError before serving anything when keys are missing."""

    def __init__(self, config: AdapterConfig) -> None:
        self.config = config
        self.keys = KeyRing()
        self.metrics = AdapterMetrics()
        self.api: client.ApiClient | None = None
        self.cache: JobCache | None = None
        self.file_keys: FileKeySource | None = None
        self.secret_keys: SecretKeySource | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.port: int | None = None

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        cfg = self.config
        if cfg.api_keys_file is None and cfg.api_keys_secret is None:
            raise StartupError(
                "no API keys configured: pass --api-keys-file and/or --api-keys-secret "
                "(the adapter never runs without keys)"
            )
        if cfg.api_keys_file is not None:
            self.file_keys = FileKeySource(cfg.api_keys_file, self.keys, cfg.keys_poll_interval)
            try:
                self.file_keys.load()
            except (OSError, KeysError, UnicodeDecodeError) as exc:
                raise StartupError(f"cannot load API keys: {exc}") from None
        if cfg.api_keys_secret is None and not len(self.keys):
            raise StartupError("no API keys configured: the keys document lists no key")
        try:
            self.api = await new_api_client(cfg.kubeconfig, cfg.context)
        except Exception as exc:
            raise StartupError(
                f"cannot configure the Kubernetes client: {type(exc).__name__}: {exc}"
            ) from None
        try:
            if cfg.api_keys_secret is not None:
                namespace, name = cfg.api_keys_secret
                self.secret_keys = SecretKeySource(self.api, namespace, name, self.keys)
                try:
                    await self.secret_keys.load()
                except KeysError as exc:
                    raise StartupError(f"cannot load API keys: {exc}") from None
            if not len(self.keys):
                raise StartupError("no API keys configured: the keys document lists no key")
            await self._serve(self.api)
        except BaseException:
            await self.stop()
            raise
        logger.info(
            "adapter listening on %s (%d API key(s): %s; namespaces: %s)",
            self.url,
            len(self.keys),
            ", ".join(self.keys.names()),
            ", ".join(cfg.namespaces) or "all",
        )

    async def _serve(self, api: client.ApiClient) -> None:
        cfg = self.config
        self.cache = JobCache(api, cfg.namespaces)
        self.cache.start()
        for source in (self.file_keys, self.secret_keys):
            if source is not None:
                self._tasks.append(asyncio.create_task(source.run(), name=f"keys {source.source}"))
        canceller = Canceller(
            KubeJobApi(api),
            max_attempts=cfg.max_attempts,
            after_read=cfg.after_read,
            on_conflict=self.metrics.count_conflict,
        )
        state = AdapterState(
            keys=self.keys,
            cache=self.cache,
            canceller=canceller,
            metrics=self.metrics,
            max_body_bytes=cfg.max_body_bytes,
        )
        self._runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, cfg.host, cfg.port, backlog=1024)
        try:
            await site.start()
        except OSError as exc:
            raise StartupError(f"cannot listen on {cfg.host}:{cfg.port}: {exc}") from None
        self.port = int(self._runner.addresses[0][1])

    async def wait_synced(self) -> None:
        assert self.cache is not None
        await self.cache.wait_synced()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.cache is not None:
            await self.cache.stop()
        if self.api is not None:
            await self.api.close()
            self.api = None


class ThreadedAdapter:
    """An Adapter on its own event loop in a daemon thread: for tests and for embedding in sync code."""

    def __init__(self, config: AdapterConfig) -> None:
        self.adapter = Adapter(config)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="datajobs-adapter", daemon=True)

    @property
    def url(self) -> str:
        return self.adapter.url

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run a coroutine on the adapter's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self, timeout: float = 60, wait_synced: bool = True) -> ThreadedAdapter:
        self._thread.start()
        try:
            self.run(self.adapter.start(), timeout)
            if wait_synced:
                self.run(self.adapter.wait_synced(), timeout)
        except BaseException:
            self._shutdown()
            raise
        return self

    def stop(self, timeout: float = 30) -> None:
        try:
            self.run(self.adapter.stop(), timeout)
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> ThreadedAdapter:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


async def run_until(adapter: Adapter, stop: Callable[[], Awaitable[object]]) -> None:
    """Start the adapter, serve until `stop()` returns, then stop it (StartupError propagates)."""
    await adapter.start()
    try:
        await stop()
    finally:
        await adapter.stop()
