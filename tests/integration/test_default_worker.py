"""A job without `template` gets the reference worker, `datajobs worker <kind>`, with its Secret and rules.

kwok runs no containers, so the test plays the kubelet: it runs the pod's command line with the pod's
environment (the Secret's keys included, as envFrom would) against a real PostgreSQL, then reports the
container's exit code and termination message on the pod, and the operator finishes the job from them."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import yaml
from kubernetes import client
from operatorkit import jobs, run_operator  # noqa: F401 (fixtures)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workers"))
from pgcluster import postgres  # noqa: F401 (fixture)

from datajobs.cli import build_parser

IMAGE = "registry.example/datajobs-operator:e2e"
SERVICE_ACCOUNT = "datajobs-worker"
REPO_ROOT = Path(__file__).resolve().parents[2]


def make_secret(core: client.CoreV1Api, namespace: str, name: str, data: dict[str, str]) -> None:
    core.create_namespaced_secret(
        namespace, client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
    )


def start_operator(run_operator, core, namespace):  # noqa: F811
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=SERVICE_ACCOUNT))
    )
    return run_operator(extra_args=("--worker-image", IMAGE, "--worker-service-account", SERVICE_ACCOUNT))


def assert_reference_worker(pod: client.V1Pod, kind: str, secret: str) -> client.V1Container:
    """The pod runs the image's entrypoint (`datajobs`) with `worker <kind>`, the Secret as envFrom."""
    (container,) = pod.spec.containers
    assert container.name == "worker" and container.image == IMAGE
    assert container.command is None  # the image's entrypoint: datajobs
    assert container.args == ["worker", kind]
    assert [e.secret_ref.name for e in container.env_from or []] == [secret]
    assert pod.spec.service_account_name == SERVICE_ACCOUNT
    assert pod.spec.restart_policy == "Never"
    # and `datajobs worker <kind>` is the reference worker's entry point
    parser, mains = build_parser(container.args)
    args = parser.parse_args(container.args)
    assert args.command == "worker" and args.kind == kind
    assert mains["worker"].__module__ == "datajobs.workers.main"
    return container


def run_like_the_kubelet(
    pod: client.V1Pod, secret: dict[str, str], kubeconfig: str, tmp_path: Path, extra_env: dict[str, str]
) -> tuple[int, str]:
    """Run the container's command line with the environment the kubelet would give it."""
    container = pod.spec.containers[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATAJOBS_", "KUBERNETES_"))}
    env |= secret  # envFrom first; explicit env wins
    for var in container.env:
        if var.value_from is not None:
            assert var.value_from.field_ref.field_path == "metadata.name"
            env[var.name] = pod.metadata.name
        else:
            env[var.name] = var.value or ""
    term = tmp_path / f"{pod.metadata.name}.termination-log"
    env |= {"DATAJOBS_KUBECONFIG": kubeconfig, "DATAJOBS_TERMINATION_LOG": str(term), **extra_env}
    proc = subprocess.run(
        [sys.executable, "-m", "datajobs.cli", *container.args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert term.exists(), proc.stderr
    return proc.returncode, term.read_text()


def seed_orders(dsn: str, schema: str, rows: list[tuple]) -> None:
    with psycopg.connect(dsn) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")  # type: ignore[arg-type]
        conn.execute(
            f"CREATE TABLE {schema}.orders (id int PRIMARY KEY, item text, updated_at timestamptz)"  # type: ignore[arg-type]
        )
        with conn.cursor().copy(f"COPY {schema}.orders FROM STDIN") as copy:  # type: ignore[arg-type]
            for row in rows:
                copy.write_row(row)


def test_integrity_job_without_template_runs_the_reference_integrity_worker(
    cluster,
    kube_api,
    namespace,
    run_operator,  # noqa: F811
    jobs,  # noqa: F811
    postgres,  # noqa: F811
    tmp_path,
):
    core = client.CoreV1Api(kube_api)
    start_operator(run_operator, core, namespace)
    base = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    rows = [(i, f"item-{i}", base + dt.timedelta(minutes=i)) for i in range(1, 301)]
    source, destination = postgres.create_database("e2e_src"), postgres.create_database("e2e_dst")
    seed_orders(source, "public", rows)
    seed_orders(destination, "acme", rows[:9] + rows[11:])  # ids 10 and 11 never arrived
    secret = {"SOURCE_DSN": source, "DESTINATION_DSN": destination}
    make_secret(core, namespace, "warehouse", secret)

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
    pod = jobs.wait_pod_running("nightly", timeout=60)
    container = assert_reference_worker(pod, "integrity", "warehouse")
    env = {e.name: e.value for e in container.env if e.value is not None}
    assert env["DATAJOBS_KIND"] == "IntegrityJob" and env["DATAJOBS_ORG_SCHEMA"] == "acme"
    assert json.loads(env["DATAJOBS_MODEL_IDS"]) == ["orders"] and float(env["DATAJOBS_SAMPLING_RATE"]) == 1.0

    code, message = run_like_the_kubelet(pod, secret, cluster.kubeconfig, tmp_path, {})
    assert code == 0, message
    # the worker reported progress on its own pod through the API server
    progress = core.read_namespaced_pod(pod.metadata.name, namespace).metadata.annotations
    assert "datajobs.io/progress" in progress
    jobs.finish_pod("nightly", code, message)
    status = jobs.wait_status("IntegrityJob", "nightly", "SUCCEEDED", timeout=60)
    (result,) = status["data_integrity_results"]
    assert result["model_name"] == "orders" and result["is_healthy"] is False
    assert result["total_rows_compared"] == 300 and result["total_rows_missing"] == 2
    assert status["log_message"].startswith("1 models checked, 1 unhealthy")


def test_masking_execution_without_template_runs_the_reference_masking_worker(
    cluster,
    kube_api,
    namespace,
    run_operator,  # noqa: F811
    jobs,  # noqa: F811
    postgres,  # noqa: F811
    tmp_path,
):
    core = client.CoreV1Api(kube_api)
    start_operator(run_operator, core, namespace)
    target = postgres.create_database("e2e_mask")
    with psycopg.connect(target) as conn:
        conn.execute("CREATE TABLE people (id int PRIMARY KEY, email text, note text)")
        conn.execute(
            "INSERT INTO people SELECT i, 'person' || i || '@example.org', 'n' || i"
            " FROM generate_series(1, 400) i"
        )
    secret = {"TARGET_DSN": target, "MASKING_KEY": base64.b64encode(os.urandom(24)).decode()}
    make_secret(core, namespace, "target-db", secret)
    rules = {
        "batchSize": 64,
        "tables": [{"table": "people", "columns": [{"column": "email", "algorithm": "email"}]}],
    }
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name="mask-rules"), data={"rules.yaml": yaml.safe_dump(rules)}
        ),
    )

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
    pod = jobs.wait_pod_running("mask", timeout=60)
    container = assert_reference_worker(pod, "masking", "target-db")
    # (with a real node's cluster the ServiceAccount admission also mounts the token: not ours to check)
    (mount,) = [m for m in container.volume_mounts if m.name == "datajobs-masking-rules"]
    assert (mount.mount_path, mount.read_only) == ("/etc/datajobs/masking", True)
    volume = next(v for v in pod.spec.volumes if v.name == mount.name)
    assert volume.config_map.name == "mask-rules"
    env = {e.name: e.value for e in container.env if e.value is not None}
    assert env["DATAJOBS_KIND"] == "MaskingExecution" and env["DATAJOBS_JOB_ID"] == "11"

    # the ConfigMap's key, where the mount would put it
    mounted = tmp_path / "rules.yaml"
    mounted.write_text(core.read_namespaced_config_map("mask-rules", namespace).data["rules.yaml"])
    code, message = run_like_the_kubelet(
        pod, secret, cluster.kubeconfig, tmp_path, {"DATAJOBS_MASKING_RULES": str(mounted)}
    )
    assert code == 0, message
    jobs.finish_pod("mask", code, message)
    status = jobs.wait_status("MaskingExecution", "mask", "SUCCEEDED", timeout=60)
    assert status["rowsMasked"] == status["rowsTotal"] == 400
    with psycopg.connect(target) as conn:
        unmasked = conn.execute("SELECT count(*) FROM people WHERE email LIKE 'person%'").fetchone()
    assert unmasked == (0,)


