"""Two operator replicas with a leader Lease: only the leader acts; SIGKILL it and the standby takes over."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from faultkit import Recorder, ToughKubelet, all_final, assert_correct_final_state, create_burst, lease_holder
from operatorkit import SPECS, Jobs, OperatorProcess

from helpers import wait_for

LEASE, RENEW, RETRY = 8, 5, 1  # seconds (the chart's defaults are 15, 10, 2)
MAX_RUNNING = 3
ROUNDS = 6


def replica(run_operator: Any, identity: str) -> OperatorProcess:
    return run_operator(
        max_running=MAX_RUNNING,
        extra_args=(
            "--leader-identity", identity,
            "--lease-duration", str(LEASE),
            "--renew-deadline", str(RENEW),
            "--retry-period", str(RETRY),
        ),
    )  # fmt: skip


def leading(process: OperatorProcess) -> bool:
    try:
        text = process.metrics()
    except OSError:  # exited, or not serving yet
        return False
    return bool(re.search(r'^datajobs_leader{identity="[^"]+"} 1\.0$', text, re.M))


def test_a_standby_takes_over_each_time_the_leader_is_sigkilled(
    run_operator: Any, jobs: Jobs, kube_api: Any, namespace: str
) -> None:
    replicas = {name: replica(run_operator, name) for name in ("replica-a", "replica-b")}
    first = wait_for(lambda: lease_holder(kube_api, namespace), timeout=30, message="a leader")
    assert leading(replicas[first]) and not leading(replicas[next(n for n in replicas if n != first)])
    names: list[tuple[str, str]] = []
    cancelled: set[str] = set()
    takeovers: list[float] = []
    exits: list[tuple[str, int | None]] = []
    with Recorder(kube_api, namespace) as recorder, ToughKubelet(jobs, keep_running=cancelled):
        for round_ in range(ROUNDS):
            for name, process in list(replicas.items()):
                if process.exited() is not None:  # never expected: a lost Lease means standing by again
                    exits.append((name, process.exited()))
                    replicas[name] = replica(run_operator, name)  # as the kubelet restarts a container
            leader = wait_for(lambda: lease_holder(kube_api, namespace), timeout=30, message="a leader")
            standby = next(n for n in replicas if n != leader)
            batch = [
                (kind, f"r{round_}-{kind.lower()[:4]}-{i}")
                for kind in ("IntegrityJob", "MaskingExecution")
                for i in range(3)
            ]
            cancelled.add(batch[0][1])  # the kubelet never finishes it: only the cancel ends it
            create_burst(jobs, batch)
            names += batch
            jobs.cancel(*batch[0])  # a cancel in the burst as well
            # mid-burst: the leader has dispatched part of this round's jobs
            wait_for(lambda b=batch: any(jobs.pod(n) for _, n in b[1:]), timeout=30, message="a dispatch")
            killed_at = time.monotonic()
            replicas[leader].kill()
            wait_for(
                lambda s=standby: lease_holder(kube_api, namespace) == s,
                timeout=LEASE + 10,
                message="takeover",
            )
            takeovers.append(time.monotonic() - killed_at)
            wait_for(lambda s=standby: leading(replicas[s]), timeout=10, message=f"{standby} leading")
            replicas[leader] = replica(run_operator, leader)  # back, as the standby
        items = wait_for(lambda: all_final(jobs, names), timeout=120, interval=0.5, message="jobs final")
    logging.getLogger(__name__).warning("takeovers (s): %s; unexpected exits: %s", takeovers, exits)
    assert max(takeovers) <= LEASE + 5, takeovers
    assert exits == []
    assert len(takeovers) == ROUNDS
    assert recorder.max_running["IntegrityJob"] <= MAX_RUNNING, recorder.max_running
    assert recorder.max_running["MaskingExecution"] <= MAX_RUNNING, recorder.max_running
    assert_correct_final_state(jobs, items, cancelled, recorder)


def test_a_clean_shutdown_hands_the_lease_over_at_once_and_a_standby_never_acts(
    run_operator: Any, jobs: Jobs, kube_api: Any, namespace: str
) -> None:
    first = replica(run_operator, "replica-a")
    wait_for(lambda: lease_holder(kube_api, namespace) == "replica-a", timeout=30, message="a leads")
    second = replica(run_operator, "replica-b")
    assert not leading(second) and "waiting for the leader Lease" in second.log_path.read_text()
    jobs.create("IntegrityJob", "before-handover", SPECS["IntegrityJob"]())
    jobs.wait_status("IntegrityJob", "before-handover", "RUNNING", timeout=30)
    # a write is counted once its answer is in, which may be just after the test read the job
    wait_for(lambda: status_writes(first) >= 1, timeout=10, message="the leader's status write counted")
    assert status_writes(second) == 0  # only the leader wrote
    stopped_at = time.monotonic()
    first.stop()  # SIGTERM: kopf's cleanup releases the Lease
    wait_for(lambda: lease_holder(kube_api, namespace) == "replica-b", timeout=LEASE + 5, message="handover")
    handover = time.monotonic() - stopped_at
    assert "released the leader Lease" in first.log_path.read_text()
    assert handover < LEASE, handover  # not an expiry: the Lease was handed back
    jobs.create("IntegrityJob", "after-handover", SPECS["IntegrityJob"]())
    jobs.wait_status("IntegrityJob", "after-handover", "RUNNING", timeout=30)
    wait_for(lambda: status_writes(second) >= 1, timeout=10, message="the new leader's status write counted")


def status_writes(process: OperatorProcess) -> float:
    found = re.findall(
        r'^datajobs_status_writes_total{[^}]*result="ok"[^}]*} (\S+)$', process.metrics(), re.M
    )
    return sum(float(v) for v in found)
