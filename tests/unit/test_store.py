"""The operator's store: newer resourceVersions win, deletions are not resurrected by stale events."""

from __future__ import annotations

import json

from datajobs.controller.store import Store


def job(uid: str, rv: int, status: str = "QUEUED") -> dict:
    return {
        "metadata": {"uid": uid, "resourceVersion": str(rv), "managedFields": [{"x": 1}]},
        "status": {"status": status},
    }


def pod(uid: str, job_uid: str, rv: int) -> dict:
    return {"metadata": {"uid": uid, "resourceVersion": str(rv), "labels": {"datajobs.io/job-uid": job_uid}}}


def test_newer_version_wins_and_older_is_ignored():
    store = Store()
    assert store.put_job("IntegrityJob", job("a", 5, "RUNNING"))
    assert not store.put_job("IntegrityJob", job("a", 4, "QUEUED"))
    assert store.jobs["a"][1]["status"]["status"] == "RUNNING"
    assert "managedFields" not in store.jobs["a"][1]["metadata"]


def test_a_deleted_job_is_not_resurrected_by_a_stale_listing():
    store = Store()
    store.put_job("IntegrityJob", job("a", 5))
    store.drop_job(job("a", 6))
    assert not store.put_job("IntegrityJob", job("a", 5))
    assert "a" not in store.jobs


def test_pods_are_keyed_by_their_job_and_a_deleted_pod_stays_deleted():
    store = Store()
    assert store.put_pod(pod("p1", "a", 3)) == "a"
    assert store.drop_pod(pod("p1", "a", 4)) == "a"
    store.put_pod(pod("p1", "a", 3))  # stale event after the delete
    assert "a" not in store.pods
    store.put_pod(pod("p2", "a", 9))  # a new pod for the same job is a different object
    assert store.pods["a"]["metadata"]["uid"] == "p2"


def test_stored_objects_share_their_keys_and_short_strings_and_stay_equal():
    raw = (
        '{"metadata": {"name": "%s", "namespace": "team-a", "uid": "%s", "resourceVersion": "%d"},'
        ' "spec": {"destinationId": "dest-1"}, "status": {"status": "RUNNING", "conditions":'
        ' [{"type": "WorkerPod", "status": "True", "reason": "Observed", "message": "%s"}]}}'
    )
    long_message = "x" * 200
    first = json.loads(raw % ("a", "u1", 1, long_message))
    second = json.loads(raw % ("b", "u2", 2, long_message))
    store = Store()
    assert store.put_job("IntegrityJob", json.loads(json.dumps(first)))
    assert store.put_job("IntegrityJob", second)
    a, b = store.jobs["u1"][1], store.jobs["u2"][1]
    assert a == first  # the same content
    key_a = next(k for k in a["status"]["conditions"][0] if k == "reason")
    key_b = next(k for k in b["status"]["conditions"][0] if k == "reason")
    assert key_a is key_b
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["status"]["status"] is b["status"]["status"]
    assert a["status"]["conditions"][0]["message"] is not b["status"]["conditions"][0]["message"]


def test_a_deleted_pods_last_state_is_kept_for_its_job_until_a_new_pod_or_the_job_goes():
    """The DELETED event carries the final state: a termination message the kubelet wrote just before
    the delete must reach the job even when that status change and the delete are handled together."""
    store = Store()
    store.put_pod(pod("p1", "a", 3))
    final = pod("p1", "a", 5) | {
        "status": {"phase": "Failed", "containerStatuses": [{"name": "worker", "state": {"terminated": {}}}]}
    }
    store.drop_pod(final)
    assert "a" not in store.pods and store.gone_pods["a"]["status"]["phase"] == "Failed"
    store.put_pod(pod("p2", "a", 9))  # a new pod for the job: the old one's report is history
    assert "a" not in store.gone_pods
    store.drop_pod(pod("p2", "a", 8))  # a DELETED built from an older copy (a re-check) keeps the newer
    assert store.gone_pods["a"]["metadata"]["resourceVersion"] == "9"
    store.drop_job(job("a", 10))
    assert "a" not in store.gone_pods
