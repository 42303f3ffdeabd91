"""The queue under load: 500 jobs created at once with a limit of 20 — never more than 20 run, FIFO; and
one namespace's jobs never take the slots another namespace is owed."""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from chartkit import extra_namespace  # noqa: F401 (fixture)
from operatorkit import SPECS, Jobs, Kubelet

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


def test_one_namespace_cannot_take_the_slots_another_is_owed(run_operator, jobs, kube_api, extra_namespace):
    """4 slots, a share of 2 per namespace: 6 jobs of one namespace run 2 at a time even while 2 slots are
    free, and the 2 jobs a second namespace creates later take those 2 slots, ahead of the first's queue
    (without the share FIFO would give them to the first namespace's 3rd and 4th job)."""
    run_operator(max_running=4, extra_args=("--namespace", extra_namespace, "--max-running-per-namespace=2"))
    greedy = [f"greedy-{i}" for i in range(6)]
    for name in greedy:
        jobs.create("IntegrityJob", name, SPECS["IntegrityJob"]())

    def statuses(who: Jobs, names: list[str]) -> list[str | None]:
        return [who.status("IntegrityJob", n).get("status") for n in names]

    wait_for(
        lambda: sorted(map(str, statuses(jobs, greedy))) == ["QUEUED"] * 4 + ["RUNNING"] * 2,
        timeout=60,
        message="the first namespace's jobs are not held at its share (2 RUNNING, 4 QUEUED)",
    )
    other = Jobs(kube_api, extra_namespace)
    polite = ["polite-0", "polite-1"]
    for name in polite:
        other.create("IntegrityJob", name, SPECS["IntegrityJob"]())
    for name in polite:
        other.wait_status("IntegrityJob", name, "RUNNING", timeout=60)
    assert statuses(jobs, greedy) == ["RUNNING"] * 2 + ["QUEUED"] * 4  # FIFO within the namespace
