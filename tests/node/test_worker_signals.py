"""Stopping workers on the real node: a real kubelet sends SIGTERM, waits the grace, SIGKILLs, OOM-kills.

A graceful cancel through the HTTP adapter and an immediate one through `kubectl patch` stop the
reference masking worker while it waits at a gate (tests/node/maskgate.py), so each stop lands mid-run
at any speed; a template worker that ignores SIGTERM and one that outgrows its memory limit show what
the operator makes of the kubelet's verdicts."""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

import json
import logging
import time
from typing import Any

from kubernetes import client
from maskgate import masked_counts, seed_gated, waiting_at_a_gate
from maskingdb import RULES, foreign_keys, trigger_states
from operatorkit import condition
from test_adapter_contract import delphix, http, start_adapter, wait_visible  # noqa: F401 (fixture)
from workerkit import (  # noqa: F401 (fixtures)
    LogStream,
    job_status,
    jobs,
    make_rules,
    make_secret,
    node_operator,
    pod_postgres,
    postgres,
    run_operator,
    terminated_state,
    watch_job,
    watch_pod,
)

from helpers import wait_for

log = logging.getLogger(__name__)

CUSTOMERS, ORDERS, BATCH = 3000, 2000, 250
GATE = 1001  # the worker waits inside the batch of customers 1001-1250 until the test opens the gate
DISABLED = [
    'trigger "customers_readonly" on "public"."customers"',
    'foreign key "orders_customer_email_fkey" on "public"."orders"',
]
PY = "/opt/datajobs/bin/python"


def start_masking(core: client.CoreV1Api, jobs, pod_postgres, namespace: str, name: str):
    """A MaskingExecution of the default worker over a gated database; returns (dsn, gates)."""
    target = pod_postgres.create_database("cancel")
    gates = seed_gated(target, CUSTOMERS, ORDERS, [GATE])
    make_secret(
        core,
        namespace,
        "target-db",
        {"TARGET_DSN": pod_postgres.for_pods(target), "MASKING_KEY": "node-test-masking-key-0123456789"},
    )
    make_rules(core, namespace, "mask-rules", {**RULES, "batchSize": BATCH})
    jobs.create(
        "MaskingExecution",
        name,
        {
            "jobId": 21,
            "connectorType": "DATABASE",
            "connectionSecretName": "target-db",
            "maskingRulesConfigMap": "mask-rules",
        },
    )
    wait_for(lambda: waiting_at_a_gate(target), timeout=120, message="the worker waiting at the gate")
    assert trigger_states(target)["customers_readonly"] == "D"  # disabled while masking
    # the kubelet reports the start a moment after the fact: until then `kubectl logs` is refused
    jobs.wait_pod_running(name, timeout=60)
    return target, gates


def the_end(jobs, pods, job_history, kind: str, name: str, timeout: float = 90) -> dict[str, Any]:
    """Wait for CANCELLED; check it was written only after the pod was gone. Returns the final status."""
    final = jobs.wait_status(kind, name, "CANCELLED", "FAILED", "SUCCEEDED", "WARNING", timeout=timeout)
    assert jobs.pod(name) is None, "the job is finished but its worker pod still exists"
    assert final["status"] == "CANCELLED", final
    assert pods.deleted.wait(30), "no DELETED event for the worker pod"
    wait_for(
        lambda: job_history.first(lambda s: job_status(s).get("status") == "CANCELLED"),
        message="the CANCELLED version in the job's watch",
    )
    gone = pods.first(lambda s: s.type == "DELETED")
    cancelled = job_history.first(lambda s: job_status(s).get("status") == "CANCELLED")
    # one etcd: resourceVersions are its revisions, so they order writes across both kinds of object
    assert gone.resource_version < cancelled.resource_version, (
        gone.resource_version,
        cancelled.resource_version,
    )
    cancelling = [
        s
        for s in job_history.versions
        if (c := condition(job_status(s), "Cancelling")) is not None and c["status"] == "True"
    ]
    assert cancelling and all(s.resource_version < gone.resource_version for s in cancelling)
    return final


def last_terminated(pods) -> client.V1ContainerStateTerminated:
    for seen in reversed(pods.versions):
        state = terminated_state(seen.obj)
        if state is not None:
            return state
    raise AssertionError("the worker container was never reported terminated")


def first_time(pods, predicate) -> float:
    seen = pods.first(lambda s: s.type != "DELETED" and predicate(s.obj))
    assert seen is not None
    return seen.at


