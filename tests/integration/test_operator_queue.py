"""The queue under load: 500 jobs created at once with a limit of 20 — never more than 20 run, FIFO."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from operatorkit import SPECS, Kubelet

from helpers import wait_for

N, LIMIT = 500, 20
CREATORS = 16  # concurrent create requests


def max_overlap(intervals: list[tuple[str, str]]) -> int:
    points = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    current = peak = 0
    for _, delta in points:  # an end sorts before a start at the same instant (-1 < 1)
        current += delta
        peak = max(peak, current)
    return peak


def displacement(expected: list[str], actual: list[str]) -> int:
    """How far, at most, an item of `actual` sits from its place in `expected`."""
    rank = {name: i for i, name in enumerate(expected)}
    return max(abs(rank[name] - i) for i, name in enumerate(actual))


def test_500_jobs_at_once_limit_20_all_finish_in_fifo_order(run_operator, jobs):
    operator = run_operator(max_running=LIMIT)
    names = [f"q-{i:04d}" for i in range(N)]
    with Kubelet(jobs) as kubelet:
        with ThreadPoolExecutor(CREATORS) as pool:
            created = list(pool.map(lambda n: jobs.create("IntegrityJob", n, SPECS["IntegrityJob"]()), names))
        # the API server's own order of submission: the etcd revision each create was committed at
        committed = {c["metadata"]["name"]: int(c["metadata"]["resourceVersion"]) for c in created}

        def all_done():
            items = jobs.list("IntegrityJob")
            done = [j for j in items if (j.get("status") or {}).get("status") == "SUCCEEDED"]
            return len(done) == N and items

        items = wait_for(all_done, timeout=600, interval=1.0, message="not all 500 jobs finished")
    assert len(kubelet.finished) == N
    statuses = [j["status"] for j in items]
    peak = max_overlap([(s["started_at"], s["ended_at"]) for s in statuses])
    assert peak <= LIMIT, f"{peak} jobs ran at once"
    # The operator's submission order is its first sight of each job, recorded as submitted_at. It must
    # follow the API server's commit order; creates that were in flight together (up to CREATORS) have no
    # order among themselves, and kopf hands each object's events to its own task, so that much may swap.
    by_submission = [j["metadata"]["name"] for j in sorted(items, key=lambda j: j["status"]["submitted_at"])]
    by_commit = sorted(committed, key=committed.__getitem__)
    misplaced = displacement(by_commit, by_submission)
    assert misplaced <= CREATORS, f"submitted_at order strays {misplaced} places from the commit order"
    # FIFO: jobs start in submission order. Granting is exact; the jobs granted together (at most LIMIT)
    # are dispatched concurrently, so a start may land up to LIMIT places from its submission rank.
    by_start = [j["metadata"]["name"] for j in sorted(items, key=lambda j: j["status"]["started_at"])]
    drift = displacement(by_submission, by_start)
    assert drift <= LIMIT, f"a job started {drift} places away from its submission order"
    assert "datajobs_reconcile_errors_total{" not in operator.metrics()
    print(f"peak concurrency {peak}, max FIFO drift {drift}, submit-vs-commit drift {misplaced}")  # noqa: T201
