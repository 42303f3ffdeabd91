"""Time limits on a real control plane: activeDeadlineSeconds, ttlSecondsAfterFinished, stuck cancels."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client
from operatorkit import ENDED, GO_ZERO_TIME, SPECS, STARTED, PodRecorder, condition
from test_operator_lifecycle import assert_vendor_valid

from helpers import wait_for

KINDS = ["IntegrityJob", "MaskingExecution"]
GRACE = 3  # the test template's terminationGracePeriodSeconds
HOLD = "datajobs.io/test-hold"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class NeverEndsWithPod:
    """Records any moment the job showed a terminal status while its worker pod still existed."""

    def __init__(self, jobs, kind: str, name: str) -> None:
        self.seen: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(jobs, kind, name), daemon=True)
        self._thread.start()

    def _run(self, jobs, kind: str, name: str) -> None:
        while not self._stop.is_set():
            try:
                status = jobs.status(kind, name).get("status")
                if status in ("FAILED", "CANCELLED") and jobs.pod(name) is not None:
                    self.seen.append(f"{status} while the worker pod still existed")
            except client.ApiException as exc:
                if exc.status != 404:  # the job deleted at the end of a test: nothing more to watch
                    self.seen.append(f"could not read the job: {exc.status}")
                return
            self._stop.wait(0.05)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(timeout=10)
        return self.seen


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_past_its_deadline_is_stopped_gracefully_and_fails_once_its_pod_is_gone(
    kind, run_operator, jobs
):
    run_operator()
    recorder = PodRecorder(jobs.core.api_client, jobs.ns)
    jobs.create(kind, "slow", SPECS[kind](activeDeadlineSeconds=5))  # the worker never finishes by itself
    jobs.wait_pod_running("slow")
    invariant = NeverEndsWithPod(jobs, kind, "slow")
    final = jobs.wait_status(kind, "slow", "FAILED", timeout=5 + GRACE + 15)
    assert invariant.stop() == []
    recorder.stop()
    assert jobs.pod("slow") is None
    stopping = recorder.terminating["slow"]
    assert stopping.metadata.annotations["datajobs.io/cancel-mode"] == "graceful"
    assert stopping.metadata.deletion_grace_period_seconds == 5  # max(template grace 3, the immediate 5)
    assert condition(final, "Finished")["reason"] == "DeadlineExceeded"
    assert condition(final, "DeadlineExceeded")["status"] == "True"
    assert "deadline of 5 s" in condition(final, "Finished")["message"]
    ran = (parse(final[ENDED[kind]]) - parse(final[STARTED[kind]])).total_seconds()
    assert ran >= 5, f"ended {ran:.1f} s after it started: before its deadline"
    # within the deadline plus the grace it was stopped with (5 s), and a few seconds to see the pod go
    # (times in status are whole seconds)
    assert ran <= 5 + 5 + 4, f"ended {ran:.1f} s after it started: long after its deadline and grace"
    assert_vendor_valid(kind, final)
    wait_for(
        lambda: jobs.event_reasons("slow").count("DeadlineExceeded") == 2,  # the stop, then the end
        timeout=10,
        message="DeadlineExceeded events",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_that_finishes_in_time_is_untouched_by_its_deadline(kind, run_operator, jobs):
    run_operator()
    jobs.create(kind, "quick", SPECS[kind](activeDeadlineSeconds=4))
    jobs.wait_pod_running("quick")
    jobs.finish_pod("quick", 0)
    finished = jobs.wait_status(kind, "quick", "SUCCEEDED", "WARNING")
    # the deadline's moment passes with the job finished: nothing may act on it then
    past = parse(finished[STARTED[kind]]) + timedelta(seconds=4 + 3)
    wait_for(lambda: datetime.now(UTC) > past, timeout=15, message="the deadline's moment passed")
    final = jobs.status(kind, "quick")
    assert final["status"] == finished["status"] and final[ENDED[kind]] == finished[ENDED[kind]]
    assert condition(final, "DeadlineExceeded") is None
    assert "DeadlineExceeded" not in jobs.event_reasons("quick")
    pod = jobs.pod("quick")
    assert pod is not None and pod.metadata.deletion_timestamp is None


@pytest.mark.parametrize("kind", KINDS)
def test_a_finished_job_is_deleted_with_its_pod_its_ttl_after_it_ended_and_one_without_stays(
    kind, run_operator, jobs
):
    run_operator()
    jobs.create(kind, "short-lived", SPECS[kind](ttlSecondsAfterFinished=3))
    jobs.create(kind, "kept", SPECS[kind]())
    for name in ("short-lived", "kept"):
        jobs.wait_pod_running(name)
        jobs.finish_pod(name, 0)
    ended = jobs.wait_status(kind, "short-lived", "SUCCEEDED", "WARNING")[ENDED[kind]]
    assert ended != GO_ZERO_TIME
    jobs.wait_status(kind, "kept", "SUCCEEDED", "WARNING")
    budget = 3 + 5 - (datetime.now(UTC) - parse(ended)).total_seconds()

    def gone() -> bool:
        try:
            jobs.get(kind, "short-lived")
        except client.ApiException as exc:
            return exc.status == 404 and jobs.pod("short-lived") is None
        return False

    wait_for(gone, timeout=max(budget, 0.1), message="the job and its pod deleted within 3 s + 5 s of ending")
    deleted_after = (datetime.now(UTC) - parse(ended)).total_seconds()
    assert deleted_after >= 3, f"deleted {deleted_after:.1f} s after it ended: before its TTL"
    assert jobs.get(kind, "kept")["status"]["status"] in ("SUCCEEDED", "WARNING")
    assert jobs.pod("kept") is not None


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_held_by_a_finalizer_is_stuck_visibly_escalates_and_ends_only_once_the_pod_is_gone(
    kind, run_operator, jobs
):
    operator = run_operator()
    jobs.create(kind, "held", SPECS[kind]())
    jobs.wait_pod_running("held")
    jobs.core.patch_namespaced_pod("held-worker", jobs.ns, {"metadata": {"finalizers": [HOLD]}})
    invariant = NeverEndsWithPod(jobs, kind, "held")
    try:
        jobs.cancel(kind, "held", graceful=True, escalateAfterSeconds=2)
        # stuck once the grace (5 s: the immediate stop's, more than the template's 3) and 10 s are over
        stuck = wait_for(
            lambda: (
                (c := condition(jobs.status(kind, "held"), "CancelStuck")) and c["status"] == "True" and c
            ),
            timeout=5 + 10 + 15,
            message="CancelStuck raised",
        )
        assert HOLD in stuck["message"]
        assert f'datajobs_stuck_stops{{kind="{kind}"}} 1.0' in operator.metrics()
        wait_for(
            lambda: "CancelStuck" in jobs.event_reasons("held"),
            timeout=10,
            message="CancelStuck Warning Event",
        )
        escalated = wait_for(
            lambda: (
                (c := condition(jobs.status(kind, "held"), "CancelStuck"))
                and c["reason"] == "Escalated"
                and c
            ),
            timeout=2 + 15,
            message="the escalation",
        )
        assert "escalateAfterSeconds" in escalated["message"]
        pod = wait_for(
            lambda: (p := jobs.pod("held")) and p.metadata.deletion_grace_period_seconds == 0 and p,
            timeout=10,
            message="the pod deleted again with grace 0",
        )
        assert pod.metadata.finalizers == [HOLD]  # the operator never removes another's finalizer
        assert jobs.status(kind, "held")["status"] == "RUNNING"
    finally:
        jobs.core.patch_namespaced_pod("held-worker", jobs.ns, {"metadata": {"finalizers": None}})
    final = jobs.wait_status(kind, "held", "CANCELLED", timeout=30)
    assert invariant.stop() == []
    assert jobs.pod("held") is None
    assert condition(final, "CancelStuck")["status"] == "False"
    assert_vendor_valid(kind, final)
    wait_for(
        lambda: f'datajobs_stuck_stops{{kind="{kind}"}} 0.0' in operator.metrics(),
        timeout=10,
        message="the stuck gauge back to 0",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_keeps_the_workers_log_in_a_configmap_owned_by_the_job_and_deleted_with_it(
    kind, run_operator, jobs
):
    """On kwok there is no container to read, so the kept copy says so (the real node's tests read the
    worker's own lines); what is checked here is the copy's place, owner, bound and life."""
    run_operator()
    job = jobs.create(kind, "noisy", SPECS[kind](ttlSecondsAfterFinished=3))
    jobs.wait_pod_running("noisy")
    jobs.cancel(kind, "noisy", graceful=True)
    jobs.wait_status(kind, "noisy", "CANCELLED", timeout=30)
    kept = jobs.core.read_namespaced_config_map("noisy-worker-log", jobs.ns)
    (owner,) = kept.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid) == (kind, "noisy", job["metadata"]["uid"])
    assert kept.metadata.annotations["datajobs.io/kept-because"] == "cancel"
    assert set(kept.data) == {"worker"}
    assert len(kept.data["worker"].encode()) <= 64 * 1024
    assert "was not available" in kept.data["worker"]  # kwok: no kubelet to ask

    def configmap_gone() -> bool:
        try:
            jobs.core.read_namespaced_config_map("noisy-worker-log", jobs.ns)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(configmap_gone, timeout=3 + 5 + 10, message="the kept log deleted with its job")
    with pytest.raises(client.ApiException) as gone:
        jobs.get(kind, "noisy")
    assert gone.value.status == 404


def fail_attempt(jobs, name: str, attempt: int) -> None:
    """Play the kubelet: the worker of `attempt` runs, then exits 1."""
    wait_for(
        lambda: (
            (p := jobs.pod(name)) is not None
            and p.status.phase == "Running"
            and p.metadata.deletion_timestamp is None
            and (jobs.status(KIND_OF[name], name).get("attempts") or 1) == attempt
        ),
        timeout=30,
        message=f"attempt {attempt} running",
    )
    jobs.finish_pod(name, 1, "boom")


KIND_OF: dict[str, str] = {}


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_worker_with_backoff_limit_2_runs_3_times_then_fails(kind, run_operator, jobs):
    run_operator()
    KIND_OF["flaky"] = kind
    jobs.create(kind, "flaky", SPECS[kind](backoffLimit=2))
    for attempt in (1, 2, 3):
        fail_attempt(jobs, "flaky", attempt)
    final = jobs.wait_status(kind, "flaky", "FAILED", timeout=30)
    assert final["attempts"] == 3
    assert condition(final, "Retrying")["reason"] == "AttemptStarted"
    assert "exit code 1" in condition(final, "Finished")["message"]
    assert_vendor_valid(kind, {k: v for k, v in final.items() if k != "attempts"})
    wait_for(
        lambda: (
            # the first dispatch has no Event of its own (its status tells it); each later attempt has one
            jobs.event_reasons("flaky").count("Dispatched") == 2
            and jobs.event_reasons("flaky").count("Retrying") == 2
        ),
        timeout=10,
        message="2 retries, each dispatched",
    )
    kept = jobs.core.read_namespaced_config_map("flaky-worker-log", jobs.ns)
    assert kept.metadata.annotations["datajobs.io/kept-because"] == "failure"


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_during_attempt_2_ends_cancelled_with_no_attempt_3(kind, run_operator, jobs):
    run_operator()
    KIND_OF["flaky2"] = kind
    recorder = PodRecorder(jobs.core.api_client, jobs.ns)
    jobs.create(kind, "flaky2", SPECS[kind](backoffLimit=2))
    fail_attempt(jobs, "flaky2", 1)
    second = wait_for(
        lambda: (
            (p := jobs.pod("flaky2")) is not None
            and p.status.phase == "Running"
            and p.metadata.deletion_timestamp is None
            and jobs.status(kind, "flaky2").get("attempts") == 2
            and p
        ),
        timeout=30,
        message="attempt 2 running",
    )
    jobs.cancel(kind, "flaky2", graceful=False)
    final = jobs.wait_status(kind, "flaky2", "CANCELLED", timeout=30)
    # attempt 3 would have come 4 s after attempt 2 ended: let that moment pass before looking
    past = parse(final[ENDED[kind]]) + timedelta(seconds=4 + 3)
    wait_for(lambda: datetime.now(UTC) > past, timeout=15, message="attempt 3's moment passed")
    recorder.stop()
    final = jobs.status(kind, "flaky2")
    assert final["status"] == "CANCELLED" and final["attempts"] == 2
    assert jobs.pod("flaky2") is None
    assert recorder.terminating["flaky2"].metadata.uid != second.metadata.uid  # attempt 1's pod went first
    assert jobs.event_reasons("flaky2").count("Dispatched") == 1  # attempt 2's; no attempt 3
