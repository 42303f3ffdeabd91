"""The worker pod builder: labels, owner, restart policy, environment, template handling."""

from __future__ import annotations

import json

import pytest

from datajobs.controller.config import namespace_share, parse_resources
from datajobs.core.workerpod import WorkerDefaults, build_worker_pod, short_name

JOB = {
    "metadata": {"name": "nightly", "namespace": "data", "uid": "u-1"},
    "spec": {
        "destinationId": "d1",
        "modelIds": ["a", "b"],
        "samplingRate": 0.5,
        "cancelRequested": {"graceful": True},
    },
    "status": {"status": "RUNNING"},
}


def env_of(pod):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def test_default_worker_pod_has_protocol_labels_owner_and_env():
    pod = build_worker_pod("IntegrityJob", JOB, WorkerDefaults(image="img:1"))
    meta = pod["metadata"]
    assert meta["name"] == "nightly-worker" and meta["namespace"] == "data"
    assert meta["labels"] == {
        "datajobs.io/kind": "IntegrityJob",
        "datajobs.io/job": "nightly",
        "datajobs.io/job-uid": "u-1",
        "app.kubernetes.io/managed-by": "datajobs-operator",
    }
    owner = meta["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("IntegrityJob", "u-1", True)
    container = pod["spec"]["containers"][0]
    assert container["image"] == "img:1" and container["args"] == ["worker", "integrity"]
    assert pod["spec"]["restartPolicy"] == "Never"
    env = env_of(pod)
    assert env["DATAJOBS_DESTINATION_ID"] == "d1" and json.loads(env["DATAJOBS_MODEL_IDS"]) == ["a", "b"]
    assert env["DATAJOBS_SAMPLING_RATE"] == "0.5"
    assert "cancelRequested" not in json.loads(env["DATAJOBS_SPEC"])
    assert env["DATAJOBS_POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_template_is_kept_and_our_fields_win():
    job = json.loads(json.dumps(JOB))
    job["spec"]["template"] = {
        "metadata": {"labels": {"team": "x", "datajobs.io/job": "spoofed"}},
        "spec": {
            "restartPolicy": "Always",
            "containers": [
                {"name": "sidecar", "image": "s"},
                {
                    "name": "worker",
                    "image": "mine",
                    "env": [{"name": "DATAJOBS_KIND", "value": "x"}, {"name": "KEEP", "value": "1"}],
                },
            ],
        },
    }
    pod = build_worker_pod("IntegrityJob", job, WorkerDefaults())
    assert (
        pod["metadata"]["labels"]["team"] == "x" and pod["metadata"]["labels"]["datajobs.io/job"] == "nightly"
    )
    assert pod["spec"]["restartPolicy"] == "Never"
    worker = pod["spec"]["containers"][1]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["DATAJOBS_KIND"] == "IntegrityJob" and env["KEEP"] == "1"
    assert "env" not in pod["spec"]["containers"][0]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Always"  # input not mutated


def test_masking_env_carries_the_execution_id():
    job = {
        "metadata": {"name": "m", "namespace": "n", "uid": "u"},
        "spec": {"jobId": 9},
        "status": {"executionId": 1234},
    }
    env = env_of(build_worker_pod("MaskingExecution", job, WorkerDefaults()))
    assert env["DATAJOBS_EXECUTION_ID"] == "1234" and env["DATAJOBS_JOB_ID"] == "9"
    assert env["DATAJOBS_CONNECTOR_TYPE"] == ""


def test_long_names_fit_label_limits_and_stay_stable():
    name = "x" * 200
    assert len(short_name(name)) == 63 and short_name(name) == short_name(name)
    assert short_name(name) != short_name("x" * 199 + "y")


def test_connection_secret_and_masking_rules_reach_the_worker():
    job = {
        "metadata": {"name": "m", "namespace": "n", "uid": "u"},
        "spec": {"jobId": 9, "connectionSecretName": "pg", "maskingRulesConfigMap": "rules"},
        "status": {},
    }
    pod = build_worker_pod("MaskingExecution", job, WorkerDefaults())
    worker = pod["spec"]["containers"][0]
    assert worker["envFrom"] == [{"secretRef": {"name": "pg"}}]
    assert worker["volumeMounts"] == [
        {"name": "datajobs-masking-rules", "mountPath": "/etc/datajobs/masking", "readOnly": True}
    ]
    assert pod["spec"]["volumes"] == [{"name": "datajobs-masking-rules", "configMap": {"name": "rules"}}]
    assert "connectionSecretName" not in json.loads(env_of(pod)["DATAJOBS_SPEC"])


def test_default_workers_have_requests_and_limits_and_templates_keep_their_own():
    pod = build_worker_pod("IntegrityJob", JOB, WorkerDefaults())
    assert pod["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }
    custom = WorkerDefaults(resources={"requests": {"cpu": "1"}})
    assert build_worker_pod("IntegrityJob", JOB, custom)["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1"}
    }
    template = {"spec": {"containers": [{"name": "worker", "image": "w:1"}]}}
    templated = {**JOB, "spec": {**JOB["spec"], "template": template}}
    assert (
        "resources"
        not in build_worker_pod("IntegrityJob", templated, WorkerDefaults())["spec"]["containers"][0]
    )


def test_worker_resources_flag_is_checked_and_the_namespace_share_defaults_to_half():
    assert parse_resources('{"limits": {"memory": "1Gi", "cpu": 2}}') == {
        "limits": {"memory": "1Gi", "cpu": "2"}
    }
    for bad in ("[]", '{"request": {}}', '{"limits": {"cpu": true}}', "{"):
        with pytest.raises(ValueError, match="worker-resources"):
            parse_resources(bad)
    assert namespace_share(10, None) == 5 and namespace_share(1, None) == 1 and namespace_share(3, None) == 2
    assert namespace_share(10, 0) == 10 and namespace_share(10, 3) == 3
