"""The operator's store: newer resourceVersions win, deletions are not resurrected by stale events."""

from __future__ import annotations

import json

from datajobs.controller.store import Store


def job(uid: str, rv: int, status: str = "QUEUED") -> dict:
    return {
        "metadata": {"uid": uid, "resourceVersion": str(rv), "managedFields": [{"x": 1}]},
        "status": {"status": status},
    }


def pod(
    uid: str, job_uid: str, rv: int, name: str = "j-worker", namespace: str = "ns", owned: bool = True
) -> dict:
    meta = {"name": name, "namespace": namespace, "uid": uid, "resourceVersion": str(rv)}
    meta["labels"] = {"datajobs.io/job-uid": job_uid, "app.kubernetes.io/managed-by": "datajobs-operator"}
    if owned:
        meta["ownerReferences"] = [{"kind": "IntegrityJob", "name": "j", "uid": job_uid, "controller": True}]
    return {"metadata": meta}


def named_job(uid: str, name: str = "j", namespace: str = "ns") -> dict:
    return {"metadata": {"uid": uid, "name": name, "namespace": namespace, "resourceVersion": "1"}}


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


def test_pods_are_found_by_their_job_and_a_deleted_pod_stays_deleted():
    store = Store()
    store.put_job("IntegrityJob", named_job("a"))
    assert store.put_pod(pod("p1", "a", 3)) == "a"
    assert store.worker("a")["metadata"]["uid"] == "p1"
    assert store.drop_pod(pod("p1", "a", 4)) == "a"
    store.put_pod(pod("p1", "a", 3))  # stale event after the delete
    assert store.worker("a") is None
    store.put_pod(pod("p2", "a", 9))  # a new pod for the same job is a different object
    assert store.worker("a")["metadata"]["uid"] == "p2"


def test_a_pod_is_a_worker_only_by_namespace_name_and_controller_uid():
    store = Store()
    store.put_job("IntegrityJob", named_job("a"))
    forged = [
        pod("f1", "a", 3, namespace="elsewhere"),  # right label and owner uid, other namespace
        pod("f2", "a", 3, name="other-worker"),  # right label and owner uid, same namespace, other name
    ]
    for body in forged:
        store.put_pod(body)
        assert store.worker("a") is None
    store.put_pod(pod("f3", "a", 3, owned=False))  # right name and label, no ownerReference
    assert store.worker("a") is None
    store.put_pod(pod("f4", "b", 4))  # right name, controlled by another object
    assert store.worker("a") is None
    store.put_pod(pod("p1", "a", 5))
    assert store.worker("a")["metadata"]["uid"] == "p1"
    store.put_pod(pod("f5", "a", 6, namespace="elsewhere"))  # a forgery arriving later changes nothing
    assert store.worker("a")["metadata"]["uid"] == "p1"


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


def test_a_deleted_workers_last_state_is_kept_for_its_job_until_a_new_pod_or_the_job_goes():
    """The DELETED event carries the final state: a termination message the kubelet wrote just before
    the delete must reach the job even when that status change and the delete are handled together."""
    store = Store()
    store.put_job("IntegrityJob", named_job("a"))
    store.put_pod(pod("p1", "a", 3))
    final = pod("p1", "a", 5) | {
        "status": {"phase": "Failed", "containerStatuses": [{"name": "worker", "state": {"terminated": {}}}]}
    }
    store.drop_pod(final)
    assert store.worker("a") is None and store.gone_pods["a"]["status"]["phase"] == "Failed"
    store.put_pod(pod("p2", "a", 9))  # a new pod for the job: the old one's report is history
    assert "a" not in store.gone_pods
    store.drop_pod(pod("p2", "a", 8))  # a DELETED built from an older copy (a re-check) keeps the newer
    assert store.gone_pods["a"]["metadata"]["resourceVersion"] == "9"
    store.put_pod(pod("p3", "a", 11, owned=False))  # not the job's worker: nothing kept when it goes
    store.drop_pod(pod("p3", "a", 12, owned=False))
    assert store.gone_pods["a"]["metadata"]["uid"] == "p2"
    store.drop_job(job("a", 13))
    assert "a" not in store.gone_pods


def test_equal_specs_are_one_object_and_a_new_generation_brings_its_own():
    def body(uid: str, generation: int, image: str) -> dict:
        template = {"spec": {"containers": [{"name": "worker", "image": image}]}}
        return {
            "metadata": {"uid": uid, "name": uid, "namespace": "ns", "resourceVersion": str(generation),
                         "generation": generation},
            "spec": {"destinationId": "d", "modelIds": ["orders"], "template": template},
        }  # fmt: skip

    store = Store()
    store.put_job("IntegrityJob", body("a", 1, "w:1"))
    store.put_job("IntegrityJob", body("b", 1, "w:1"))
    assert store.jobs["a"][1]["spec"] is store.jobs["b"][1]["spec"]
    assert store.jobs["a"][1]["spec"] == body("a", 1, "w:1")["spec"]
    edited = body("a", 2, "w:2")
    store.put_job("IntegrityJob", edited)
    assert (
        store.jobs["a"][1]["spec"] == edited["spec"]
        and store.jobs["b"][1]["spec"]["template"] != (edited["spec"]["template"])
    )


def test_a_stored_pod_keeps_the_workers_reports_and_not_its_labels_and_shares_its_spec():
    store = Store()
    first, second = pod("p1", "a", 3, name="a-worker"), pod("p2", "b", 3, name="b-worker")
    for p in (first, second):
        p["metadata"]["annotations"] = {"datajobs.io/progress": '{"rowsMasked": 1}', "other": "x"}
        p["spec"] = {"containers": [{"name": "worker", "image": "w:1", "env": []}], "nodeName": "n1"}
    store.put_pod(first)
    store.put_pod(second)
    a, b = store.pods[("ns", "a-worker")], store.pods[("ns", "b-worker")]
    assert a["metadata"]["annotations"] == {"datajobs.io/progress": '{"rowsMasked": 1}'}
    assert "labels" not in a["metadata"]
    assert a["spec"] is b["spec"] and a["spec"]["containers"] == [{"name": "worker"}]
    assert a["metadata"]["ownerReferences"][0]["uid"] == "a"


def test_the_shared_values_are_bounded_and_keep_the_ones_many_objects_hold():
    from datajobs.controller import store as store_module

    share = store_module._Shared()
    common = share({"template": {"image": "w:1"}})
    for i in range(3 * store_module.MAX_SHARED_VALUES):
        share({"startTime": f"2026-12-02T00:00:{i:05d}Z"})  # one-offs, as a pod's status is
        assert share({"template": {"image": "w:1"}}) is common  # used all along: never evicted
    assert len(share._by_text) == store_module.MAX_SHARED_VALUES