def seed_models(dsn: str, schema: str, count: int) -> list[str]:
    """`count` small tables m0000, m0001, … (two rows each) in `schema`, in one round trip."""
    with psycopg.connect(dsn) as conn:
        conn.execute(
            f"""
            CREATE SCHEMA IF NOT EXISTS {schema};
            DO $$ BEGIN FOR i IN 0..{count - 1} LOOP
              EXECUTE format('CREATE TABLE {schema}.%I (id int PRIMARY KEY, v text, updated_at timestamptz)',
                             'm' || lpad(i::text, 4, '0'));
              EXECUTE format('INSERT INTO {schema}.%I VALUES '
                             || '(1, ''a'', ''2024-05-01Z''), (2, ''b'', ''2024-05-02Z'')',
                             'm' || lpad(i::text, 4, '0'));
            END LOOP; END $$;
            """  # type: ignore[arg-type]
        )
    return [f"m{i:04d}" for i in range(count)]


def test_an_integrity_job_over_1000_models_ends_with_1000_results_in_its_status(
    cluster,
    kube_api,
    namespace,
    run_operator,  # noqa: F811
    jobs,  # noqa: F811
    postgres,  # noqa: F811
    tmp_path,
):
    """Every result reaches the status through the pod's result annotation, though the 4096-byte
    termination message can hold only a few of them."""
    core = client.CoreV1Api(kube_api)
    start_operator(run_operator, core, namespace)
    source, destination = postgres.create_database("wide_src"), postgres.create_database("wide_dst")
    models = seed_models(source, "public", 1000)
    seed_models(destination, "acme", 1000)
    secret = {"SOURCE_DSN": source, "DESTINATION_DSN": destination}
    make_secret(core, namespace, "wide", secret)
    spec = {
        "destinationId": "dest-1",
        "orgSchema": "acme",
        "modelIds": models,
        "connectionSecretName": "wide",
    }
    jobs.create("IntegrityJob", "wide", spec)
    pod = jobs.wait_pod_running("wide", timeout=60)

    code, message = run_like_the_kubelet(pod, secret, cluster.kubeconfig, tmp_path, {})
    assert code == 0, message
    cut = json.loads(message)
    assert len(message.encode()) <= 4096 and cut["data_integrity_resultsTruncated"] > 900  # the old limit
    annotations = core.read_namespaced_pod(pod.metadata.name, namespace).metadata.annotations
    assert annotations["datajobs.io/result"].startswith("gzip+base64,")
    jobs.finish_pod("wide", code, message)
    status = jobs.wait_status("IntegrityJob", "wide", "SUCCEEDED", "WARNING", "FAILED", timeout=60)
    assert status["status"] == "SUCCEEDED", status["log_message"]
    results = status["data_integrity_results"]
    assert [r["model_name"] for r in results] == models
    assert all(r["is_healthy"] and r["total_rows_compared"] == 2 for r in results)
    assert "INCOMPLETE" not in status["log_message"]
