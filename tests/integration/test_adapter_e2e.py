"""End to end: the adapter in front of the real operator (`datajobs run`) on the local control plane."""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter
from typing import Any

import aiohttp
import pytest
from operatorkit import SPECS, Jobs, condition
from test_adapter_contract import (  # noqa: F401 (fixtures)
    ADMIN_KEY,
    DELPHIX_ERROR,
    DELPHIX_EXECUTION,
    PREQUEL_ERROR,
    PREQUEL_OK,
    adapter,
    delphix,
    http,
    prequel,
    start_adapter,
    wait_visible,
)

from datajobs.adapter.server import ThreadedAdapter
from helpers import wait_for

KINDS = ["IntegrityJob", "MaskingExecution"]


def job_url(adapter: ThreadedAdapter, kind: str, status: dict[str, Any]) -> str:
    if kind == "IntegrityJob":
        return f"{adapter.url}/destinations/{status['destination_id']}/data-integrity/{status['id']}"
    return f"{adapter.url}/executions/{status['executionId']}"


def headers_for(kind: str) -> dict[str, str]:
    return prequel() if kind == "IntegrityJob" else delphix()


@pytest.mark.parametrize("kind", KINDS)
def test_cancel_of_a_running_job_through_the_adapter_ends_cancelled_with_the_pod_gone(
    kind: str, run_operator: Any, jobs: Jobs, adapter: ThreadedAdapter
) -> None:
    run_operator()
    jobs.create(kind, "victim", SPECS[kind]())
    jobs.wait_pod_running("victim")
    status = jobs.wait_status(kind, "victim", "RUNNING")
    url = job_url(adapter, kind, status)
    wait_visible(url, headers_for(kind))

    suffix = "/cancel" if kind == "IntegrityJob" else "/cancel?expectedStatus=RUNNING&graceful=false"
    code, body = http("POST", url + suffix, headers_for(kind))
    assert code == 200, body
    if kind == "IntegrityJob":
        PREQUEL_OK.validate(body)
        assert body["data"]["job"]["status"] == "RUNNING"
    else:
        DELPHIX_EXECUTION.validate(body)
        assert body["status"] == "RUNNING"

    final = jobs.wait_status(kind, "victim", "CANCELLED", timeout=60)
    assert jobs.pod("victim") is None  # CANCELLED is written only once the worker pod is gone
    assert condition(final, "CancelRequest")["reason"] == "Accepted"

    # the adapter serves the outcome, and a further cancel is a 400 that says why
    wait_visible(url, headers_for(kind), lambda b: "CANCELLED" in str(b))
    code, body = http("POST", url + "/cancel", headers_for(kind))
    assert code == 400
    if kind == "IntegrityJob":
        PREQUEL_ERROR.validate(body)
        assert "already CANCELLED" in body["message"]
    else:
        DELPHIX_ERROR.validate(body)
        assert "already CANCELLED" in body["errorMessage"]


def test_mismatched_guard_leaves_the_running_job_untouched(
    run_operator: Any, jobs: Jobs, adapter: ThreadedAdapter
) -> None:
    run_operator()
    jobs.create("MaskingExecution", "keeps-running", SPECS["MaskingExecution"]())
    jobs.wait_pod_running("keeps-running")
    status = jobs.wait_status("MaskingExecution", "keeps-running", "RUNNING")
    url = job_url(adapter, "MaskingExecution", status)
    wait_visible(url, delphix())
    before = jobs.get("MaskingExecution", "keeps-running")

    code, body = http("POST", url + "/cancel?expectedStatus=QUEUED", delphix())

    assert code == 400 and "actual status is RUNNING" in body["errorMessage"]
    DELPHIX_ERROR.validate(body)
    after = jobs.get("MaskingExecution", "keeps-running")
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert "cancelRequested" not in after["spec"]
    assert after["status"]["status"] == "RUNNING" and jobs.pod("keeps-running") is not None