def test_a_graceful_cancel_through_the_adapter_mid_masking_restores_everything_before_cancelled(
    real_node, node_operator, pod_postgres, jobs, kube_api, namespace, kubectl, start_adapter, cluster
):
    core = client.CoreV1Api(kube_api)
    adapter = start_adapter()
    pods = watch_pod(core, namespace, "mask-worker")
    history = watch_job(kube_api, namespace, "MaskingExecution", "mask")
    target, gates = start_masking(core, jobs, pod_postgres, namespace, "mask")
    logs = LogStream(cluster.kubeconfig, namespace, "mask-worker")
    try:
        status = jobs.wait_status("MaskingExecution", "mask", "RUNNING")
        url = f"{adapter.url}/executions/{status['executionId']}"
        wait_visible(url, delphix())
        asked = time.monotonic()
        code, body = http("POST", url + "/cancel?expectedStatus=RUNNING&graceful=true", delphix())
        assert code == 200, body
        # the worker got SIGTERM while its batch waits at the gate; now let that batch finish
        wait_for(
            lambda: (
                "stop requested: cancelled (graceful)"
                in kubectl("-n", namespace, "logs", "mask-worker").stdout
            ),
            timeout=30,
            message="the worker's log says it was asked to stop gracefully",
        )
        gates.open(GATE)
        opened = time.time()
        final = the_end(jobs, pods, history, "MaskingExecution", "mask")
    finally:
        gates.close()
        pods.stop()
        history.stop()
        logs.stop()
    deleting = next(s.obj for s in pods.versions if s.obj.metadata.deletion_timestamp)
    assert deleting.metadata.deletion_grace_period_seconds == 30  # the pod's own grace: graceful
    terminated = last_terminated(pods)
    assert terminated.exit_code == 143, terminated
    report = json.loads(terminated.message)
    assert report["cancelled"] is True and report["stopMode"] == "graceful"
    assert report["disabled"] == DISABLED and report["restored"] == DISABLED and report["leftDisabled"] == []
    # the database: everything the worker disabled is enabled again, and no batch is half masked
    assert trigger_states(target) == {"customers_readonly": "A", "customers_note_audit": "O"}
    assert "orders_customer_email_fkey" in foreign_keys(target)  # back (NOT VALID: half the rows are masked)
    assert masked_counts(target, CUSTOMERS, ORDERS, BATCH) == (
        GATE - 1 + BATCH,
        0,
    )  # the gated batch finished
    assert final["rowsMasked"] == GATE - 1 + BATCH and final["rowsTotal"] == CUSTOMERS + ORDERS
    assert "restored all 2 disabled object(s)" in condition(final, "Finished")["message"]
    gone = pods.first(lambda s: s.type == "DELETED").at
    report_logged = logs.first("final report")
    assert report_logged is not None, logs.lines[-5:]
    log.info(
        f"graceful cancel on the real node: POST -> pod gone {gone - asked:.2f} s (grace 30 s); gate opened"
        f" -> batch committed, restored, final report logged {report_logged - opened:.2f} s"
    )


def test_an_immediate_cancel_leaves_in_time_and_its_report_of_what_it_left_disabled_reaches_the_status(
    real_node, node_operator, pod_postgres, jobs, kube_api, namespace, kubectl, cluster
):
    core = client.CoreV1Api(kube_api)
    pods = watch_pod(core, namespace, "mask-worker")
    history = watch_job(kube_api, namespace, "MaskingExecution", "mask")
    target, gates = start_masking(core, jobs, pod_postgres, namespace, "mask")
    logs = LogStream(cluster.kubeconfig, namespace, "mask-worker")
    try:
        jobs.wait_status("MaskingExecution", "mask", "RUNNING")
        kubectl(
            "-n",
            namespace,
            "patch",
            "maskingexecution",
            "mask",
            "--type=merge",
            "-p",
            '{"spec": {"cancelRequested": {"graceful": false}}}',
        )
        final = the_end(jobs, pods, history, "MaskingExecution", "mask")
    finally:
        gates.close()  # never opened: the worker left its batch waiting at the gate
        pods.stop()
        history.stop()
        logs.stop()
    deleting = next(s.obj for s in pods.versions if s.obj.metadata.deletion_timestamp)
    assert deleting.metadata.deletion_grace_period_seconds == 5  # IMMEDIATE_GRACE_SECONDS
    terminated = last_terminated(pods)
    # not 137: the worker left on its own, before the kubelet's SIGKILL, and wrote its report
    assert terminated.exit_code == 143 and terminated.reason == "Error", terminated
    report = json.loads(terminated.message)
    assert report["cancelled"] is True and report["stopMode"] == "immediate" and report["restored"] == []
    left = {entry["object"]: entry["restoreSql"] for entry in report["leftDisabled"]}
    assert list(left) == DISABLED
    # the report reaches the job's status: what was left disabled and the SQL that restores it
    finished = condition(final, "Finished")["message"]
    for label, restore_sql in left.items():
        assert label in finished and restore_sql in finished, finished
    # and it is what the database shows; no batch half masked
    assert trigger_states(target)["customers_readonly"] == "D"
    assert "orders_customer_email_fkey" not in foreign_keys(target)
    assert masked_counts(target, CUSTOMERS, ORDERS, BATCH) == (GATE - 1, 0)
    assert final["rowsMasked"] == GATE - 1
    deleting_seen = pods.first(
        lambda s: s.type != "DELETED" and s.obj.metadata.deletion_timestamp is not None
    )
    asked = deleting_seen.at
    exited = first_time(pods, lambda p: terminated_state(p) is not None)
    gone = pods.first(lambda s: s.type == "DELETED").at
    stop_logged, report_logged = logs.first("stop requested"), logs.first("final report")
    assert stop_logged is not None and report_logged is not None, logs.lines[-5:]
    stopping, reported = stop_logged - deleting_seen.wall, report_logged - deleting_seen.wall
    log.info(
        f"immediate cancel on the real node: delete seen -> worker logs 'stop requested' {stopping:.2f} s,"
        f" its final report {reported:.2f} s; exit seen {exited - asked:.2f} s, pod gone {gone - asked:.2f} s"
        " (grace 5 s)"
    )


