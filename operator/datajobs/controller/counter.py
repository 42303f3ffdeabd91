"""Cluster-wide executionId allocation: a compare-and-set counter in a ConfigMap, never reused."""

from __future__ import annotations

import asyncio
import logging

from datajobs.controller.apisession import Conflict, Gone
from datajobs.controller.kubeio import KubeIO

log = logging.getLogger(__name__)
COUNTER_NAME = "datajobs-execution-ids"


class ExecutionIds:
    """Hands out increasing executionIds. The ConfigMap's `next` only moves forward (optimistic CAS), so an
    id is never handed out twice, across restarts and replicas; a crash may skip an id, never repeat one."""

    def __init__(self, io: KubeIO, namespace: str) -> None:
        self.io = io
        self.namespace = namespace
        self._lock = asyncio.Lock()
        self._floor = 1

    def raise_floor(self, seen: int) -> None:
        """Never hand out an id at or below one already seen on a job (e.g. if the ConfigMap was deleted)."""
        self._floor = max(self._floor, seen + 1)

    async def next(self) -> int:
        async with self._lock:
            for _ in range(50):
                try:
                    cm = await self.io.get_configmap(self.namespace, COUNTER_NAME)
                except Gone:
                    try:
                        await self.io.create_configmap(
                            self.namespace,
                            {
                                "metadata": {
                                    "name": COUNTER_NAME,
                                    "labels": {"app.kubernetes.io/managed-by": "datajobs-operator"},
                                },
                                "data": {"next": str(self._floor)},
                            },
                        )
                    except Conflict:
                        pass
                    except Gone as exc:
                        raise RuntimeError(
                            f"state namespace {self.namespace!r} does not exist: "
                            "create it or pass --state-namespace"
                        ) from exc
                    continue
                value = max(int((cm.get("data") or {}).get("next", "1")), self._floor)
                cm["data"] = {**(cm.get("data") or {}), "next": str(value + 1)}
                try:
                    await self.io.replace_configmap(self.namespace, cm)
                except Conflict:
                    continue
                self._floor = value + 1
                return value
            raise RuntimeError("could not allocate an executionId: the counter ConfigMap keeps changing")
