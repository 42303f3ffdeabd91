"""The four vendor endpoints: authenticate, validate, look up in the cache, then read or cancel."""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import web

from datajobs.adapter import params
from datajobs.adapter.cache import KEY_FUNCTIONS, JobIndex
from datajobs.adapter.cancel import Canceller, CancelOutcome, CancelRejected, JobGone, TooManyConflicts
from datajobs.adapter.dialects import DELPHIX, PREQUEL, Dialect
from datajobs.adapter.guard import CancelParams, RejectReason
from datajobs.adapter.jobapi import Invalid, JobApiError
from datajobs.adapter.keys import ApiKey, KeyRing
from datajobs.adapter.metrics import AdapterMetrics
from datajobs.adapter.problems import ApiProblem, bad_request, not_found, shorten
from datajobs.adapter.vendor import VendorShapeError, vendor_view
from datajobs.models import INTEGRITY_JOB, MASKING_EXECUTION, KindInfo

logger = logging.getLogger(__name__)

KEY_NAME: web.RequestKey[str] = web.RequestKey("key_name", str)
"""Request attribute: the label of the key that authenticated the request (for the access log)."""


class JobLookup(Protocol):
    """The cache as the handlers see it."""

    @property
    def synced(self) -> bool: ...

    def index(self, kind: KindInfo) -> JobIndex: ...


@dataclass
class AdapterState:
    keys: KeyRing
    cache: JobLookup
    canceller: Canceller
    metrics: AdapterMetrics
    max_body_bytes: int = 64 * 1024


