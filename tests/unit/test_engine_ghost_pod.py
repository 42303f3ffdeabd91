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
        self.pod: dict = {}

    async def get_pod(self, namespace: str, name: str) -> dict:
        self.gets += 1
        if not self.pod_exists:
            raise Gone(404, "Not Found")
        return self.pod


def job(name: str, uid: str) -> dict:
    meta = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "1"}
    return {"metadata": meta, "spec": {}, "status": {"status": "RUNNING"}}


def engine_with_stopped_pod(io: FakeIO, stopped_ago: float) -> Engine:
    engine = Engine(io, OperatorConfig())  # type: ignore[arg-type]
    engine.store.put_job("IntegrityJob", job("j", "j1"))
    pod = worker_pod("j-worker", "p1", "j1")
    engine.store.put_pod(pod)
    io.pod = pod
    engine._stop_requested["p1"] = time.monotonic() - stopped_ago
    return engine


def test_a_gone_pod_is_dropped_after_its_grace():
    async def run() -> tuple[bool, FakeIO, Engine]:
        io = FakeIO(pod_exists=False)
        engine = engine_with_stopped_pod(io, stopped_ago=engine_module.GONE_CHECK_MARGIN_SECONDS + 1)
        return await engine._pod_outlived_its_deletion("j1"), io, engine

    gone, io, engine = asyncio.run(run())
    assert gone and io.gets == 1 and engine.store.worker("j1") is None and "p1" not in engine._stop_requested


def test_no_api_call_before_the_grace_is_over_and_a_live_pod_stays():
    async def run(stopped_ago: float, exists: bool) -> tuple[bool, FakeIO, Engine]:
        io = FakeIO(pod_exists=exists)
        engine = engine_with_stopped_pod(io, stopped_ago)
        return await engine._pod_outlived_its_deletion("j1"), io, engine

    early, io, _ = asyncio.run(run(0.0, False))
    assert not early and io.gets == 0
    alive, io, engine = asyncio.run(run(engine_module.GONE_CHECK_MARGIN_SECONDS + 1, True))
    assert not alive and io.gets == 1 and engine.store.worker("j1") is not None


class ListedPodsIO:
    """get_pod answers from a dict of live pods by name; everything else is unused here."""

    def __init__(self, live: dict[str, dict]) -> None:
        self.live = live
        self.asked: list[str] = []

    async def get_pod(self, namespace: str, name: str) -> dict:
        self.asked.append(name)
        if name not in self.live:
            raise Gone(404, "Not Found")
        return self.live[name]


def worker_pod(name: str, uid: str, job_uid: str, rv: str = "5") -> dict:
    labels = {"datajobs.io/job-uid": job_uid}
    owner = {"apiVersion": "datajobs.io/v1alpha1", "kind": "IntegrityJob", "uid": job_uid, "controller": True}
    meta = {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": rv, "labels": labels}
    return {"metadata": {**meta, "ownerReferences": [{**owner, "name": name.removesuffix("-worker")}]}}


def test_a_pod_listed_at_start_but_never_watched_is_asked_about_and_dropped_when_gone():
    gone, watched, replaced = (
        worker_pod("a-worker", "pa", "ja"),
        worker_pod("b-worker", "pb", "jb"),
        worker_pod("c-worker", "pc", "jc"),
    )
    successor = worker_pod("c-worker", "pc2", "jc", rv="9")
    io = ListedPodsIO({"c-worker": successor})
    engine = Engine(io, OperatorConfig())  # type: ignore[arg-type]
    for name in "abc":
        engine.store.put_job("IntegrityJob", job(name, f"j{name}"))
    for pod in (gone, watched, replaced):
        engine.store.put_pod(pod)
        engine._unconfirmed_pods[pod["metadata"]["uid"]] = pod
    engine.pod_event(None, watched)  # kopf's listing reported this one

    asyncio.run(engine._confirm_listed_pods(0))

    assert sorted(io.asked) == ["a-worker", "c-worker"]  # never the pod the watch confirmed
    assert engine.store.worker("ja") is None and engine.store.worker("jb")["metadata"]["uid"] == "pb"
    assert engine.store.worker("jc")["metadata"]["uid"] == "pc2"  # same name, a new pod
    assert engine._unconfirmed_pods == {}
