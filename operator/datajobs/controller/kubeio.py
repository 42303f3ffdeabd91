"""Every API call the operator makes, as raw JSON over its own API session."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

from datajobs.controller.apisession import ApiError, ApiSession, Conflict, Gone
from datajobs.core.workerpod import ANNOTATION_CANCEL_MODE
from datajobs.models.kinds import GROUP, KINDS, VERSION, KindInfo

log = logging.getLogger(__name__)
MERGE_PATCH = "application/merge-patch+json"
KIND_BY_NAME: dict[str, KindInfo] = {k.kind: k for k in KINDS}


class NotOurPod(Exception):
    """The pod under the worker's name is not the one we meant (another uid): nothing was changed."""


class KubeIO:
    """A thin async client: job status writes with preconditions, pods, events, the counter ConfigMap."""

    def __init__(self, api: ApiSession, field_manager: str = "datajobs-operator") -> None:
        self.api = api
        self.field_manager = field_manager

    # -- jobs ------------------------------------------------------------------------------------------

    @staticmethod
    def job_path(kind: str, namespace: str | None, name: str | None = None) -> str:
        plural = KIND_BY_NAME[kind].plural
        base = f"/apis/{GROUP}/{VERSION}"
        path = f"{base}/namespaces/{quote(namespace)}/{plural}" if namespace else f"{base}/{plural}"
        return f"{path}/{quote(name)}" if name else path

    def job_pages(self, kind: str, namespace: str | None) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """Every job of a kind, page by page, each with the list's resourceVersion."""
        return self.api.pages(self.job_path(kind, namespace))

    async def get_job(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return await self.api.request("GET", self.job_path(kind, namespace, name))

    async def write_status(self, kind: str, body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource, only if the job is still at the resourceVersion we read."""
        meta = body["metadata"]
        patch = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        return await self.api.request(
            "PATCH",
            self.job_path(kind, meta["namespace"], meta["name"]) + "/status",
            params={"fieldManager": self.field_manager},
            body=patch,
            content_type=MERGE_PATCH,
        )

    async def delete_job(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete the job only if it is still the one with `uid`; what it owns is garbage-collected."""
        await self.api.request(
            "DELETE",
            self.job_path(kind, namespace, name),
            body={
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "propagationPolicy": "Background",
                "preconditions": {"uid": uid},
            },
        )

    # -- pods ------------------------------------------------------------------------------------------

    def pod_pages(
        self, namespace: str | None, selector: str
    ) -> AsyncIterator[tuple[list[dict[str, Any]], str]]:
        """Every pod matching `selector`, page by page, each with the list's resourceVersion."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods" if namespace else "/api/v1/pods"
        return self.api.pages(path, {"labelSelector": selector})

    def watch_pods(
        self, namespace: str | None, selector: str, resource_version: str
    ) -> AsyncIterator[dict[str, Any]]:
        """The watch events of pods matching `selector` after `resource_version` (with bookmarks)."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods" if namespace else "/api/v1/pods"
        params = {"labelSelector": selector, "resourceVersion": resource_version}
        return self.api.watch(path, {**params, "allowWatchBookmarks": "true"})

    async def create_pod(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """Create the pod; None when a pod of that name already exists (ours from before a crash, or
        someone else's: the caller reads it and checks whose it is)."""
        namespace = pod["metadata"]["namespace"]
        try:
            return await self.api.request(
                "POST",
                f"/api/v1/namespaces/{quote(namespace)}/pods",
                params={"fieldManager": self.field_manager},
                body=pod,
            )
        except Conflict:
            return None

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.api.request("GET", f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}")

    async def pod_log(
        self, namespace: str, name: str, container: str, tail_lines: int, limit_bytes: int
    ) -> str:
        """The last lines of a container's log: up to `tail_lines`, and no more than `limit_bytes` read.

        limitBytes keeps the *start* of the tailed window, so a window that was cut is asked for again with
        a quarter of the lines, until it fits: what comes back always ends with the log's real last line."""
        while True:
            answer = await self.api.request(
                "GET",
                f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}/log",
                params={"container": container, "tailLines": str(tail_lines), "limitBytes": str(limit_bytes)},
                raw=True,
                max_retries=0,  # best effort: a cancel never waits on an unreachable kubelet
            )
            text = str(answer.get("text", ""))
            if tail_lines <= 1 or len(text.encode()) < limit_bytes:
                return text
            tail_lines = max(1, tail_lines // 4)

    async def stop_pod(self, namespace: str, name: str, uid: str, mode: str, grace_seconds: int) -> None:
        """Tell the worker how it is being stopped (annotation), then delete it with that grace; both only
        if the pod under that name is still the one with `uid` (else NotOurPod, and nothing changed)."""
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}"
        try:
            await self.api.request(
                "PATCH",
                path,
                params={"fieldManager": self.field_manager},
                # a uid in a patch is a precondition: another pod under this name refuses it (409/422)
                body={"metadata": {"uid": uid, "annotations": {ANNOTATION_CANCEL_MODE: mode}}},
                content_type=MERGE_PATCH,
            )
            await self.api.request(
                "DELETE",
                path,
                body={
                    "apiVersion": "v1",
                    "kind": "DeleteOptions",
                    "gracePeriodSeconds": grace_seconds,
                    "propagationPolicy": "Background",
                    "preconditions": {"uid": uid},
                },
            )
        except Gone:
            log.debug("pod %s/%s already gone", namespace, name)
        except ApiError as exc:
            if exc.status in (409, 422):
                raise NotOurPod(f"pod {namespace}/{name} is no longer uid {uid}: {exc.message}") from exc
            raise

    # -- events and the execution counter --------------------------------------------------------------

    async def create_event(self, event: dict[str, Any]) -> None:
        namespace = event["metadata"]["namespace"]
        await self.api.request("POST", f"/api/v1/namespaces/{quote(namespace)}/events", body=event)

    async def get_configmap(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.api.request(
            "GET", f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}"
        )

    async def create_configmap(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.api.request("POST", f"/api/v1/namespaces/{quote(namespace)}/configmaps", body=body)

    async def replace_configmap(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        return await self.api.request(
            "PUT", f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}", body=body
        )

    # -- the leader Lease ------------------------------------------------------------------------------

    @staticmethod
    def lease_path(namespace: str, name: str | None = None) -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace)}/leases"
        return f"{base}/{quote(name)}" if name else base

    async def get_lease(self, namespace: str, name: str) -> dict[str, Any]:
        return await self.api.request("GET", self.lease_path(namespace, name))

    async def create_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.api.request("POST", self.lease_path(namespace), body=body)

    async def replace_lease(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT with the resourceVersion read: Conflict when another replica wrote the Lease since."""
        return await self.api.request("PUT", self.lease_path(namespace, body["metadata"]["name"]), body=body)
