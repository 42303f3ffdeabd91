"""The kubectl plugin's pure parts: references, ages, queue positions, progress, cancel verdicts, --for."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from datajobs.kubectlplugin import cancel, present
from datajobs.kubectlplugin.describe import timeline
from datajobs.kubectlplugin.main import build_parser
from datajobs.kubectlplugin.refs import Ref, UsageError, parse_targets
from datajobs.kubectlplugin.waiting import Never, parse_for, parse_timeout
from datajobs.models import INTEGRITY_JOB, MASKING_EXECUTION


def job(kind: str, name: str, status: dict[str, Any] | None = None, ns: str = "a", **meta: Any) -> dict:
    return {
        "kind": kind,
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}", "generation": 1, **meta},
        "spec": {},
        "status": status,
    }


def cond(ctype: str, status: str, reason: str, when: str, generation: int = 1, message: str = "") -> dict:
    return {
        "type": ctype,
        "status": status,
        "reason": reason,
        "lastTransitionTime": when,
        "observedGeneration": generation,
        "message": message,
    }


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (125, "2m5s"),
        (600, "10m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (30 * 3600, "30h"),
        (50 * 3600, "2d2h"),
        (10 * 86400, "10d"),
        (800 * 86400, "2y70d"),
    ],
)
def test_ages_read_like_kubectls(seconds: float, shown: str) -> None:
    assert present.human_duration(seconds) == shown


def test_targets_take_kubectls_forms() -> None:
    both = parse_targets([])
    assert {k.kind for k in both.kinds} == {"IntegrityJob", "MaskingExecution"} and not both.names
    assert parse_targets(["ij/a", "maskingexecutions.datajobs.io/b"]).names == (
        (INTEGRITY_JOB, "a"),
        (MASKING_EXECUTION, "b"),
    )
    assert parse_targets(["mex", "x", "y"]).names == ((MASKING_EXECUTION, "x"), (MASKING_EXECUTION, "y"))
    assert parse_targets(["datajobs"]).kinds == both.kinds
    for bad in (["pods/x"], ["ij/a", "b"], ["ij/"], ["datajobs", "x"]):
        with pytest.raises(UsageError):
            parse_targets(bad)


def test_queue_positions_follow_the_operators_fifo_per_kind_across_namespaces() -> None:
    queued = {"status": "QUEUED"}
    jobs = [
        job("IntegrityJob", "late", {**queued, "submitted_at": "2026-01-01T00:00:03Z"}, ns="a"),
        job("IntegrityJob", "early", {**queued, "submitted_at": "2026-01-01T00:00:01Z"}, ns="b"),
        job("IntegrityJob", "tie", {**queued, "submitted_at": "2026-01-01T00:00:03Z"}, ns="0"),
        job("IntegrityJob", "running", {"status": "RUNNING", "submitted_at": "2026-01-01T00:00:00Z"}),
        job("MaskingExecution", "m", {**queued, "submitTime": "2026-01-01T00:00:09Z"}),
    ]
    places = present.queue_positions(jobs)
    assert places == {
        Ref("b", "IntegrityJob", "early"): 1,
        Ref("0", "IntegrityJob", "tie"): 2,  # same submit time: namespace/name decides, as in the operator
        Ref("a", "IntegrityJob", "late"): 3,
        Ref("a", "MaskingExecution", "m"): 1,
    }


def test_progress_is_rows_for_masking_and_models_for_integrity() -> None:
    assert present.progress(job("MaskingExecution", "m", {"rowsMasked": 1200, "rowsTotal": 5000})) == (
        "1,200/5,000 rows (24%)"
    )
    assert present.progress(job("MaskingExecution", "m", {"status": "QUEUED"})) == "-"
    ij = job(
        "IntegrityJob", "i", {"model_ids": ["a", "b", "c"], "data_integrity_results": [{"model_name": "b"}]}
    )
    assert present.progress(ij) == "1/3 models"


def test_the_row_shows_the_latest_conditions_reason() -> None:
    status = {
        "status": "RUNNING",
        "conditions": [
            cond("CancelRequest", "False", "ExpectedStatusMismatch", "2026-01-01T00:00:05Z", message="no"),
            cond("WorkerPod", "True", "Observed", "2026-01-01T00:00:02Z"),
        ],
    }
    j = job("MaskingExecution", "m", status, creationTimestamp="2026-01-01T00:00:00Z")
    now = datetime(2026, 1, 1, 0, 1, 0, tzinfo=UTC)
    assert present.row(j, {}, now) == ["mex/m", "RUNNING", "-", "-", "60s", "ExpectedStatusMismatch"]
    text = present.get_table([j], {}, now, wide=True)
    assert text.splitlines()[0].split() == [
        "NAME",
        "STATUS",
        "QUEUE",
        "PROGRESS",
        "AGE",
        "REASON",
        "ID",
        "MESSAGE",
    ]


GEN2 = 2


def _cancel_job(status: str, *conditions: dict) -> dict:
    return job("MaskingExecution", "m", {"status": status, "conditions": list(conditions)}, generation=GEN2)


REF = Ref("a", "MaskingExecution", "m")


def test_verdict_waits_for_the_patched_generation() -> None:
    old = cond("CancelRequest", "False", "ExpectedStatusMismatch", "t", generation=1, message="old")
    assert cancel.verdict(REF, _cancel_job("RUNNING", old), GEN2) is None
    accepted = cond("CancelRequest", "True", "Accepted", "t", generation=GEN2)
    assert cancel.verdict(REF, _cancel_job("RUNNING", accepted), GEN2) is None  # pod still stopping
    done = cancel.verdict(REF, _cancel_job("CANCELLED", accepted), GEN2)
    assert done is not None and done.ok and done.line == "maskingexecution.datajobs.io/m cancelled"


def test_verdict_reports_a_rejection_with_its_reason() -> None:
    msg = "cancel rejected: expectedStatus is QUEUED but the job is RUNNING"
    rejected = cond("CancelRequest", "False", "ExpectedStatusMismatch", "t", generation=GEN2, message=msg)
    outcome = cancel.verdict(REF, _cancel_job("RUNNING", rejected), GEN2)
    assert outcome is not None and not outcome.ok
    assert outcome.text == (
        "cancel rejected (ExpectedStatusMismatch): expectedStatus is QUEUED but the job is RUNNING"
    )


def test_a_finished_job_is_not_patched() -> None:
    accepted = cond("CancelRequest", "True", "Accepted", "t")
    already = cancel.preflight(REF, _cancel_job("CANCELLED", accepted))
    assert already is not None and already.ok and already.text == "already cancelled"
    finished = cancel.preflight(REF, _cancel_job("SUCCEEDED"))
    assert finished is not None and not finished.ok and "AlreadyFinished" in finished.text
    assert cancel.preflight(REF, _cancel_job("QUEUED")) is None


def test_the_request_names_every_field_so_a_merge_patch_replaces_an_earlier_one() -> None:
    body = cancel.request_body(None, False, datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC))
    assert body == {
        "spec": {
            "cancelRequested": {
                "expectedStatus": None,
                "graceful": False,
                "requestedAt": "2026-01-02T03:04:05.000006Z",
            }
        }
    }


def test_wait_for_conditions() -> None:
    running = job("IntegrityJob", "i", {"status": "RUNNING"})
    failed = job("IntegrityJob", "i", {"status": "FAILED"})
    assert parse_for("status=running").check(running) == "condition met"
    assert parse_for("finished").check(running) is None
    assert parse_for("finished").check(failed) == "condition met"
    with pytest.raises(Never):
        parse_for("cancelled").check(failed)
    rejected = job(
        "IntegrityJob", "i", {"status": "RUNNING", "conditions": [cond("CancelRequest", "False", "X", "t")]}
    )
    assert parse_for("condition=CancelRequest=false").check(rejected) == "condition met"
    assert parse_for("condition=CancelRequest").check(rejected) is None
    for bad in ("status=DONE", "condition=X=maybe", "soon"):
        with pytest.raises(UsageError):
            parse_for(bad)


def test_durations() -> None:
    assert [parse_timeout(t) for t in ("30", "30s", "2m", "1m30s", "1h", "500ms", "0")] == [
        30,
        30,
        120,
        90,
        3600,
        0.5,
        0,
    ]
    for bad in ("2x", "m", "1m3"):
        with pytest.raises(UsageError):
            parse_timeout(bad)


def test_connection_flags_work_before_and_after_the_command() -> None:
    parser = build_parser()
    after = parser.parse_args(["get", "-n", "x", "--context", "c"])
    before = parser.parse_args(["-n", "x", "--context", "c", "get"])
    assert (after.namespace, after.context) == (before.namespace, before.context) == ("x", "c")


def test_the_timeline_orders_events_of_one_second_by_their_commit_order() -> None:
    """Event times are whole seconds; two Events of one second come in resourceVersion order."""

    def event(reason: str, rv: str) -> dict[str, Any]:
        meta = {"resourceVersion": rv}
        return {"reason": reason, "lastTimestamp": "2026-01-01T00:00:05Z", "metadata": meta}

    rows = timeline({"status": {}}, [event("CancelAccepted", "1002"), event("CancelRejected", "998")], [])
    assert [r[2] for r in rows] == ["Normal CancelRejected", "Normal CancelAccepted"]
