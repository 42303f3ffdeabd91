"""The expectedStatus guard is exact when a cancel races the job's dispatch (200+ rounds per guard)."""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor

import pytest
from operatorkit import GO_ZERO_TIME, SPECS, Jobs, PodRecorder, condition

from helpers import wait_for

ROUNDS = 200
SPREAD = 10  # cancel send offsets: 0, 0.3, ... 2.7 x the dispatch latency


def dispatch_latency(jobs: Jobs) -> float:
    """Median create -> RUNNING seconds of 16 jobs created at once, as the rounds will be."""

    def one(i: int) -> float:
        started = time.monotonic()
        jobs.create("IntegrityJob", f"calibrate-{i:02d}", SPECS["IntegrityJob"]())
        jobs.wait_status("IntegrityJob", f"calibrate-{i:02d}", "RUNNING", timeout=60)
        return time.monotonic() - started

    with ThreadPoolExecutor(16) as pool:
        return statistics.median(pool.map(one, range(16)))


@pytest.mark.parametrize("guard", ["QUEUED", "RUNNING"])
def test_guard_holds_when_cancel_races_dispatch(guard, run_operator, jobs, kube_api, namespace):
    run_operator(max_running=ROUNDS + 32)  # the rounds and the calibration jobs
    recorder = PodRecorder(kube_api, namespace)
    names = [f"race-{i:03d}" for i in range(ROUNDS)]

    window = dispatch_latency(jobs)
    paused = threading.Event()

    def cancel_at(i: int, moment: float) -> None:
        paused.wait(max(0.0, moment - time.monotonic()))
        jobs.cancel("IntegrityJob", names[i], expectedStatus=guard)

    # The creates go out as one burst and each cancel is sent at its own moment after its create: the
    # operator falls behind the burst (later jobs wait in its queue, so their cancels come first) while
    # the first jobs are dispatched before theirs. The send moments are the test's input, not a
    # synchronisation: spread over three times the measured create -> RUNNING latency, so that cancels
    # land before, during and after dispatch on a quiet machine and on a loaded one alike (a loaded
    # operator falls further behind the burst). Which verdict each gets is the operator's.
    with ThreadPoolExecutor(48) as cancels:

        def create(i: int) -> Future[None]:
            jobs.create("IntegrityJob", names[i], SPECS["IntegrityJob"]())
            offset = window * 3 * (i % SPREAD) / SPREAD
            return cancels.submit(cancel_at, i, time.monotonic() + offset)

        with ThreadPoolExecutor(16) as pool:
            sent = list(pool.map(create, range(ROUNDS)))
        for future in sent:
            future.result()

    def settled() -> dict[str, dict] | None:
        items = {
            j["metadata"]["name"]: j for j in jobs.list("IntegrityJob") if j["metadata"]["name"] in names
        }
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
    verdicts = f"{len(cancelled)} accepted, {len(rejected)} rejected, 0 wrong, window {window:.3f} s"
    print(f"guard={guard}: {verdicts}")  # noqa: T201