def template_job(real_node, script: str, grace: int, **container: Any) -> dict[str, Any]:
    """A worker template running `script` in the built image on the real node."""
    return {
        "spec": {
            "terminationGracePeriodSeconds": grace,
            "containers": [
                {
                    "name": "worker",
                    "image": real_node.image,
                    "imagePullPolicy": "Never",
                    "command": [PY, "-u", "-c", script],
                    **container,
                }
            ],
            **real_node.placement,
        }
    }


def test_a_worker_that_ignores_sigterm_is_killed_at_its_grace_and_the_job_ends_cancelled(
    real_node, node_operator, jobs, kube_api, namespace, kubectl
):
    core = client.CoreV1Api(kube_api)
    script = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: print('SIGTERM ignored', flush=True))\n"
        "print('worker up', flush=True)\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    grace = 6
    pods = watch_pod(core, namespace, "stubborn-worker")
    history = watch_job(kube_api, namespace, "MaskingExecution", "stubborn")
    try:
        jobs.create(
            "MaskingExecution",
            "stubborn",
            {"jobId": 5, "connectorType": "DATABASE", "template": template_job(real_node, script, grace)},
        )
        jobs.wait_pod_running("stubborn", timeout=120)
        wait_for(
            lambda: "worker up" in kubectl("-n", namespace, "logs", "stubborn-worker").stdout,
            message="`kubectl logs` of the running worker",
        )
        asked = time.monotonic()
        jobs.cancel("MaskingExecution", "stubborn", graceful=True)
        wait_for(
            lambda: "SIGTERM ignored" in kubectl("-n", namespace, "logs", "stubborn-worker").stdout,
            message="the worker got SIGTERM (and ignored it)",
        )
        the_end(jobs, pods, history, "MaskingExecution", "stubborn", timeout=grace + 60)
    finally:
        pods.stop()
        history.stop()
    gone = pods.first(lambda s: s.type == "DELETED").at
    terminated = last_terminated(pods)
    assert terminated.exit_code == 137, terminated  # SIGKILL
    # not before its grace (the kubelet waited), and at it: a worker never killed would sleep on for ever
    assert grace <= gone - asked < grace + 30, (
        f"killed {gone - asked:.1f} s after the cancel with a {grace} s grace"
    )
    log.info(f"SIGTERM-ignoring worker: cancel -> pod gone {gone - asked:.2f} s (grace {grace} s)")


def test_an_oom_killed_worker_ends_failed_with_a_reason_that_says_so(
    real_node, node_operator, jobs, namespace
):
    script = (
        "print('allocating', flush=True)\n"
        "blocks = []\n"
        "while True:\n"
        "    blocks.append(bytearray(16 << 20))\n"
        "    print('holding', len(blocks) * 16, 'MiB', flush=True)\n"
    )
    limits = {"resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}}
    spec = {
        "destinationId": "dest-1",
        "modelIds": ["orders"],
        "template": template_job(real_node, script, 5, **limits),
    }
    jobs.create("IntegrityJob", "hungry", spec)
    final = jobs.wait_status("IntegrityJob", "hungry", "FAILED", "SUCCEEDED", "WARNING", timeout=120)
    assert final["status"] == "FAILED", final
    # what the kubelet reported: OOMKilled, and (FallbackToLogsOnError) the last log lines as the message
    terminated = terminated_state(jobs.pod("hungry"))
    assert terminated.reason == "OOMKilled" and terminated.exit_code == 137, terminated
    assert "holding" in terminated.message and "malformed" not in final["log_message"]
    finished = condition(final, "Finished")
    assert "OOMKilled" in finished["message"] and "137" in finished["message"], finished
    assert "OOMKilled" in final["log_message"], final["log_message"]
