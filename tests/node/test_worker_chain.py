"""The whole worker chain on the real node: the operator (a host process) creates the default worker pod,
the kubelet runs the reference worker from the built image against the real PostgreSQL, the worker
reports progress on its pod and its result in its termination message, and the job's status says so."""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

import logging
import time

from kubernetes import client
from maskgate import masked_counts, seed_gated, waiting_at_a_gate
from maskingdb import RULES, trigger_states
from test_worker_integrity import (
    INCORRECT,
    MISSING,
    ORPHANED,
    PENDING,
    SHIFTED,
    STALE,
    Pair,
    create_table,
    destination_rows,
    expected_partitions,
    source_rows,
)
from workerkit import (  # noqa: F401 (fixtures)
    job_status,
    jobs,
    make_rules,
    make_secret,
    node_operator,
    pod_postgres,
    postgres,
    run_operator,
    watch_job,
)

from helpers import wait_for

log = logging.getLogger(__name__)

CUSTOMERS, ORDERS, BATCH = 3000, 2000, 250
GATES = [1001, 2001]  # the worker waits inside the batch of each gated customer until the test opens it


def test_an_integrity_job_over_seeded_tables_succeeds_with_exactly_the_injected_counts(
    real_node, node_operator, pod_postgres, jobs, kube_api, namespace
):
    core = client.CoreV1Api(kube_api)
    source = source_rows()
    pair = Pair(pod_postgres.create_database("src"), pod_postgres.create_database("dst"), source, {})
    pair.destination = destination_rows(source)
    create_table(pair.source_dsn, "public", pair.source)
    create_table(pair.destination_dsn, "acme", pair.destination, extra_column=True)
    make_secret(
        core,
        namespace,
        "warehouse",
        {
            "SOURCE_DSN": pod_postgres.for_pods(pair.source_dsn),
            "DESTINATION_DSN": pod_postgres.for_pods(pair.destination_dsn),
            "INTEGRITY_BATCH_SIZE": "97",  # small and odd: the merge crosses many batch boundaries
        },
    )
    started = time.monotonic()
    jobs.create(
        "IntegrityJob",
        "nightly",
        {
            "destinationId": "dest-1",
            "orgSchema": "acme",
            "modelIds": ["orders"],
            "samplingRate": 1.0,
            "connectionSecretName": "warehouse",
        },
    )
    status = jobs.wait_status("IntegrityJob", "nightly", "SUCCEEDED", "WARNING", "FAILED", timeout=180)
    elapsed = time.monotonic() - started
    assert status["status"] == "SUCCEEDED", status
    (result,) = status["data_integrity_results"]
    counts = {
        k: result[f"total_rows_{k}"]
        for k in ("compared", "stale", "missing", "incorrect", "orphaned", "pending")
    }
    assert counts == {
        "compared": len(pair.source.keys() | pair.destination.keys()),
        "stale": len(STALE | SHIFTED),
        "missing": len(MISSING),
        "incorrect": len(INCORRECT),
        "orphaned": len(ORPHANED),
        "pending": len(PENDING),
    }
    assert (
        result["model_name"] == "orders" and result["is_healthy"] is False and result["sampling_rate"] == 1.0
    )
    assert result["mismatched_partitions"] == expected_partitions(pair, lambda _k: True)
    assert status["log_message"].startswith("1 models checked, 1 unhealthy")
    # it ran for real: a container of the built image on the real node, which exited 0
    pod = core.read_namespaced_pod("nightly-worker", namespace)
    assert pod.spec.node_name == real_node.name and pod.spec.containers[0].image == real_node.image
    (container,) = pod.status.container_statuses
    assert container.state.terminated.exit_code == 0 and container.image_id
    log.info(f"integrity job on the real node: created -> SUCCEEDED in {elapsed:.1f} s")


def test_a_masking_execution_reports_rising_rows_masked_and_succeeds_with_the_right_totals(
    real_node, node_operator, pod_postgres, jobs, kube_api, namespace, kubectl
):
    core = client.CoreV1Api(kube_api)
    target = pod_postgres.create_database("mask")
    gates = seed_gated(target, CUSTOMERS, ORDERS, GATES)
    make_secret(
        core,
        namespace,
        "target-db",
        {"TARGET_DSN": pod_postgres.for_pods(target), "MASKING_KEY": "node-test-masking-key-0123456789"},
    )
    make_rules(core, namespace, "mask-rules", {**RULES, "batchSize": BATCH})
    history = watch_job(kube_api, namespace, "MaskingExecution", "mask")
    started = time.monotonic()
    try:
        jobs.create(
            "MaskingExecution",
            "mask",
            {
                "jobId": 11,
                "connectorType": "DATABASE",
                "connectionSecretName": "target-db",
                "maskingRulesConfigMap": "mask-rules",
            },
        )
        observed = []
        for gate in GATES:  # while the worker waits at each gate, its progress must show in the status
            wait_for(lambda: waiting_at_a_gate(target), timeout=120, message=f"the worker at gate {gate}")
            done = masked_counts(target, CUSTOMERS, ORDERS, BATCH)[0]
            status = wait_for(
                lambda d=done: (s := jobs.status("MaskingExecution", "mask")).get("rowsMasked") == d and s,
                timeout=30,
                message=f"rowsMasked {done} in the status",
            )
            assert status["status"] == "RUNNING" and status["rowsTotal"] == CUSTOMERS + ORDERS
            observed.append(status["rowsMasked"])
            if gate == GATES[0]:
                # `kubectl logs` of the running worker: what it disabled, before masking (once the kubelet
                # has reported the start: until then the API server refuses the log)
                jobs.wait_pod_running("mask", timeout=60)
                logs = kubectl("-n", namespace, "logs", "mask-worker").stdout
                assert "disabled 2 object(s)" in logs, logs
            gates.open(gate)
        final = jobs.wait_status("MaskingExecution", "mask", "SUCCEEDED", "WARNING", "FAILED", timeout=120)
    finally:
        gates.close()
        history.stop()
    elapsed = time.monotonic() - started
    assert final["status"] == "SUCCEEDED", final
    assert final["rowsMasked"] == final["rowsTotal"] == CUSTOMERS + ORDERS
    assert masked_counts(target, CUSTOMERS, ORDERS, BATCH) == (CUSTOMERS, ORDERS)
    assert trigger_states(target) == {"customers_readonly": "A", "customers_note_audit": "O"}
    # every rowsMasked the job's status carried while RUNNING, in order: rising, from the progress annotation
    running = [
        job_status(s)["rowsMasked"]
        for s in history.versions
        if job_status(s).get("status") == "RUNNING" and "rowsMasked" in job_status(s)
    ]
    assert running == sorted(running) and set(observed) <= set(running), (running, observed)
    assert len({r for r in running if 0 < r < CUSTOMERS + ORDERS}) >= 2, running
    assert observed[0] < observed[1] < CUSTOMERS + ORDERS
    pod = core.read_namespaced_pod("mask-worker", namespace)
    assert pod.spec.node_name == real_node.name and "datajobs.io/progress" in pod.metadata.annotations
    log.info(
        f"masking execution on the real node: created -> SUCCEEDED in {elapsed:.1f} s;"
        f" rowsMasked seen {running}"
    )
