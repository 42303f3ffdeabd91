"""The operator's lifecycle on a real control plane: QUEUED → RUNNING → SUCCEEDED | WARNING | FAILED."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from operatorkit import ENDED, GO_ZERO_TIME, SPECS, STARTED, condition

from helpers import wait_for

KINDS = ["IntegrityJob", "MaskingExecution"]
VENDOR = Path(__file__).parents[1] / "fixtures" / "vendor"


def vendor_validator(kind: str) -> Draft202012Validator:
    name, ref = (
        ("prequel", "DataIntegrityJobResource") if kind == "IntegrityJob" else ("delphix", "Execution")
    )
    doc = json.loads((VENDOR / f"{name}.schema.json").read_text())
    return Draft202012Validator({**doc, "$ref": f"#/$defs/{ref}"})


def vendor_part(status: dict) -> dict:
    return {
        k: v
        for k, v in status.items()
        if k not in ("observedGeneration", "conditions", "cancelRequestEvaluated")
    }


def assert_vendor_valid(kind: str, status: dict) -> None:
    errors = [e.message for e in vendor_validator(kind).iter_errors(vendor_part(status))]
    assert errors == [], errors


RESULT = {
    "model_name": "orders",
    "is_healthy": False,
    "error_message": "2 rows missing",
    "sampling_rate": 1.0,
    "total_rows_compared": 100,
    "total_rows_stale": 1,
    "total_rows_pending": 0,
    "total_rows_missing": 2,
    "total_rows_incorrect": 3,
    "total_rows_orphaned": 0,
    "mismatched_partitions": [
        {
            "source_row_count": 10,
            "destination_row_count": 8,
            "last_modified_lower_bound_epoch": 1700000000,
            "last_modified_upper_bound_epoch": 1700003600,
        }
    ],
}
REPORTS = {
    "IntegrityJob": {
        "status": "WARNING",
        "log_message": "1 of 1 models unhealthy",
        "data_integrity_results": [RESULT],
    },
    "MaskingExecution": {
        "status": "SUCCEEDED",
        "rowsMasked": 500,
        "rowsTotal": 500,
        "bytesProcessed": 0,
        "bytesTotal": 0,
    },
}


@pytest.mark.parametrize("kind", KINDS)
def test_job_runs_in_a_worker_pod_and_takes_the_workers_result(kind, run_operator, jobs, namespace):
    run_operator()
    job = jobs.create(kind, "job-a", SPECS[kind]())
    status = jobs.wait_status(kind, "job-a", "RUNNING")
    assert status[STARTED[kind]] != GO_ZERO_TIME
    assert_vendor_valid(kind, status)
    pod = jobs.wait_pod_running("job-a")
    assert pod.metadata.labels["datajobs.io/kind"] == kind
    assert pod.metadata.labels["datajobs.io/job"] == "job-a"
    assert pod.metadata.labels["app.kubernetes.io/managed-by"] == "datajobs-operator"
    owner = pod.metadata.owner_references[0]
    assert (owner.kind, owner.uid, owner.controller) == (kind, job["metadata"]["uid"], True)
    assert pod.spec.restart_policy == "Never"
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["DATAJOBS_JOB_NAME"] == "job-a" and env["DATAJOBS_NAMESPACE"] == namespace
    if kind == "MaskingExecution":
        assert int(env["DATAJOBS_EXECUTION_ID"]) == status["executionId"] >= 1
    else:
        assert env["DATAJOBS_DESTINATION_ID"] == "dest-1"

    jobs.finish_pod("job-a", 0, REPORTS[kind])
    final = jobs.wait_status(kind, "job-a", "SUCCEEDED", "WARNING")
    assert final["status"] == REPORTS[kind]["status"]
    assert final[ENDED[kind]] >= final[STARTED[kind]]
    if kind == "IntegrityJob":
        assert final["data_integrity_results"] == [RESULT]
        assert final["log_message"] == "1 of 1 models unhealthy"
    else:
        assert (final["rowsMasked"], final["rowsTotal"]) == (500, 500)
    assert condition(final, "Finished")["status"] == "True"
    assert final["observedGeneration"] == 1
    assert_vendor_valid(kind, final)
    wait_for(
        lambda: final["status"].capitalize() in jobs.event_reasons("job-a"),
        timeout=10,
        message="lifecycle events missing",
    )


@pytest.mark.parametrize("kind", KINDS)
def test_worker_failure_is_failed_with_exit_code(kind, run_operator, jobs):
    run_operator()
    jobs.create(kind, "job-f", SPECS[kind]())
    jobs.wait_pod_running("job-f")
    jobs.finish_pod("job-f", 3, "")
    final = jobs.wait_status(kind, "job-f", "FAILED")
    assert "exit code 3" in condition(final, "Finished")["message"]
    assert_vendor_valid(kind, final)
    wait_for(lambda: "Failed" in jobs.event_reasons("job-f"), timeout=10, message="no Failed event")


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_termination_message_is_failed_not_a_crash_loop(kind, run_operator, jobs):
    operator = run_operator()
    jobs.create(kind, "job-m", SPECS[kind]())
    jobs.wait_pod_running("job-m")
    jobs.finish_pod("job-m", 0, "{this is not json")
    final = jobs.wait_status(kind, "job-m", "FAILED")
    assert "malformed termination message" in condition(final, "Finished")["message"]
    if kind == "IntegrityJob":
        assert "malformed termination message" in final["log_message"]
    assert "datajobs_reconcile_errors_total{" not in operator.metrics()
    assert operator.exited() is None


def test_progress_shows_up_in_status_while_running(run_operator, jobs):
    run_operator()
    jobs.create("MaskingExecution", "mex-p", SPECS["MaskingExecution"]())
    jobs.wait_pod_running("mex-p")
    jobs.report_progress("mex-p", {"rowsMasked": 1200, "rowsTotal": 50000})
    status = wait_for(
        lambda: (s := jobs.status("MaskingExecution", "mex-p")).get("rowsMasked") == 1200 and s,
        timeout=15,
        message="progress never mirrored",
    )
    assert status["status"] == "RUNNING" and status["rowsTotal"] == 50000
    assert_vendor_valid("MaskingExecution", status)


def test_invalid_template_fails_the_job_with_the_servers_reason(run_operator, jobs):
    run_operator()
    spec = SPECS["IntegrityJob"]()
    spec["template"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"
    jobs.create("IntegrityJob", "bad-tpl", spec)
    final = jobs.wait_status("IntegrityJob", "bad-tpl", "FAILED")
    assert "worker pod rejected by the API server" in final["log_message"]
    assert jobs.pod("bad-tpl") is None


def test_deleting_a_job_deletes_its_pod(run_operator, jobs):
    run_operator()
    jobs.create("IntegrityJob", "doomed", SPECS["IntegrityJob"]())
    jobs.wait_pod_running("doomed")
    jobs.custom.delete_namespaced_custom_object("datajobs.io", "v1alpha1", jobs.ns, "integrityjobs", "doomed")
    wait_for(lambda: jobs.pod("doomed") is None, timeout=60, message="worker pod not garbage-collected")


def test_execution_ids_are_unique_and_increasing(run_operator, jobs):
    run_operator()
    ids = []
    for i in range(5):  # one after the other: each submitted once the one before has its id
        jobs.create("MaskingExecution", f"mex-{i}", SPECS["MaskingExecution"](job_id=i + 1))
        ids.append(jobs.wait_status("MaskingExecution", f"mex-{i}", "QUEUED", "RUNNING")["executionId"])
    assert all(i >= 1 for i in ids)
    assert all(a < b for a, b in itertools.pairwise(ids)), ids  # strictly increasing in submission order


def test_a_refused_worker_pod_is_visible_and_retried_until_it_fits(run_operator, jobs):
    jobs.core.create_namespaced_resource_quota(
        jobs.ns, {"metadata": {"name": "one-pod"}, "spec": {"hard": {"pods": "1"}}}
    )
    wait_for(
        lambda: (jobs.core.read_namespaced_resource_quota("one-pod", jobs.ns).status.hard or {}).get("pods"),
        timeout=30,
        message="quota never initialised by the controller manager",
    )
    run_operator()
    jobs.create("IntegrityJob", "first", SPECS["IntegrityJob"]())
    jobs.wait_pod_running("first")
    jobs.create("IntegrityJob", "second", SPECS["IntegrityJob"]())
    status = wait_for(
        lambda: (
            (c := condition(jobs.status("IntegrityJob", "second"), "WorkerPod"))
            and c["reason"] == "CreateRefused"
            and c
        ),
        timeout=30,
        message="the refusal never showed on the job",
    )
    assert "exceeded quota" in status["message"]
    wait_for(
        lambda: "WorkerPodRefused" in jobs.event_reasons("second"), timeout=10, message="no Warning event"
    )
    jobs.finish_pod("first", 0)  # a finished pod no longer counts against the quota
    jobs.wait_pod_running("second", timeout=60)
    assert condition(jobs.status("IntegrityJob", "second"), "WorkerPod")["status"] == "True"
