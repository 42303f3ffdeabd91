"""Where keys come from: a file (polled for changes) or a Kubernetes Secret (watched); both reload live."""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import json
import logging
import os
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio import client

from datajobs.adapter.keys import KEYS_DATA_KEY, ApiKey, KeyRing, KeysError, parse_keys
from datajobs.adapter.listwatch import ListWatch

logger = logging.getLogger(__name__)


class FileKeySource:
    """Keys from a YAML file, re-read when its mtime, size or inode changes.

    A file that becomes unreadable or malformed keeps the last good keys (an editor's half-written save
    must not lock everyone out); to revoke a key, remove its entry.
    """

    def __init__(self, path: Path, ring: KeyRing, poll_interval: float = 1.0) -> None:
        self.path = path
        self._ring = ring
        self._interval = poll_interval
        self._signature: tuple[int, int, int] | None = None
        self.source = f"file {path}"
        self.reloads = 0

    def _stat(self) -> tuple[int, int, int]:
        st = os.stat(self.path)
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def load(self) -> int:
        """Read and install the keys; raises KeysError or OSError. Returns the number of keys."""
        signature = self._stat()
        keys = parse_keys(self.path.read_text(encoding="utf-8"), self.source)
        self._ring.set_source(self.source, keys)
        self._signature = signature
        return len(keys)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                if self._stat() == self._signature:
                    continue
                count = self.load()
            except (OSError, KeysError, UnicodeDecodeError) as exc:
                logger.error("keeping the previous API keys: cannot reload %s: %s", self.source, exc)
                try:
                    self._signature = self._stat()
                except OSError:
                    self._signature = None
                continue
            self.reloads += 1
            logger.info("reloaded %d API key(s) from %s", count, self.source)


def keys_from_secret(secret: dict[str, Any], source: str) -> tuple[ApiKey, ...]:
    """Parse the keys document in a Secret object (as a dict); raises KeysError."""
    encoded = (secret.get("data") or {}).get(KEYS_DATA_KEY)
    if not isinstance(encoded, str):
        raise KeysError(f"{source}: no data key {KEYS_DATA_KEY!r}")
    try:
        text = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise KeysError(f"{source}: {KEYS_DATA_KEY!r} is not base64-encoded UTF-8") from None
    return parse_keys(text, source)


class SecretKeySource:
    """Keys from the `keys.yaml` entry of a Secret, kept current by a watch on that one Secret.

    Deleting the Secret revokes its keys; an update that does not parse keeps the last good keys.
    """

    def __init__(self, api: client.ApiClient, namespace: str, name: str, ring: KeyRing) -> None:
        self.namespace, self.name = namespace, name
        self._ring = ring
        self._core = client.CoreV1Api(api)
        self.source = f"Secret {namespace}/{name}"
        self.reloads = 0
        call = functools.partial(
            self._core.list_namespaced_secret, namespace, field_selector=f"metadata.name={name}"
        )
        self.watch = ListWatch(self.source, call, self)

    async def load(self) -> int:
        """Read the Secret now; raises KeysError when it is missing or malformed."""
        try:
            resp: Any = await self._core.read_namespaced_secret(
                self.name, self.namespace, _preload_content=False
            )
            try:
                status, raw = resp.status, await resp.read()
            finally:
                resp.release()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KeysError(f"{self.source}: cannot read: {type(exc).__name__}: {exc}") from None
        if status == 404:
            raise KeysError(f"{self.source}: not found")
        if status != 200:
            raise KeysError(f"{self.source}: cannot read (HTTP {status}: {raw[:200]!r})")
        body = json.loads(raw)
        keys = keys_from_secret(body, self.source)
        self._ring.set_source(self.source, keys)
        return len(keys)

    async def run(self) -> None:
        await self.watch.run()

    # WatchHandler: the watch delivers this one Secret (field selector on its name).
    def replace(self, items: list[dict[str, Any]]) -> None:
        if not items:
            self._revoke()
            return
        self.apply("MODIFIED", items[0])

    def apply(self, event_type: str, obj: dict[str, Any]) -> None:
        if event_type == "DELETED":
            self._revoke()
            return
        try:
            keys = keys_from_secret(obj, self.source)
        except KeysError as exc:
            logger.error("keeping the previous API keys: cannot reload %s: %s", self.source, exc)
            return
        self._ring.set_source(self.source, keys)
        self.reloads += 1
        logger.info("loaded %d API key(s) from %s", len(keys), self.source)

    def _revoke(self) -> None:
        self._ring.set_source(self.source, ())
        logger.warning("%s is gone: its API keys are revoked", self.source)
