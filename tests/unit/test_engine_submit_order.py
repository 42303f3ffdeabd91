"""The engine's queue order: first sight of each job (strictly increasing), then its recorded submit time."""

from __future__ import annotations

from datajobs.controller.config import OperatorConfig
from datajobs.controller.engine import Engine


def job(name: str, submitted: str | None = None) -> dict:
    body: dict = {
        "metadata": {"name": name, "namespace": "ns", "uid": f"uid-{name}", "resourceVersion": "1"},
        "spec": {"destinationId": "d"},
    }
    if submitted is not None:
        body["status"] = {"status": "QUEUED", "submitted_at": submitted}
    return body


def test_first_sight_stamps_are_strictly_increasing_and_grant_in_that_order():
    engine = Engine(None, OperatorConfig(max_running=1))  # type: ignore[arg-type]
    names = [f"j{i:03d}" for i in range(200)][::-1]  # seen in reverse name order, faster than the clock ticks
    for name in names:
        engine._observe_job("IntegrityJob", job(name), schedule=False)
    stamps = [engine._submitted[f"uid-{n}"] for n in names]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert engine.queues["IntegrityJob"].grant() == [f"uid-{names[0]}"]


def test_a_recorded_submit_time_replaces_the_stamp_and_keeps_the_job_in_place():
    engine = Engine(None, OperatorConfig(max_running=1))  # type: ignore[arg-type]
    engine._observe_job("IntegrityJob", job("a"), schedule=False)
    engine._observe_job("IntegrityJob", job("b"), schedule=False)
    stamp = engine._submitted["uid-a"]
    written = job("a", submitted=stamp)
    written["metadata"]["resourceVersion"] = "2"
    engine._observe_job("IntegrityJob", written, schedule=False)
    assert "uid-a" not in engine._submitted
    assert engine.queues["IntegrityJob"].grant() == ["uid-a"]
