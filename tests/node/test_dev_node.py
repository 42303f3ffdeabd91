"""`datajobs dev` on the real node, as a real subprocess: the ready line, the operator and the adapter in the
cluster under their own ServiceAccounts, the README walkthrough, kubectl-patch and HTTP cancels with the
in-cluster operator against the seeded PostgreSQL, and Ctrl-C stopping everything.

One `datajobs dev` for the module (tests run in file order; the last one interrupts it)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from kubernetes import client, config

from datajobs import devdata, devnode
from datajobs.localcluster.janitor import hierarchies
from datajobs.localcluster.netns import NODE_IP
from datajobs.localcluster.nodeconfig import NODE_NAME
from datajobs.localcluster.realnode import unavailable_reason
from devkit import Dev, free_port, ready_fields
from helpers import kubectl_exe, pinned_tool, wait_for
from readmekit import README, run_examples, sections

pytestmark = pytest.mark.timeout(900)
"""The first test includes `datajobs dev`'s start: minutes on a loaded 2-core machine (images are built
before any timeout by the `images` fixture's collection hook)."""

NS = devnode.RELEASE_NAMESPACE
TRIGGERS = "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"
FOREIGN_KEYS = "SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1"


@dataclass
class RunningDev:
    dev: Dev
    fields: dict[str, str]
    api: client.ApiClient
    key: str
    dsn: str
    env: dict[str, str]
    """KUBECONFIG, ADAPTER, KEY, DSN as the README's setup block sets them; pinned kubectl and helm."""

    def kubectl(self, *args: str, input: str | None = None) -> str:
        proc = subprocess.run(
            [kubectl_exe(), *args], env=self.env, input=input, capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == 0, f"kubectl {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    def job(self, plural: str, name: str) -> dict[str, Any]:
        return client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "datajobs.io", "v1alpha1", "default", plural, name
        )


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, images: Any) -> Iterator[RunningDev]:
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"`datajobs dev` on a real node cannot run here: {reason}", pytrace=False)
    logs = tmp_path_factory.mktemp("dev-node")
    dev = Dev(logs / "dev", free_port(), logs, "dev", ("--node", "real"))
    try:
        fields = ready_fields(dev.ready_line(timeout=900))  # a cold start builds the image
        api = config.new_client_from_config(config_file=fields["kubeconfig"])
        key = Path(fields["api-key"]).read_text().strip()
        dsn = Path(fields["postgres"]).read_text().strip()
        tools = f"{Path(kubectl_exe()).parent}:{pinned_tool('helm').parent}:{Path(sys.executable).parent}"
        env = {
            **os.environ,
            "KUBECONFIG": fields["kubeconfig"],
            "ADAPTER": fields["adapter"],
            "KEY": key,
            "DSN": dsn,
            "PATH": f"{tools}:{os.environ.get('PATH', '')}",
        }
        yield RunningDev(dev, fields, api, key, dsn, env)
        api.close()
    finally:
        dev.kill()


