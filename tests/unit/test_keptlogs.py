"""The kept-logs ConfigMap: bounded tails, owned by the job, named for the documented command."""

from __future__ import annotations

import pytest

from datajobs.core.keptlogs import (
    KEPT_LOG_BYTES,
    MAX_CONTAINERS,
    kept_logs_configmap,
    kept_logs_name,
    log_tail,
)

JOB = {
    "apiVersion": "datajobs.io/v1alpha1",
    "kind": "MaskingExecution",
    "metadata": {"name": "mask-crm-167", "namespace": "team-a", "uid": "job-uid-1"},
}


def test_a_short_log_is_kept_whole():
    assert log_tail("one\ntwo\n") == "one\ntwo\n"


def test_a_long_log_keeps_its_last_64_kib_from_a_line_start():
    lines = [f"line {i:06d}" for i in range(20000)]
    text = "\n".join(lines) + "\n"
    kept = log_tail(text)
    assert len(kept.encode()) <= KEPT_LOG_BYTES
    assert kept.endswith("line 019999\n")
    assert kept.startswith("line ")  # never half a line
    assert kept.splitlines()[0] in lines


def test_a_cut_never_splits_a_character():
    text = "é" * KEPT_LOG_BYTES  # 2 bytes each, no newline
    kept = log_tail(text)
    assert len(kept.encode()) <= KEPT_LOG_BYTES and set(kept) == {"é"}


def test_the_configmap_is_owned_by_the_job_and_named_for_the_command():
    cm = kept_logs_configmap(JOB, "mask-crm-167-worker", "pod-uid-1", "cancel", {"worker": "bye\n"}, "T")
    meta = cm["metadata"]
    assert meta["name"] == kept_logs_name("mask-crm-167") == "mask-crm-167-worker-log"
    assert meta["namespace"] == "team-a"
    (owner,) = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("MaskingExecution", "mask-crm-167", "job-uid-1")
    assert owner["blockOwnerDeletion"] is False  # needs no finalizers permission
    assert meta["annotations"]["datajobs.io/kept-because"] == "cancel"
    assert meta["annotations"]["datajobs.io/pod-uid"] == "pod-uid-1"
    assert cm["data"] == {"worker": "bye\n"}


@pytest.mark.parametrize("containers", [1, MAX_CONTAINERS + 3])
def test_the_whole_copy_is_bounded(containers):
    logs = {f"c{i}": "x" * (3 * KEPT_LOG_BYTES) for i in range(containers)}
    cm = kept_logs_configmap(JOB, "p", "u", "failure", logs, "T")
    assert len(cm["data"]) == min(containers, MAX_CONTAINERS)
    assert sum(len(v.encode()) for v in cm["data"].values()) <= MAX_CONTAINERS * KEPT_LOG_BYTES < 1024 * 1024