class Handlers:
    def __init__(self, state: AdapterState) -> None:
        self.s = state

    # Prequel Data Export API

    async def _prequel_job(self, request: web.Request) -> tuple[ApiKey, str, str, dict[str, Any]]:
        """Authenticate, check the (parameterless) request, and find the job the path names."""
        key = self._authenticate(request, PREQUEL)
        params.parse_query(request.query, {})
        destination_id, job_id = request.match_info["destination_id"], request.match_info["job_id"]
        await params.read_no_body(request, self.s.max_body_bytes)
        obj = self._find(
            INTEGRITY_JOB, (destination_id, job_id), key, _prequel_missing(destination_id, job_id)
        )
        return key, destination_id, job_id, obj

    async def prequel_cancel(self, request: web.Request) -> web.Response:
        key, destination_id, job_id, obj = await self._prequel_job(request)
        outcome = await self._cancel(
            INTEGRITY_JOB, obj, (destination_id, job_id), CancelParams(), f"data integrity job {job_id}", key
        )
        message = "cancellation requested" if outcome.patched else "cancellation already in progress"
        return _prequel_success(outcome.obj, message)

    async def prequel_get(self, request: web.Request) -> web.Response:
        _, _, _, obj = await self._prequel_job(request)
        return _prequel_success(obj, "data integrity job found")

    # Delphix Masking Engine API

    async def delphix_cancel(self, request: web.Request) -> web.Response:
        key = self._authenticate(request, DELPHIX)
        query = params.parse_query(
            request.query, {"expectedStatus": params.expected_status, "graceful": params.boolean("graceful")}
        )
        execution_id = params.execution_id(request.match_info["executionId"])
        await params.read_no_body(request, self.s.max_body_bytes)
        obj = self._find(MASKING_EXECUTION, execution_id, key, f"execution {execution_id} not found")
        cancel = CancelParams(
            expected_status=query.get("expectedStatus"), graceful=query.get("graceful", False)
        )
        outcome = await self._cancel(
            MASKING_EXECUTION, obj, execution_id, cancel, f"execution {execution_id}", key
        )
        return web.json_response(_view(MASKING_EXECUTION, outcome.obj))

    async def delphix_get(self, request: web.Request) -> web.Response:
        key = self._authenticate(request, DELPHIX)
        params.parse_query(request.query, {})
        execution_id = params.execution_id(request.match_info["executionId"])
        await params.read_no_body(request, self.s.max_body_bytes)
        obj = self._find(MASKING_EXECUTION, execution_id, key, f"execution {execution_id} not found")
        return web.json_response(_view(MASKING_EXECUTION, obj))

    # shared steps

    def _authenticate(self, request: web.Request, dialect: Dialect) -> ApiKey:
        for presented in dialect.presented_keys(request.headers):
            key = self.s.keys.authenticate(presented)
            if key is not None:
                request[KEY_NAME] = key.name
                return key
        self.s.metrics.auth_failures.labels(dialect.name).inc()
        raise ApiProblem(dialect.auth_failure_status, dialect.auth_failure_message)

    def _find(self, kind: KindInfo, lookup_key: Hashable, key: ApiKey, missing: str) -> dict[str, Any]:
        if not self.s.cache.synced:
            raise ApiProblem(
                503, "the adapter is starting: its job cache has not synced yet", {"Retry-After": "1"}
            )
        obj = self.s.cache.index(kind).get(lookup_key)
        # A job outside the key's namespaces is reported exactly like a job that does not exist.
        if obj is None or not key.allows(str((obj.get("metadata") or {}).get("namespace"))):
            raise not_found(missing)
        return obj

    async def _cancel(
        self,
        kind: KindInfo,
        obj: dict[str, Any],
        lookup_key: Hashable,
        cancel: CancelParams,
        label: str,
        key: ApiKey,
    ) -> CancelOutcome:
        counter = self.s.metrics.cancels
        key_fn = KEY_FUNCTIONS[kind.plural]
        try:
            outcome = await self.s.canceller.cancel(
                kind, obj, lambda o: key_fn(o) == lookup_key, cancel, label
            )
        except CancelRejected as exc:
            outcome_name = (
                "already_finished"
                if exc.reject.reason is RejectReason.ALREADY_FINISHED
                else "status_mismatch"
            )
            counter.labels(kind.kind, outcome_name).inc()
            raise bad_request(exc.reject.message) from None
        except JobGone:
            counter.labels(kind.kind, "gone").inc()
            raise not_found(f"{label} not found") from None
        except TooManyConflicts as exc:
            counter.labels(kind.kind, "conflicts_exhausted").inc()
            raise ApiProblem(500, f"{exc}; please retry") from None
        except Invalid as exc:
            counter.labels(kind.kind, "api_error").inc()
            raise bad_request(
                f"the Kubernetes API server rejected the cancel request: {exc.message}"
            ) from None
        except (JobApiError, aiohttp.ClientError, TimeoutError, OSError) as exc:
            counter.labels(kind.kind, "api_error").inc()
            logger.error("cancel of %s failed: %s: %s", label, type(exc).__name__, exc)
            if unavailable(exc):  # the API server (or its etcd) is down or throttling: it is not our fault
                raise ApiProblem(
                    503, "the Kubernetes API server is unavailable; please retry", {"Retry-After": "1"}
                ) from None
            raise ApiProblem(500, "the Kubernetes API server failed the request; please retry") from None
        counter.labels(kind.kind, "patched" if outcome.patched else "in_progress").inc()
        metadata = outcome.obj.get("metadata") or {}
        logger.info(
            "%s %s/%s (%s): %s (expectedStatus=%s, graceful=%s, key=%s, conflicts=%d)",
            kind.kind,
            metadata.get("namespace"),
            metadata.get("name"),
            label,
            "cancel requested" if outcome.patched else "cancel already in progress",
            cancel.expected_status,
            cancel.graceful,
            key.name,
            outcome.conflicts,
        )
        return outcome


def unavailable(exc: Exception) -> bool:
    """A failure that says the API server is away or overloaded, not that the request was wrong."""
    if isinstance(exc, JobApiError):
        return exc.status == 429 or exc.status >= 500
    return True  # no answer at all: refused, reset, timed out


def _prequel_missing(destination_id: str, job_id: str) -> str:
    return f"data integrity job {shorten(job_id)} not found for destination {shorten(destination_id)}"


def _view(kind: KindInfo, obj: dict[str, Any]) -> dict[str, Any]:
    try:
        return vendor_view(kind, obj)
    except VendorShapeError as exc:
        logger.error("%s", exc)
        raise ApiProblem(500, f"the {kind.kind}'s status is not a valid vendor resource") from None


def _prequel_success(obj: dict[str, Any], message: str) -> web.Response:
    return web.json_response(
        {"status": "success", "data": {"job": _view(INTEGRITY_JOB, obj)}, "message": message}
    )