def test_the_ready_line_names_the_real_node_the_kubeconfig_the_adapter_and_the_database(
    running: RunningDev,
) -> None:
    fields, directory = running.fields, running.dev.directory.resolve()
    assert fields["node"] == "real" and "reason" not in fields
    assert fields["kubeconfig"] == str(directory / "kubeconfig")
    assert fields["adapter"] == f"http://127.0.0.1:{running.dev.port}"
    assert fields["postgres"] == str(directory / "postgres-dsn")
    assert sum(ln.startswith("ready:") for ln in running.dev.output().splitlines()) == 1
    for name in ("api-key", "postgres-dsn", "kubeconfig"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600, name

    # The DSN works from the host, on the seeded data.
    assert running.dsn.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(running.dsn) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM shop.orders), (SELECT count(*) FROM acme.orders),"
            " (SELECT count(*) FROM public.customers)"
        ).fetchone()
    assert counts == (devdata.ORDERS, devdata.ORDERS - 3 + 1, devdata.DEV_CUSTOMERS)

    # The Secret names the database as pods reach it: on the node's address, inside the namespace.
    secret = client.CoreV1Api(running.api).read_namespaced_secret(devnode.POSTGRES_SECRET, "default")
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert {"SOURCE_DSN", "DESTINATION_DSN", "TARGET_DSN", "MASKING_KEY"} <= set(data)
    for name in ("SOURCE_DSN", "DESTINATION_DSN", "TARGET_DSN"):
        assert data[name].startswith(f"postgresql://postgres@{NODE_IP}:"), data[name]

    # The key in <dir>/api-key is valid for every namespace: an unknown execution is a 404, not a 403.
    request = urllib.request.Request(
        f"{fields['adapter']}/executions/424242", headers={"Authorization": f"Bearer {running.key}"}
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 404


def test_the_operator_and_the_adapter_run_in_the_cluster_on_the_real_node_under_their_own_accounts(
    running: RunningDev,
) -> None:
    pods = client.CoreV1Api(running.api).list_namespaced_pod(NS).items
    by_component = {p.metadata.labels["app.kubernetes.io/component"]: p for p in pods}
    assert set(by_component) == {"operator", "adapter"}, [p.metadata.name for p in pods]
    for component, account in (("operator", "datajobs-operator"), ("adapter", "datajobs-operator-adapter")):
        pod = by_component[component]
        assert pod.spec.node_name == NODE_NAME
        assert pod.spec.service_account_name == account
        assert pod.status.phase == "Running"
        (status,) = pod.status.container_statuses
        assert status.ready and status.image.startswith("localhost/datajobs/datajobs-operator:"), status.image
        assert pod.spec.containers[0].image_pull_policy == "Never"
    # Not as local processes: no `datajobs run` / `datajobs adapter` among dev's own descendants.
    mine = [" ".join(p.cmdline()) for p in running.dev.descendants()]
    assert not [c for c in mine if "datajobs.cli run" in c or "datajobs.cli adapter" in c], mine


def test_the_readme_walkthrough_prints_what_the_readme_shows(running: RunningDev, tmp_path: Path) -> None:
    _, walkthrough = sections(README.read_text())
    run_examples(walkthrough, running.env, tmp_path / "shell-variables.sh", timeout=240)


def masking_execution(name: str, job_id: int) -> str:
    return json.dumps(
        {
            "apiVersion": "datajobs.io/v1alpha1",
            "kind": "MaskingExecution",
            "metadata": {"name": name},
            "spec": {
                "jobId": job_id,
                "connectionSecretName": devnode.POSTGRES_SECRET,
                "maskingRulesConfigMap": devnode.RULES_CONFIGMAP,
            },
        }
    )


def wait_masking(running: RunningDev, name: str) -> dict[str, Any]:
    def masking() -> dict[str, Any] | None:
        status = running.job("maskingexecutions", name).get("status") or {}
        assert status.get("status") in (None, "QUEUED", "RUNNING"), status
        return status if (status.get("rowsMasked") or 0) > 0 else None

    return wait_for(masking, timeout=120, message=f"{name} reporting rowsMasked")


def wait_cancelled(running: RunningDev, name: str) -> dict[str, Any]:
    def cancelled() -> dict[str, Any] | None:
        status = running.job("maskingexecutions", name).get("status") or {}
        return status if status.get("status") == "CANCELLED" else None

    status = wait_for(cancelled, timeout=120, message=f"{name} CANCELLED")
    pods = client.CoreV1Api(running.api).list_namespaced_pod(
        "default", label_selector=f"datajobs.io/job={name}"
    )
    assert not pods.items, "CANCELLED while the worker pod still exists"
    return status


def test_a_kubectl_patch_graceful_cancel_restores_the_database_with_the_in_cluster_operator(
    running: RunningDev,
) -> None:
    # The README's immediate cancels ran before: they left the trigger disabled and the foreign key dropped
    # (nothing is restored then), so "restored" means: as the worker found them.
    with psycopg.connect(running.dsn) as conn:
        before = conn.execute(TRIGGERS).fetchall()
        fks_before = conn.execute(FOREIGN_KEYS).fetchall()
    running.kubectl("apply", "-f", "-", input=masking_execution("mask-patch", 501))
    first = wait_masking(running, "mask-patch")
    running.kubectl("patch", "mex", "mask-patch", "--type", "merge", "-p",
                    '{"spec":{"cancelRequested":{"expectedStatus":"RUNNING","graceful":true}}}')  # fmt: skip
    status = wait_cancelled(running, "mask-patch")
    assert status["rowsMasked"] >= first["rowsMasked"] and status["rowsMasked"] < status["rowsTotal"]
    with psycopg.connect(running.dsn) as conn:
        assert conn.execute(TRIGGERS).fetchall() == before
        assert conn.execute(FOREIGN_KEYS).fetchall() == fks_before


def test_an_http_cancel_stops_a_running_masking_execution_with_the_in_cluster_operator(
    running: RunningDev,
) -> None:
    running.kubectl("apply", "-f", "-", input=masking_execution("mask-http", 502))
    wait_masking(running, "mask-http")
    execution_id = running.job("maskingexecutions", "mask-http")["status"]["executionId"]
    request = urllib.request.Request(
        f"{running.fields['adapter']}/executions/{execution_id}/cancel?expectedStatus=RUNNING",
        method="POST",
        headers={"Authorization": f"Bearer {running.key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.status == 200
        assert json.loads(resp.read())["status"] == "RUNNING"
    wait_cancelled(running, "mask-http")


def test_ctrl_c_stops_everything(running: RunningDev) -> None:
    descendants = running.dev.descendants()
    names = {p.name() for p in descendants}
    assert {"etcd", "kube-apiserver", "kubelet", "containerd"} <= names, names
    pg_port = int(running.dsn.rsplit(":", 1)[1].split("/")[0])
    owner = running.dev.proc.pid
    assert running.dev.interrupt(timeout=120) == 0, running.dev.errors()
    survivors = [p for p in descendants if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not survivors, f"left running after Ctrl-C: {survivors}"
    listening = {c.laddr.port for c in psutil.net_connections("tcp4") if c.status == psutil.CONN_LISTEN}
    assert running.dev.port not in listening and pg_port not in listening
    cgroups = [p for root in hierarchies() for p in root.glob(f"datajobs-{owner}-*")]
    assert not cgroups, cgroups
