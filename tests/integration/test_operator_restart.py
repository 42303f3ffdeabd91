"""SIGKILL the operator at chosen points of a dispatch and of a cancel; a restart repairs every job."""

from __future__ import annotations

from collections import Counter

import pytest
from operatorkit import SPECS, TERMINAL, Kubelet

from helpers import wait_for

JOBS = [("IntegrityJob", f"ij-{i}") for i in range(8)] + [("MaskingExecution", f"mex-{i}") for i in range(8)]
CANCELLED_AT_SUBMISSION = frozenset(name for _, name in JOBS[::3])


def running_jobs(jobs) -> list[str]:
    return [p.metadata.labels["datajobs.io/job"] for p in jobs.pods() if p.status.phase == "Running"]


@pytest.mark.parametrize(
    "point",
    [
        "before-create-pod",
        "before-dispatch-write",
        "before-stop-pod",
        "before-cancelled-write",
        "sigkill-mid-burst",
    ],
)
def test_sigkill_at_any_point_then_restart_leaves_every_job_correct(point, run_operator, jobs):
    # the 2nd pod creation; the 1st pod stop / CANCELLED write of a running job (at least two are cancelled)
    # (before-dispatch-write: an IntegrityJob's pod created, the status recording its dispatch not written)
    hits = 2 if point in ("before-create-pod", "before-dispatch-write") else 1
    env = {} if point == "sigkill-mid-burst" else {"DATAJOBS_CRASH_AT": f"{point}:{hits}"}
    first = run_operator(max_running=4, env=env)
    cancelled = set(CANCELLED_AT_SUBMISSION)
    for kind, name in JOBS:
        jobs.create(
            kind, name, SPECS[kind](job_id=len(name)) if kind == "MaskingExecution" else SPECS[kind]()
        )
    if point in ("before-create-pod", "before-dispatch-write", "sigkill-mid-burst"):
        for kind, name in JOBS:
            if name in cancelled:
                jobs.cancel(kind, name)
    else:  # cancel jobs while they run, so the crash lands inside a cancel
        running = wait_for(
            lambda: len(r := running_jobs(jobs)) >= 2 and r,
            timeout=30,
            message="fewer than two jobs ever ran",
        )
        for kind, name in JOBS:
            if name in cancelled or name in running[:2]:
                jobs.cancel(kind, name)
        cancelled.update(running[:2])
    if point == "sigkill-mid-burst":
        wait_for(lambda: len(jobs.pods()) >= 2, timeout=30, message="no pods before the kill")
        first.kill()
    else:
        wait_for(
            lambda: first.exited() is not None,
            timeout=60,
            message=f"crash point {point} never reached; log:\n{first.log_tail()}",
        )
        assert first.exited() == 137
    run_operator(max_running=4)  # the restart
    with Kubelet(jobs):

        def all_final():
            items = [(kind, jobs.get(kind, name)) for kind, name in JOBS]
            return all((j.get("status") or {}).get("status") in TERMINAL for _, j in items) and items

        items = wait_for(all_final, timeout=120, interval=0.5, message="jobs stuck after the restart")

    by_name = {j["metadata"]["name"]: j for _, j in items}
    for name, job in by_name.items():
        expected = "CANCELLED" if name in cancelled else "SUCCEEDED"
        assert job["status"]["status"] == expected, (name, job["status"])
    pods = jobs.pods()
    uids = {j["metadata"]["uid"] for j in by_name.values()}
    per_job = Counter(p.metadata.labels["datajobs.io/job-uid"] for p in pods)
    assert all(n == 1 for n in per_job.values()), per_job  # no duplicate pods
    assert set(per_job) <= uids  # no orphaned pods
    for name in cancelled:
        assert jobs.pod(name) is None
    ids = [j["status"]["executionId"] for j in by_name.values() if j["kind"] == "MaskingExecution"]
    assert len(ids) == len(set(ids)) == 8  # no executionId reused
