"""The expectedStatus guard is exact when a cancel races the job's dispatch (200+ rounds per guard)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from operatorkit import GO_ZERO_TIME, SPECS, PodRecorder, condition

from helpers import wait_for

ROUNDS = 200


@pytest.mark.parametrize("guard", ["QUEUED", "RUNNING"])
def test_guard_holds_when_cancel_races_dispatch(guard, run_operator, jobs, kube_api, namespace):
    run_operator(max_running=ROUNDS + 10)
    recorder = PodRecorder(kube_api, namespace)
    names = [f"race-{i:03d}" for i in range(ROUNDS)]

    def round_(name: str) -> None:
        jobs.create("IntegrityJob", name, SPECS["IntegrityJob"]())
        jobs.cancel("IntegrityJob", name, expectedStatus=guard)  # lands while the operator dispatches

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(round_, names))

    def settled() -> dict[str, dict] | None:
        items = {j["metadata"]["name"]: j for j in jobs.list("IntegrityJob")}
        for job in items.values():
            cond = condition(job.get("status") or {}, "CancelRequest")
            if cond is None or cond["observedGeneration"] != job["metadata"]["generation"]:
                return None
            if cond["status"] == "True" and job["status"]["status"] != "CANCELLED":
                return None  # accepted, worker still terminating
        return items

    items = wait_for(settled, timeout=180, interval=0.5, message="not every cancel was evaluated")
    recorder.stop()
    cancelled = {n for n, j in items.items() if j["status"]["status"] == "CANCELLED"}
    rejected = {n for n, j in items.items() if condition(j["status"], "CancelRequest")["status"] == "False"}
    assert cancelled | rejected == set(names) and not cancelled & rejected
    # a race that never raced proves nothing: both verdicts must have happened
    assert cancelled and rejected, f"no race: {len(cancelled)} accepted, {len(rejected)} rejected"
    if guard == "QUEUED":
        # a cancel guarded by QUEUED never stops a job that was RUNNING: no pod, never started
        wrongly_stopped = {
            n for n in cancelled if n in recorder.created or items[n]["status"]["started_at"] != GO_ZERO_TIME
        }
        assert wrongly_stopped == set()
        assert all(items[n]["status"]["status"] == "RUNNING" for n in rejected)
    else:
        # a cancel guarded by RUNNING never stops a job that was QUEUED: every cancelled one had a pod
        wrongly_stopped = {
            n
            for n in cancelled
            if n not in recorder.created or items[n]["status"]["started_at"] == GO_ZERO_TIME
        }
        assert wrongly_stopped == set()
        assert all("QUEUED" in condition(items[n]["status"], "CancelRequest")["message"] for n in rejected)
    print(f"guard={guard}: {len(cancelled)} accepted, {len(rejected)} rejected, 0 wrong")  # noqa: T201
