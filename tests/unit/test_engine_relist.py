"""Every (re)list replaces the engine's view: what was deleted while no watch was open is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from datajobs.controller.config import OperatorConfig
from datajobs.controller.engine import Engine


def job(uid: str, rv: int, status: str | None = None, name: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "datajobs.io/v1alpha1",
        "kind": "IntegrityJob",
        "metadata": {
            "name": name or f"job-{uid}",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": str(rv),
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {"destinationId": "d", "modelIds": ["m"]},
    }
    if status:
        body["status"] = {"status": status, "submitted_at": "2026-01-01T00:00:00Z"}
    return body


def pod(uid: str, job_uid: str, rv: int) -> dict[str, Any]:
    """The worker of job `job_uid` (by identity: its name, namespace and controller ownerReference)."""
    return {
        "metadata": {
            "name": f"job-{job_uid}-worker",
            "namespace": "ns",
            "uid": uid,
            "resourceVersion": str(rv),
            "labels": {"app.kubernetes.io/managed-by": "datajobs-operator"},
            "ownerReferences": [
                {"kind": "IntegrityJob", "name": f"job-{job_uid}", "uid": job_uid, "controller": True}
            ],
        },
        "status": {"phase": "Running"},
    }


class ListingIO:
    """Answers lists with what the test sets; counts them."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.pods: list[dict[str, Any]] = []
        self.rv = "100"
        self.lists = 0

    async def pod_pages(self, namespace: str | None, selector: str) -> AsyncIterator[tuple[list, str]]:
        self.lists += 1
        for i in range(0, max(len(self.pods), 1), 2):  # pages of two
            yield self.pods[i : i + 2], self.rv

    async def job_pages(self, kind: str, namespace: str | None) -> AsyncIterator[tuple[list, str]]:
        jobs = [j for j in self.jobs if j["kind"] == kind]
        for i in range(0, max(len(jobs), 1), 2):
            yield jobs[i : i + 2], self.rv


def started(io: ListingIO) -> Engine:
    engine = Engine(io, OperatorConfig(max_running=1))  # type: ignore[arg-type]
    asyncio.run(engine.relist())
    return engine


def test_a_relist_drops_jobs_and_pods_deleted_while_unwatched_and_frees_their_slot():
    io = ListingIO()
    io.jobs = [job("a", 10, "RUNNING"), job("b", 11)]
    io.pods = [pod("pa", "a", 12)]
    engine = started(io)
    queue = engine.queues["IntegrityJob"]
    assert set(engine.store.jobs) == {"a", "b"} and engine.store.worker("a") is not None
    assert queue.running == 1 and not queue.is_granted("b")  # max_running=1: a holds the only slot

    io.jobs, io.pods, io.rv = [job("b", 11)], [], "200"  # a and its pod deleted during a watch gap
    asyncio.run(engine.relist())
    assert set(engine.store.jobs) == {"b"} and engine.store.pods == {}
    assert queue.running == 0 and queue.is_granted("b")  # the slot went to the next job


def test_a_relist_keeps_what_we_saw_after_the_list_and_drops_nothing_without_a_revision():
    io = ListingIO()
    engine = started(io)
    engine.job_event("IntegrityJob", "ADDED", job("new", 150))  # created after the list's snapshot
    engine.pod_event("ADDED", pod("pn", "new", 151))
    io.rv = "140"
    asyncio.run(engine.relist())
    assert "new" in engine.store.jobs and engine.store.worker("new") is not None
    io.rv = "not-a-revision"  # opaque: nothing can be proven deleted
    asyncio.run(engine.relist())
    assert "new" in engine.store.jobs
    io.rv = "160"
    asyncio.run(engine.relist())
    assert engine.store.jobs == {} and engine.store.pods == {}


def test_an_untyped_event_after_the_start_asks_for_a_relist_and_a_deleted_job_stays_deleted():
    io = ListingIO()
    io.jobs = [job("a", 10)]
    engine = started(io)
    engine.synced = True
    assert not engine._relist_wanted.is_set()
    engine.job_event("IntegrityJob", "MODIFIED", job("a", 11))
    assert not engine._relist_wanted.is_set()  # a watch event is no list
    engine.job_event("IntegrityJob", None, job("a", 11))  # kopf listed again (410, API server restart)
    assert engine._relist_wanted.is_set()
    engine.job_event("IntegrityJob", "DELETED", job("a", 12))
    asyncio.run(engine.relist())  # a stale list still holding it cannot bring it back
    assert "a" not in engine.store.jobs
    assert not engine.queues["IntegrityJob"].is_granted("a")


def test_a_relist_queues_its_jobs_in_the_background_and_a_watch_event_goes_first():
    io = ListingIO()
    io.jobs = [job(f"j{i}", 10 + i, "RUNNING") for i in range(5)]
    io.pods = [pod(f"p{i}", f"j{i}", 20 + i) for i in range(5)]
    engine = started(io)
    assert engine.work.backlog() == (0, 5)  # nothing happened to them: a resync's work
    cancelled = job("j3", 30, "RUNNING")
    cancelled["spec"]["cancelRequested"] = {"requestedAt": "2026-01-01T00:01:00Z"}
    engine.job_event("IntegrityJob", "MODIFIED", cancelled)
    engine.pod_event("MODIFIED", pod("p1", "j1", 31))
    assert engine.work.backlog() == (2, 3)

    async def order() -> list[str]:
        keys = []
        while len(engine.work):
            keys.append(str(await engine.work.get()))
        return keys

    assert asyncio.run(order()) == ["j3", "j1", "j0", "j2", "j4"]