def test_100_cancels_at_jobs_mid_dispatch_agree_with_their_final_state(
    run_operator: Any, jobs: Jobs, start_adapter: Any
) -> None:
    """Ten queued executions are dispatched one by one while 100 simultaneous mixed cancels hit them."""
    kind = "MaskingExecution"
    run_operator(max_running=10)
    blockers = [f"blocker-{i}" for i in range(10)]
    for name in blockers:
        jobs.create(kind, name, SPECS[kind]())
    for name in blockers:
        jobs.wait_pod_running(name)
    names = [f"mid-{i}" for i in range(10)]
    for name in names:
        jobs.create(kind, name, SPECS[kind]())
    ids = {name: jobs.wait_status(kind, name, "QUEUED")["executionId"] for name in names}
    adapter = start_adapter()
    for execution_id in ids.values():
        wait_visible(f"{adapter.url}/executions/{execution_id}", delphix())

    # request i targets job i % 10. Jobs 0-4 get mixed requests; jobs 5-7 only QUEUED guards and jobs 8-9
    # only RUNNING guards, so some jobs may well end with every request rejected (and must then go on).
    def guard(i: int) -> str | None:
        job, round_ = i % 10, i // 10
        return (None, "QUEUED", "RUNNING")[round_ % 3] if job < 5 else "QUEUED" if job < 8 else "RUNNING"

    expectations = [guard(i) for i in range(100)]
    answers: list[tuple[str, int, str | None, Any]] = []

    def dispatched() -> int:
        """Targets that got a worker slot (RUNNING, or finished after running), or all once none is queued."""
        statuses = [(j.get("status") or {}) for j in jobs.list(kind) if j["metadata"]["name"] in names]
        if not any(s.get("status") == "QUEUED" for s in statuses):
            return len(names)
        return sum(1 for s in statuses if s.get("startTime"))

    def free_slots_one_by_one() -> None:
        # blocker k finishes only once the slot freed by blocker k-1 was used: ten dispatches in a row,
        # each a little after the previous one, and the burst below lands in the middle of them
        for k, blocker in enumerate(blockers):
            jobs.finish_pod(blocker, 0)
            wait_for(lambda k=k: dispatched() >= k + 1, timeout=60, interval=0.005, message="no dispatch")

    async def burst() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(i: int) -> None:
                name = names[i % 10]
                query = {"graceful": "true" if i % 2 else "false"}
                if expectations[i]:
                    query["expectedStatus"] = expectations[i]
                async with session.post(
                    f"{adapter.url}/executions/{ids[name]}/cancel",
                    params=query,
                    headers={"Authorization": f"Bearer {ADMIN_KEY}"},
                ) as resp:
                    answers.append((name, resp.status, expectations[i], await resp.json()))

            await asyncio.gather(*(one(i) for i in range(100)))

    sequencer = threading.Thread(target=free_slots_one_by_one)
    sequencer.start()
    wait_for(lambda: dispatched() >= 1, timeout=60, interval=0.005, message="the first dispatch never came")
    asyncio.run(burst())
    sequencer.join(120)
    assert not sequencer.is_alive()

    def settled() -> dict[str, dict[str, Any]] | None:
        items = {j["metadata"]["name"]: j for j in jobs.list(kind) if j["metadata"]["name"] in names}
        for job in items.values():
            state = job["status"]["status"]
            verdict = condition(job["status"], "CancelRequest")
            pending = "cancelRequested" in job["spec"] and (
                verdict is None or verdict["observedGeneration"] != job["metadata"]["generation"]
            )
            if (
                pending
                or state == "QUEUED"
                or (state == "RUNNING" and verdict and verdict["status"] == "True")
            ):
                return None
        return items

    final = wait_for(settled, timeout=120, interval=0.2, message="the operator never settled every job")

    assert {code for _, code, _, _ in answers} <= {200, 400}
    for name, code, expected, body in answers:
        if code == 200:
            DELPHIX_EXECUTION.validate(body)
            assert expected is None or body["status"] == expected, (name, expected, body)
        else:
            DELPHIX_ERROR.validate(body)
    accepted = {name for name, code, _, _ in answers if code == 200}
    for name, job in final.items():
        # a 200 means a cancel whose guard held was recorded: the job must end CANCELLED; a job that got
        # only 400s was never cancelled by anyone
        assert (job["status"]["status"] == "CANCELLED") == (name in accepted), (name, job["status"])
        if name in accepted:
            assert jobs.pod(name) is None
    # the race really raced: some guarded cancels held (200) and some were refused (400)
    assert 200 in {code for _, code, _, _ in answers} and 400 in {code for _, code, _, _ in answers}, answers
    outcome = Counter((expected, code, body.get("status")) for _, code, expected, body in answers)
    logging.getLogger(__name__).info(
        "100 cancels mid-dispatch: %d cancelled, %d running; (expectedStatus, code, status): %s",
        sum(j["status"]["status"] == "CANCELLED" for j in final.values()),
        sum(j["status"]["status"] == "RUNNING" for j in final.values()),
        sorted(outcome.items(), key=str),
    )
