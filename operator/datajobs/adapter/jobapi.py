"""Reads and merge-patches one custom resource through the API server (the adapter's only writes)."""

from __future__ import annotations

import json
from typing import Any, Protocol

from kubernetes_asyncio import client

from datajobs.models import GROUP, VERSION, KindInfo

REQUEST_TIMEOUT_SECONDS = 30.0


class JobApiError(Exception):
    """The API server refused or failed a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class NotFound(JobApiError):
    pass


class Conflict(JobApiError):
    """The resourceVersion precondition failed: the object changed since it was read."""


class Invalid(JobApiError):
    """The API server rejected the patch (schema or CEL validation)."""


class JobApi(Protocol):
    async def get(self, kind: KindInfo, namespace: str, name: str) -> dict[str, Any]: ...

    async def merge_patch(
        self, kind: KindInfo, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...


class KubeJobApi:
    """JobApi over kubernetes_asyncio's CustomObjectsApi, with raw JSON (no model deserialisation)."""

    def __init__(self, api: client.ApiClient) -> None:
        self._custom = client.CustomObjectsApi(api)

    async def get(self, kind: KindInfo, namespace: str, name: str) -> dict[str, Any]:
        resp = await self._custom.get_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            kind.plural,
            name,
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )
        return await _result(resp)

    async def merge_patch(
        self, kind: KindInfo, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        resp = await self._custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            namespace,
            kind.plural,
            name,
            body,
            _content_type="application/merge-patch+json",  # type: ignore[call-arg]
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT_SECONDS,
        )
        return await _result(resp)


async def _result(resp: Any) -> dict[str, Any]:
    try:
        status, raw = resp.status, await resp.read()
    finally:
        resp.release()
    try:
        body = json.loads(raw)
    except ValueError:
        body = {"message": raw[:300].decode("utf-8", "replace")}
    if status == 200 or status == 201:
        return dict(body)
    message = str(body.get("message", "")) if isinstance(body, dict) else ""
    error_type = {404: NotFound, 409: Conflict, 422: Invalid}.get(status, JobApiError)
    raise error_type(status, message)
