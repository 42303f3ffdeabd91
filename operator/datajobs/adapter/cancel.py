"""Compare-and-set cancel: read the job, apply the guards, merge-patch with the resourceVersion read."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from datajobs.adapter.guard import CancelParams, InProgress, Patch, Reject, decide, now_rfc3339
from datajobs.adapter.jobapi import Conflict, JobApi, NotFound
from datajobs.models import KindInfo

logger = logging.getLogger(__name__)

AfterRead = Callable[[dict[str, Any]], Awaitable[None]]
"""Test seam: awaited between the read and the patch (lets a test change the job in that window)."""


class JobGone(Exception):
    """The job was deleted, or replaced by another object, since it was looked up."""


class CancelRejected(Exception):
    def __init__(self, reject: Reject) -> None:
        super().__init__(reject.message)
        self.reject = reject


class TooManyConflicts(Exception):
    """The job kept changing between read and patch for every attempt."""


@dataclass(frozen=True)
class CancelOutcome:
    patched: bool
    obj: dict[str, Any]
    conflicts: int


class Canceller:
    """Turns a cancel call into at most one successful patch of `spec.cancelRequested`."""

    def __init__(
        self,
        api: JobApi,
        *,
        max_attempts: int = 16,
        after_read: AfterRead | None = None,
        clock: Callable[[], str] = now_rfc3339,
        on_conflict: Callable[[KindInfo], None] | None = None,
    ) -> None:
        self._on_conflict = on_conflict
        self._api = api
        self._max_attempts = max_attempts
        self._after_read = after_read
        self._clock = clock

    async def cancel(
        self,
        kind: KindInfo,
        looked_up: dict[str, Any],
        same_job: Callable[[dict[str, Any]], bool],
        params: CancelParams,
        label: str,
    ) -> CancelOutcome:
        """Raises CancelRejected (guard failed), JobGone, TooManyConflicts, or a JobApiError."""
        metadata = looked_up.get("metadata") or {}
        namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
        conflicts = 0
        # First try the watch cache's copy: a patch made with its resourceVersion is exactly as safe as one
        # made after a fresh GET (the API server refuses it with 409 if anything changed), and it saves a
        # round trip. Only a patch is trusted that way: a rejection or "in progress" read from the cache
        # may be stale, so it is confirmed on a fresh read before it is answered.
        obj: dict[str, Any] | None = looked_up if metadata.get("resourceVersion") else None
        fresh = False
        for _ in range(self._max_attempts):
            if obj is None:
                try:
                    obj = await self._api.get(kind, namespace, name)
                except NotFound:
                    raise JobGone() from None
                fresh = True
                if (obj.get("metadata") or {}).get("uid") != metadata.get("uid") or not same_job(obj):
                    raise JobGone()
            decision = decide(obj, params, self._clock(), label)
            if not fresh and not isinstance(decision, Patch):
                obj = None
                continue
            if isinstance(decision, Reject):
                raise CancelRejected(decision)
            if isinstance(decision, InProgress):
                return CancelOutcome(patched=False, obj=obj, conflicts=conflicts)
            if self._after_read is not None:
                await self._after_read(obj)
            try:
                patched = await self._api.merge_patch(kind, namespace, name, decision.body)
            except Conflict:
                conflicts += 1
                if self._on_conflict is not None:
                    self._on_conflict(kind)
                logger.debug("%s changed between read and patch; reading it again", label)
                obj = None
                continue
            except NotFound:
                raise JobGone() from None
            return CancelOutcome(patched=True, obj=patched, conflicts=conflicts)
        raise TooManyConflicts(f"{label} changed on each of {self._max_attempts} attempts")
