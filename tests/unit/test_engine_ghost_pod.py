"""A pod the operator stopped, whose DELETED event never comes, is re-checked once its grace is over."""

from __future__ import annotations

import asyncio
import time

from datajobs.controller import engine as engine_module
from datajobs.controller.config import OperatorConfig
from datajobs.controller.engine import Engine
from datajobs.controller.kubeio import Gone


class FakeIO:
    def __init__(self, pod_exists: bool) -> None:
        self.pod_exists = pod_exists
        self.gets = 0

    async def get_pod(self, namespace: str, name: str) -> dict:
        self.gets += 1
        if not self.pod_exists:
            raise Gone("not found")
        return {}


def engine_with_stopped_pod(io: FakeIO, stopped_ago: float) -> Engine:
    engine = Engine(io, OperatorConfig())  # type: ignore[arg-type]
    pod = {
        "metadata": {
            "name": "j-worker",
            "namespace": "ns",
            "uid": "p1",
            "resourceVersion": "5",
            "labels": {"datajobs.io/job-uid": "j1"},
        }
    }
    engine.store.put_pod(pod)
    engine._stop_requested["p1"] = time.monotonic() - stopped_ago
    return engine


def test_a_gone_pod_is_dropped_after_its_grace():
    async def run() -> tuple[bool, FakeIO, Engine]:
        io = FakeIO(pod_exists=False)
        engine = engine_with_stopped_pod(io, stopped_ago=engine_module.GONE_CHECK_MARGIN_SECONDS + 1)
        return await engine._pod_outlived_its_deletion("j1"), io, engine

    gone, io, engine = asyncio.run(run())
    assert gone and io.gets == 1 and "j1" not in engine.store.pods and "p1" not in engine._stop_requested


def test_no_api_call_before_the_grace_is_over_and_a_live_pod_stays():
    async def run(stopped_ago: float, exists: bool) -> tuple[bool, FakeIO, Engine]:
        io = FakeIO(pod_exists=exists)
        engine = engine_with_stopped_pod(io, stopped_ago)
        return await engine._pod_outlived_its_deletion("j1"), io, engine

    early, io, _ = asyncio.run(run(0.0, False))
    assert not early and io.gets == 0
    alive, io, engine = asyncio.run(run(engine_module.GONE_CHECK_MARGIN_SECONDS + 1, True))
    assert not alive and io.gets == 1 and "j1" in engine.store.pods
