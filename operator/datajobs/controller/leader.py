"""Leader election on a coordination.k8s.io Lease (client-go's protocol): acquire, renew, release."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from datajobs.controller import metrics
from datajobs.controller.apisession import CONNECTION_ERRORS, ApiError, Gone
from datajobs.controller.kubeio import KubeIO
from datajobs.core.lease import LeaseRecord, next_record, released

log = logging.getLogger("datajobs.operator.leader")
LEASE_NAME = "datajobs-operator"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """One replica holds the Lease and acts; the others wait and take it over once it expires (or at once
    when the holder released it on a clean shutdown). `is_leader()` turns False `renew_deadline` after the
    last successful renewal, before any standby may take over (`lease_seconds` after it last saw a change)."""

    def __init__(
        self,
        io: KubeIO,
        namespace: str,
        identity: str,
        *,
        name: str = LEASE_NAME,
        lease_seconds: int = 15,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
    ) -> None:
        if not retry_period < renew_deadline < lease_seconds:
            raise ValueError("leader election needs retry period < renew deadline < lease duration")
        self.io = io
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0
        self._resource_version: str | None = None
        self._valid_until = 0.0
        self._started: asyncio.Task[None] | None = None
        metrics.LEADER.labels(identity=identity).set(0)

    def is_leader(self) -> bool:
        return time.monotonic() < self._valid_until

    async def run(self, on_started: Callable[[], Awaitable[None]], on_lost: Callable[[], None]) -> None:
        """Forever: wait for the Lease, lead (`on_started` runs beside the renewals) until a renewal misses
        the deadline, then `on_lost()` (stop acting at once) and stand by again. A replica cut off from the
        API server thus stops acting and takes the Lease back, or leaves it to another, once it returns."""
        while True:
            log.info("waiting for the leader Lease %s/%s as %s", self.namespace, self.name, self.identity)
            while not await self._attempt():  # noqa: ASYNC110 (polling the API server, not a local flag)
                await asyncio.sleep(self.retry_period * (1 + 0.2 * random.random()))
            log.info("became the leader (Lease %s/%s, identity %s)", self.namespace, self.name, self.identity)
            metrics.LEADER.labels(identity=self.identity).set(1)
            self._started = asyncio.create_task(self._start(on_started), name="lead")
            try:
                while True:
                    await asyncio.sleep(self.retry_period)
                    if not await self._attempt() and not self.is_leader():
                        break
            finally:
                if self._started is not None and not self._started.done():
                    self._started.cancel()
            metrics.LEADER.labels(identity=self.identity).set(0)
            log.error(
                "lost the leader Lease %s/%s: no renewal within %.0fs; stopped acting",
                self.namespace,
                self.name,
                self.renew_deadline,
            )
            on_lost()

    async def _start(self, on_started: Callable[[], Awaitable[None]]) -> None:
        while self.is_leader():
            try:
                await on_started()
                return
            except Exception as exc:  # e.g. the relist failed: try again while we still lead
                log.warning("starting to lead failed, retrying: %s", exc)
                await asyncio.sleep(self.retry_period)

    async def _attempt(self) -> bool:
        """One try to acquire or renew. A leader's try may take until its renew deadline (as client-go's
        renew loop); a standby's, one renew deadline."""
        started = time.monotonic()
        budget = (
            max(self.retry_period, self._valid_until - started) if self.is_leader() else self.renew_deadline
        )
        try:
            async with asyncio.timeout(budget):
                return await self._try(started)
        except (ApiError, TimeoutError, *CONNECTION_ERRORS) as exc:
            log.debug("leader Lease %s/%s: attempt failed: %s", self.namespace, self.name, exc)
            return False

    async def _try(self, started: float) -> bool:
        try:
            lease: dict[str, Any] | None = await self.io.get_lease(self.namespace, self.name)
        except Gone:
            lease = None
        record = LeaseRecord.of(lease) if lease is not None else None
        if record != self._observed:
            self._observed, self._observed_at = record, started
        new = next_record(self.identity, record, self._observed_at, started, _stamp(), self.lease_seconds)
        if new is None:
            return False
        if lease is None:
            written = await self.io.create_lease(self.namespace, self._body(new, None))
        else:
            written = await self.io.replace_lease(
                self.namespace, self._body(new, lease["metadata"]["resourceVersion"])
            )
        self._observed, self._observed_at = LeaseRecord.of(written), started
        self._resource_version = written["metadata"]["resourceVersion"]
        self._valid_until = started + self.renew_deadline
        return True

    def _body(self, record: LeaseRecord, resource_version: str | None) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": record.spec(),
        }

    async def release(self) -> None:
        """On a clean shutdown: hand the Lease back (no holder) so a standby takes over without waiting."""
        if not self.is_leader() or self._observed is None:
            return
        self._valid_until = 0.0
        metrics.LEADER.labels(identity=self.identity).set(0)
        try:
            await self.io.replace_lease(
                self.namespace, self._body(released(self._observed, _stamp()), self._resource_version)
            )
            log.info("released the leader Lease %s/%s", self.namespace, self.name)
        except (ApiError, TimeoutError, *CONNECTION_ERRORS) as exc:
            log.warning("could not release the leader Lease (it expires by itself): %s", exc)
