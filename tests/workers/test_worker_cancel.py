"""Stopping the masking worker mid-run: a real process, a real database, its pod read through a real API.

The test plays the operator: it annotates the worker's pod with `datajobs.io/cancel-mode`, sends SIGTERM."""

from __future__ import annotations

import json
import secrets
import signal
import time
from pathlib import Path

import psycopg
import pytest
import yaml
from kubernetes import client
from maskingdb import customer, fetch, foreign_keys, masking_env, order, seed, trigger_states, write_rules

from helpers import wait_for

CUSTOMERS, ORDERS, BATCH = 150_000, 100_000, 500
DISABLED = [
    'trigger "customers_readonly" on "public"."customers"',
    'foreign key "orders_customer_email_fkey" on "public"."orders"',
]


@pytest.fixture(scope="module")
def template_db(postgres) -> str:
    """A database seeded once; each test masks its own copy (CREATE DATABASE … TEMPLATE)."""
    dsn = postgres.create_database("tmpl")
    seed(dsn, CUSTOMERS, ORDERS)
    return dsn.rsplit("/", 1)[1]


@pytest.fixture
def target_db(postgres, template_db) -> str:
    name = f"cancel_{secrets.token_hex(4)}"
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')  # type: ignore[arg-type]
    return postgres.dsn_for(name)


@pytest.fixture
def worker_pod(kube_api, namespace) -> str:
    core = client.CoreV1Api(kube_api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="mask-worker", labels={"datajobs.io/kind": "MaskingExecution"}),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="worker", image="example.invalid/worker:1")],
            termination_grace_period_seconds=30,
        ),
    )
    core.create_namespaced_pod(namespace, pod)
    return "mask-worker"


def start_masking(run_worker, dsn: str, tmp_path: Path, cluster, namespace: str, pod: str, **extra: str):
    env = {
        **masking_env(dsn, write_rules(tmp_path / "rules.yaml", batchSize=BATCH)),
        "DATAJOBS_KUBECONFIG": cluster.kubeconfig,
        "DATAJOBS_NAMESPACE": namespace,
        "DATAJOBS_POD_NAME": pod,
        **extra,
    }
    return run_worker("masking", env)


def annotate(core: client.CoreV1Api, namespace: str, pod: str, mode: str) -> None:
    """What the operator does just before it deletes a cancelled job's pod."""
    core.patch_namespaced_pod(
        pod, namespace, {"metadata": {"annotations": {"datajobs.io/cancel-mode": mode}}}
    )


def progress_of(core: client.CoreV1Api, namespace: str, pod: str) -> dict:
    annotations = core.read_namespaced_pod(pod, namespace).metadata.annotations or {}
    return json.loads(annotations.get("datajobs.io/progress", "{}"))


def wait_until_masking(core, namespace, pod, run) -> dict:
    """Poll the progress the worker reports on its pod until a few batches are committed."""

    def masking_started():
        assert run.popen.poll() is None, f"worker exited early ({run.popen.returncode}):\n{run.log()}"
        progress = progress_of(core, namespace, pod)
        return progress if progress.get("rowsMasked", 0) >= 2 * BATCH else None

    progress = wait_for(masking_started, timeout=90, message="masking progress on the pod")
    assert progress["rowsTotal"] == CUSTOMERS + ORDERS
    return progress


def masked_prefix(dsn: str, table: str, column: str, original) -> int:
    """How many rows are masked; asserts they are exactly the first rows in key order (whole batches)."""
    rows = fetch(dsn, f"SELECT id, {column} FROM {table} ORDER BY id")
    flags = [value != original(i) for i, value in rows]
    count = sum(flags)
    assert flags == [True] * count + [False] * (len(flags) - count), (
        f"{table}: masked rows are not a key prefix"
    )
    return count


def assert_no_half_batch(dsn: str, report: dict) -> None:
    customers = masked_prefix(dsn, "customers", "email", lambda i: customer(i)[1])
    # every masked column of a row moved together: ref is masked iff email is
    refs = masked_prefix(dsn, "customers", "ref", lambda i: customer(i)[3])
    assert refs == customers
    orders = masked_prefix(dsn, "orders", "customer_email", lambda i: order(i, CUSTOMERS)[1])
    assert orders == 0 or customers == CUSTOMERS
    assert customers % BATCH == 0 or customers == CUSTOMERS
    assert orders % BATCH == 0 or orders == ORDERS
    assert report["rowsMasked"] == customers + orders
    assert 0 < report["rowsMasked"] < CUSTOMERS + ORDERS, "the stop did not land mid-run"


def test_graceful_cancel_restores_everything_and_leaves_no_half_batch(
    cluster, kube_api, namespace, worker_pod, target_db, run_worker, tmp_path
):
    core = client.CoreV1Api(kube_api)
    run = start_masking(run_worker, target_db, tmp_path, cluster, namespace, worker_pod)
    wait_until_masking(core, namespace, worker_pod, run)
    assert trigger_states(target_db)["customers_readonly"] == "D"  # disabled while masking
    annotate(core, namespace, worker_pod, "graceful")
    signalled = time.monotonic()
    run.popen.send_signal(signal.SIGTERM)
    assert run.wait(timeout=30) == 143, run.log()
    assert time.monotonic() - signalled < 29  # inside the pod's 30 s grace
    report = run.report()
    assert report["cancelled"] is True and report["stopMode"] == "graceful"
    assert report["disabled"] == DISABLED and report["restored"] == DISABLED and report["leftDisabled"] == []
    assert trigger_states(target_db) == {"customers_readonly": "A", "customers_note_audit": "O"}
    # the foreign key is back (enforced), but half-masked data cannot satisfy it: NOT VALID, and reported
    assert foreign_keys(target_db)["orders_customer_email_fkey"][1] is False
    assert [e["object"] for e in report["notValidated"]] == [DISABLED[1]]
    assert_no_half_batch(target_db, report)


