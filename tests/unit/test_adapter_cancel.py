"""The adapter's compare-and-set loop: patch straight from the cache, but never reject on a stale cache."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from datajobs.adapter.cancel import Canceller, CancelRejected
from datajobs.adapter.guard import CancelParams
from datajobs.adapter.jobapi import Conflict
from datajobs.models import MASKING_EXECUTION


def job(status: str, rv: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "m", "namespace": "ns", "uid": "u", "resourceVersion": rv, "generation": 1},
        "spec": {"jobId": 1},
        "status": {"status": status, "jobId": 1, "executionId": 5},
    }


class FakeApi:
    def __init__(self, current: dict[str, Any]) -> None:
        self.current = current
        self.gets = 0
        self.patches: list[dict[str, Any]] = []

    async def get(self, kind, namespace, name):
        self.gets += 1
        return copy.deepcopy(self.current)

    async def merge_patch(self, kind, namespace, name, body):
        if body["metadata"]["resourceVersion"] != self.current["metadata"]["resourceVersion"]:
            raise Conflict(409, "changed")
        self.patches.append(body)
        return self.current


def cancel(api: FakeApi, cached: dict[str, Any], expected: str | None):
    canceller = Canceller(api)
    return asyncio.run(
        canceller.cancel(
            MASKING_EXECUTION, cached, lambda _: True, CancelParams(expected_status=expected), "execution 5"
        )
    )


def test_a_fresh_cache_patches_without_a_get():
    api = FakeApi(job("RUNNING", "10"))
    outcome = cancel(api, job("RUNNING", "10"), "RUNNING")
    assert outcome.patched and api.gets == 0 and len(api.patches) == 1


def test_a_stale_cache_that_would_reject_is_confirmed_on_a_fresh_read():
    api = FakeApi(job("RUNNING", "11"))
    outcome = cancel(api, job("QUEUED", "10"), "RUNNING")  # the cache has not seen the dispatch yet
    assert outcome.patched and api.gets == 1
    assert api.patches[0]["metadata"]["resourceVersion"] == "11"


def test_a_stale_cache_that_would_patch_gets_409_then_rejects_on_the_fresh_status():
    api = FakeApi(job("RUNNING", "11"))
    with pytest.raises(CancelRejected) as err:
        cancel(api, job("QUEUED", "10"), "QUEUED")
    assert err.value.reject.actual_status == "RUNNING" and api.patches == []
