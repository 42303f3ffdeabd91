"""What the engine does with refusals: a status the API server rejects is not retried forever; a refused
pod create backs off whatever events come; a taken worker name is reported and the pod left alone."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from datajobs.controller.apisession import ApiError, Conflict
from datajobs.controller.config import OperatorConfig
from datajobs.controller.engine import Engine


def job_body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "datajobs.io/v1alpha1",
        "kind": "IntegrityJob",
        "metadata": {"name": "j", "namespace": "ns", "uid": "ju", "resourceVersion": "1", "generation": 1},
        "spec": {"destinationId": "d", "modelIds": ["m"]},
    }
    if status is not None:
        body["status"] = status
    return body


class FakeIO:
    """Status writes answer from `write_answers` (an ApiError to raise, or None to accept); pod creates
    from `create_answer`."""

    def __init__(self, write_answers: list[ApiError | None], create_answer: Any = None) -> None:
        self.write_answers = write_answers
        self.create_answer = create_answer
        self.writes: list[dict[str, Any]] = []
        self.creates = 0
        self.deletes: list[str] = []
        self.events: list[str] = []
        self.rv = 1

    async def write_status(self, kind: str, body: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        self.writes.append(status)
        answer = self.write_answers.pop(0) if self.write_answers else None
        if answer is not None:
            raise answer
        self.rv += 1
        return {**body, "metadata": {**body["metadata"], "resourceVersion": str(self.rv)}, "status": status}

    async def create_pod(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        self.creates += 1
        if isinstance(self.create_answer, Exception):
            raise self.create_answer
        return self.create_answer

    async def get_pod(self, namespace: str, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": namespace, "uid": "stranger", "resourceVersion": "3"}}

    async def stop_pod(self, *args: Any) -> None:
        self.deletes.append(args[1])

    async def create_event(self, event: dict[str, Any]) -> None:
        self.events.append(event["reason"])


class Requeues:
    """Stands in for the work queue after the first event: records every re-queue the engine asks for."""

    def __init__(self) -> None:
        self.added: list[tuple[str, float]] = []

    def add(self, key: str) -> None:
        self.added.append((key, 0.0))

    def add_after(self, key: str, delay: float) -> None:
        self.added.append((key, delay))

    def __len__(self) -> int:
        return len(self.added)


def run_engine(io: FakeIO, body: dict[str, Any], rounds: int = 1) -> Engine:
    async def go() -> Engine:
        engine = Engine(io, OperatorConfig())  # type: ignore[arg-type]
        engine.job_event("IntegrityJob", None, body)
        engine.work = Requeues()  # type: ignore[assignment]
        for _ in range(rounds):
            await engine.reconcile("ju")
        await asyncio.gather(*engine._side_tasks)
        return engine

    return asyncio.run(go())


def created_worker() -> dict[str, Any]:
    owner = {"apiVersion": "datajobs.io/v1alpha1", "kind": "IntegrityJob", "name": "j", "uid": "ju"}
    meta = {"name": "j-worker", "namespace": "ns", "uid": "pu", "resourceVersion": "2"}
    return {"metadata": meta | {"ownerReferences": [owner | {"controller": True}]}, "status": {}}


def test_a_status_the_api_server_refuses_fails_the_job_once_instead_of_looping():
    refused = ApiError(422, "Unprocessable Entity", b'{"message": "status.x: Invalid value"}')
    io = FakeIO([refused], create_answer=created_worker())
    engine = run_engine(io, job_body())
    assert len(io.writes) == 2  # the decided status, then the FAILED one with the reason
    assert io.writes[1]["status"] == "FAILED"
    assert "refused the job's status: HTTP 422: status.x: Invalid value" in io.writes[1]["log_message"]
    assert engine.store.jobs["ju"][1]["status"]["status"] == "FAILED"
    assert engine.work.added == []  # nothing scheduled to try the refused write again


def test_when_even_the_failed_status_is_refused_a_warning_event_says_so_and_nothing_loops():
    refused = ApiError(422, "Unprocessable Entity", b'{"message": "no"}')
    io = FakeIO([refused, refused], create_answer=created_worker())
    engine = run_engine(io, job_body())
    assert len(io.writes) == 2 and "StatusWriteRefused" in io.events
    assert engine.work.added == []


def test_a_refused_create_backs_off_whatever_events_come():
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    running = {"status": "RUNNING", "started_at": started, "conditions": []}
    forbidden = ApiError(403, "Forbidden", b'{"message": "pods \\"j-worker\\" is forbidden: quota"}')
    io = FakeIO([], create_answer=forbidden)
    engine = run_engine(io, job_body(running), rounds=3)  # e.g. our own status write's event, then others
    assert io.creates == 1
    attempts, not_before = engine._create_backoff["ju"]
    assert attempts == 1 and not_before > time.monotonic()
    delays = [delay for _, delay in engine.work.added]
    assert 2.0 in delays  # the retry comes after the backoff, not at once


def test_a_taken_worker_name_is_reported_and_the_pod_never_deleted():
    io = FakeIO([], create_answer=None)  # 409: the name exists; get_pod shows a pod we do not control
    engine = run_engine(io, job_body(), rounds=1)
    assert io.creates == 1 and io.deletes == []
    assert "WorkerPodNameTaken" in io.events
    worker = next(c for c in io.writes[-1]["conditions"] if c["type"] == "WorkerPod")
    assert worker["reason"] == "NameTaken" and engine.store.worker("ju") is None
    assert len(io.writes) == 1 and io.writes[0]["status"] == "RUNNING"  # the dispatch says why, at once


def test_an_integrity_jobs_dispatch_is_one_status_write_after_its_pod_is_created():
    io = FakeIO([], create_answer=created_worker())
    engine = run_engine(io, job_body(), rounds=1)
    assert io.creates == 1 and len(io.writes) == 1
    worker = next(c for c in io.writes[0]["conditions"] if c["type"] == "WorkerPod")
    assert (io.writes[0]["status"], worker["status"], worker["reason"]) == ("RUNNING", "True", "Observed")
    assert engine.store.worker("ju") is not None and io.events == []


def test_conflict_is_still_a_reread_not_a_refusal():
    assert issubclass(Conflict, ApiError)  # (409 keeps its own path: read again and decide again)