def test_immediate_cancel_exits_within_two_seconds_and_names_what_it_left_disabled(
    cluster, kube_api, namespace, worker_pod, target_db, run_worker, tmp_path
):
    core = client.CoreV1Api(kube_api)
    run = start_masking(run_worker, target_db, tmp_path, cluster, namespace, worker_pod)
    wait_until_masking(core, namespace, worker_pod, run)
    annotate(core, namespace, worker_pod, "immediate")
    signalled = time.monotonic()
    run.popen.send_signal(signal.SIGTERM)
    code = run.wait(timeout=30)
    elapsed = time.monotonic() - signalled
    assert code == 143, run.log()
    assert elapsed < 2.0, f"took {elapsed:.2f} s"
    report = run.report()
    assert report["cancelled"] is True and report["stopMode"] == "immediate"
    assert report["disabled"] == DISABLED and report["restored"] == []
    left = {entry["object"]: entry["restoreSql"] for entry in report["leftDisabled"]}
    assert list(left) == DISABLED
    assert left[DISABLED[0]] == 'ALTER TABLE "public"."customers" ENABLE ALWAYS TRIGGER "customers_readonly"'
    assert "ADD CONSTRAINT" in left[DISABLED[1]]
    # what the report says was left disabled is what the database shows
    assert trigger_states(target_db)["customers_readonly"] == "D"
    assert "orders_customer_email_fkey" not in foreign_keys(target_db)
    assert_no_half_batch(target_db, report)
    # and the reported SQL restores the trigger
    with psycopg.connect(target_db) as conn:
        conn.execute(left[DISABLED[0]])  # type: ignore[arg-type]
    assert trigger_states(target_db)["customers_readonly"] == "A"


@pytest.mark.parametrize("api", ["no-annotation", "unreachable"])
def test_sigterm_that_is_not_a_cancel_or_without_the_api_is_graceful(
    api, cluster, kube_api, namespace, worker_pod, target_db, run_worker, tmp_path
):
    core = client.CoreV1Api(kube_api)
    extra = {}
    if api == "unreachable":
        # the same kubeconfig, pointing at a port where nothing listens
        doc = yaml.safe_load(Path(cluster.kubeconfig).read_text())
        doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:9"
        dead = tmp_path / "dead-kubeconfig"
        dead.write_text(yaml.safe_dump(doc))
        extra["DATAJOBS_KUBECONFIG"] = str(dead)
    run = start_masking(run_worker, target_db, tmp_path, cluster, namespace, worker_pod, **extra)
    if api == "unreachable":
        wait_for(
            lambda: trigger_states(target_db)["customers_readonly"] == "D" and run.popen.poll() is None,
            timeout=90,
            message="masking under way",
        )
        wait_for(
            lambda: (
                fetch(target_db, "SELECT count(*) FROM customers WHERE email NOT LIKE 'Customer.%'")[0][0]
                >= BATCH
            ),
            timeout=90,
            message="a batch committed",
        )
    else:
        wait_until_masking(core, namespace, worker_pod, run)
    run.popen.send_signal(signal.SIGTERM)
    assert run.wait(timeout=40) == 143, run.log()
    report = run.report()
    assert report["cancelled"] is False and report["stopMode"] == "graceful"
    expected = "could not be read" if api == "unreachable" else "without a cancel annotation"
    assert expected in report["message"]
    assert report["restored"] == DISABLED and report["leftDisabled"] == []
    assert trigger_states(target_db)["customers_readonly"] == "A"
    assert "orders_customer_email_fkey" in foreign_keys(target_db)
    assert_no_half_batch(target_db, report)


def test_a_restore_that_cannot_finish_within_the_grace_period_is_reported_as_left_disabled(
    cluster, kube_api, namespace, target_db, run_worker, tmp_path
):
    core = client.CoreV1Api(kube_api)
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="short-grace"),
        spec=client.V1PodSpec(
            containers=[client.V1Container(name="worker", image="example.invalid/worker:1")],
            termination_grace_period_seconds=3,
        ),
    )
    core.create_namespaced_pod(namespace, pod)
    run = start_masking(run_worker, target_db, tmp_path, cluster, namespace, "short-grace")
    wait_until_masking(core, namespace, "short-grace", run)
    annotate(core, namespace, "short-grace", "graceful")
    # another session holds orders: re-creating its foreign key has to wait (lock timeout 10 s > grace)
    with psycopg.connect(target_db) as blocker:
        blocker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        signalled = time.monotonic()
        run.popen.send_signal(signal.SIGTERM)
        code = run.wait(timeout=30)
        elapsed = time.monotonic() - signalled
        blocker.rollback()
    assert code == 143, run.log()
    assert elapsed < 3.0, f"took {elapsed:.2f} s with a 3 s grace period"
    report = run.report()
    assert report["stopMode"] == "graceful" and "did not stop in time" in report["message"]
    assert report["restored"] == [DISABLED[0]]  # the trigger came back
    assert [e["object"] for e in report["leftDisabled"]] == [DISABLED[1]]  # the foreign key could not
    assert trigger_states(target_db)["customers_readonly"] == "A"
    assert "orders_customer_email_fkey" not in foreign_keys(target_db)
