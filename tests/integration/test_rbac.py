"""The chart's RBAC is enough and no more: the operator and the adapter run as the chart's own accounts.

The chart is installed with `helm install`; the operator (`datajobs run`) and the adapter (`datajobs adapter`)
then run out of cluster with real tokens of the chart's ServiceAccounts (TokenRequest API), because
neither kopf nor kubernetes_asyncio honours kubeconfig impersonation (`as:`). The end-to-end cancel flows
must pass that way; `kubectl auth can-i --as=…` and real calls with the tokens prove what is refused.
"""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from chartkit import (  # noqa: F401 (fixtures)
    Helm,
    extra_namespace,
    helm,
    release_name,
    secret_value,
    service_account_kubeconfig,
    token_for,
)
from kubernetes import client, config
from operatorkit import SPECS, Jobs, OperatorProcess, condition
from test_adapter_cli import AdapterProcess
from test_adapter_contract import delphix, http, prequel, wait_visible

from helpers import wait_for

KINDS = ["IntegrityJob", "MaskingExecution"]
GROUP = "datajobs.io"
COUNTER = "datajobs-execution-ids"


@dataclass
class Install:
    """One `helm install` of the chart, and a kubeconfig per ServiceAccount it created."""

    release: str
    namespace: str  # the release's (the counter ConfigMap and the keys Secret live here)
    jobs_namespace: str
    per_namespace: bool
    kubeconfigs: dict[str, Path] = field(default_factory=dict)

    @property
    def fullname(self) -> str:
        return f"{self.release}-datajobs-operator"

    @property
    def accounts(self) -> dict[str, tuple[str, str]]:
        """component -> (namespace, ServiceAccount name)."""
        return {
            "operator": (self.namespace, self.fullname),
            "adapter": (self.namespace, f"{self.fullname}-adapter"),
            "worker": (self.jobs_namespace, f"{self.fullname}-worker"),
        }

    def user(self, component: str) -> str:
        ns, sa = self.accounts[component]
        return f"system:serviceaccount:{ns}:{sa}"

    def api(self, component: str) -> client.ApiClient:
        return config.new_client_from_config(config_file=str(self.kubeconfigs[component]))

    def pod_api(self, kubectl: Any, cluster: Any, pod: client.V1Pod, tmp_path: Path) -> client.ApiClient:
        """The worker account as the kubelet gives it to `pod`: a token bound to that pod."""
        ns, sa = self.accounts["worker"]
        token = token_for(kubectl, ns, sa, bound_pod=(pod.metadata.name, pod.metadata.uid))
        path = tmp_path / f"worker-{pod.metadata.name}.kubeconfig"
        service_account_kubeconfig(cluster.kubeconfig, token, path, namespace=ns, user="worker")
        return config.new_client_from_config(config_file=str(path))


@pytest.fixture(params=["cluster-wide", "per-namespace"])
def install(
    request: pytest.FixtureRequest,
    helm: Helm,
    namespace: str,
    extra_namespace: str,
    crds: list[str],
    kubectl: Any,
    cluster: Any,
    tmp_path: Path,
) -> Iterator[Install]:
    per_namespace = request.param == "per-namespace"
    values: dict[str, Any] = (
        {"watchNamespaces": [extra_namespace]}
        if per_namespace
        else {"worker": {"serviceAccount": {"namespaces": [extra_namespace]}}}
    )
    inst = Install(release_name("rbac"), namespace, extra_namespace, per_namespace)
    helm.install(inst.release, namespace, values, "--skip-crds")
    try:
        for component, (ns, sa) in inst.accounts.items():
            token = token_for(kubectl, ns, sa)
            inst.kubeconfigs[component] = service_account_kubeconfig(
                cluster.kubeconfig, token, tmp_path / f"{component}.kubeconfig", namespace=ns, user=component
            )
        yield inst
    finally:
        helm.run(
            "uninstall", inst.release, "--namespace", namespace, "--wait", "--timeout", "60s", check=False
        )


def adapter_url(base: str, kind: str, status: dict[str, Any]) -> str:
    if kind == "IntegrityJob":
        return f"{base}/destinations/{status['destination_id']}/data-integrity/{status['id']}"
    return f"{base}/executions/{status['executionId']}"


def adapter_headers(kind: str, key: str) -> dict[str, str]:
    return prequel(key) if kind == "IntegrityJob" else delphix(key)


def start_operator(install: Install, tmp_path: Path) -> OperatorProcess:
    return OperatorProcess(
        str(install.kubeconfigs["operator"]),
        install.jobs_namespace,
        tmp_path / "operator.log",
        extra_args=(
            "--state-namespace",
            install.namespace,
            "--worker-service-account",
            install.accounts["worker"][1],
            "--worker-image",
            "example.invalid/datajobs-operator:test",
        ),
    ).start()


def start_adapter(install: Install, tmp_path: Path) -> AdapterProcess:
    argv = [
        "--kubeconfig",
        str(install.kubeconfigs["adapter"]),
        "--api-keys-secret",
        f"{install.namespace}/{install.fullname}-adapter-keys",
    ]
    if install.per_namespace:
        argv += ["--namespace", install.jobs_namespace]
    return AdapterProcess(argv, tmp_path / "adapter.log")


def forbidden_lines(log: str) -> list[str]:
    """Log lines that report a refused API call (none are expected: the chart grants every call made)."""
    return [line for line in log.splitlines() if "forbidden" in line.lower()]  # the API's 403 says it


# --- end to end, as the chart's accounts ----------------------------------------------------------------


def test_cancel_flows_pass_with_the_charts_accounts(
    install: Install, kube_api: client.ApiClient, kubectl: Any, tmp_path: Path
) -> None:
    jobs = Jobs(kube_api, install.jobs_namespace)
    operator = start_operator(install, tmp_path)
    adapter = start_adapter(install, tmp_path)
    key = secret_value(kube_api, install.namespace, f"{install.fullname}-api-key", "api-key")
    try:
        names = {(kind, how): f"{kind.lower()[:4]}-{how}" for kind in KINDS for how in ("kubectl", "http")}
        for (kind, _), name in names.items():
            jobs.create(kind, name, SPECS[kind]())
        statuses = {}
        for (kind, _), name in names.items():
            jobs.wait_pod_running(name)
            statuses[name] = jobs.wait_status(kind, name, "RUNNING")

        # 1. kubectl patch (what a user or a GitOps tool writes), with the admin's credentials
        for kind in KINDS:
            kubectl(
                "patch",
                kind.lower(),
                names[(kind, "kubectl")],
                "-n",
                install.jobs_namespace,
                "--type",
                "merge",
                "-p",
                json.dumps({"spec": {"cancelRequested": {"expectedStatus": "RUNNING", "graceful": True}}}),
            )
        # 2. the adapter's vendor endpoints, the adapter running as its own ServiceAccount
        for kind in KINDS:
            name = names[(kind, "http")]
            url = adapter_url(adapter.url, kind, statuses[name])
            wait_visible(url, adapter_headers(kind, key))
            suffix = "/cancel" if kind == "IntegrityJob" else "/cancel?expectedStatus=RUNNING&graceful=false"
            code, body = http("POST", url + suffix, adapter_headers(kind, key))
            assert code == 200, body

        for (kind, how), name in names.items():
            final = jobs.wait_status(kind, name, "CANCELLED", timeout=60)
            assert jobs.pod(name) is None, f"{name}: CANCELLED while its pod exists"
            assert condition(final, "CancelRequest")["reason"] == "Accepted", (how, final)
            assert "CancelAccepted" in jobs.event_reasons(name)  # the operator may create Events

        # the executionId counter lives in the release namespace, reachable by name only
        ids = [
            jobs.status("MaskingExecution", names[("MaskingExecution", h)])["executionId"]
            for h in ("kubectl", "http")
        ]
        counter = client.CoreV1Api(kube_api).read_namespaced_config_map(COUNTER, install.namespace)
        assert int(counter.data["next"]) > max(ids)

        assert operator.exited() is None and adapter.popen.poll() is None
        assert not forbidden_lines(operator.log_path.read_text(errors="replace")), operator.log_tail()
        assert not forbidden_lines(adapter.log()), adapter.log()
    finally:
        adapter.stop()
        operator.stop()


def test_default_worker_runs_as_the_worker_account_and_can_follow_the_protocol(
    install: Install, kube_api: client.ApiClient, kubectl: Any, cluster: Any, tmp_path: Path
) -> None:
    """A job without a template gets the chart's worker account, which may read its cancel mode and report."""
    jobs = Jobs(kube_api, install.jobs_namespace)
    operator = start_operator(install, tmp_path)
    try:
        jobs.create("MaskingExecution", "default-worker", {"jobId": 41, "connectorType": "DATABASE"})
        pod = jobs.wait_pod_running("default-worker")
        assert pod.spec.service_account_name == install.accounts["worker"][1]
        assert pod.spec.containers[0].image == "example.invalid/datajobs-operator:test"
        env = {e.name: e for e in pod.spec.containers[0].env}
        name = env["DATAJOBS_POD_NAME"].value or pod.metadata.name

        worker = client.CoreV1Api(install.pod_api(kubectl, cluster, pod, tmp_path))  # the token it is given
        progress = {"rowsMasked": 120, "rowsTotal": 5000}
        worker.patch_namespaced_pod(
            name,
            install.jobs_namespace,
            {"metadata": {"annotations": {"datajobs.io/progress": json.dumps(progress)}}},
        )
        wait_for(
            lambda: jobs.status("MaskingExecution", "default-worker").get("rowsMasked") == 120,
            timeout=30,
            message="progress reported by the worker account mirrored into the status",
        )
        jobs.cancel("MaskingExecution", "default-worker", graceful=False)  # 1 s grace, not the default 30
        mode = wait_for(
            lambda: (worker.read_namespaced_pod(name, install.jobs_namespace).metadata.annotations or {}).get(
                "datajobs.io/cancel-mode"
            ),
            timeout=30,
            message="the worker account reads its cancel mode",
        )
        assert mode == "immediate"
        jobs.wait_status("MaskingExecution", "default-worker", "CANCELLED", timeout=60)
        assert not forbidden_lines(operator.log_path.read_text(errors="replace")), operator.log_tail()
    finally:
        operator.stop()


# --- and no more ------------------------------------------------------------------------------------------


def can_i(kubectl: Any, user: str, verb: str, resource: str, namespace: str | None, *extra: str) -> bool:
    args = ["auth", "can-i", verb, resource, f"--as={user}", *extra]
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    proc = kubectl(*args, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), (args, proc.stdout, proc.stderr)
    return answer == "yes"


IJ, MEX = f"integrityjobs.{GROUP}", f"maskingexecutions.{GROUP}"


def expectations(inst: Install) -> dict[str, list[tuple[bool, str, str, str | None, tuple[str, ...]]]]:
    """component -> [(allowed, verb, resource, namespace or None for all, extra args)]."""
    rel, jobs = inst.namespace, inst.jobs_namespace
    keys, raw_key = f"secrets/{inst.fullname}-adapter-keys", f"secrets/{inst.fullname}-api-key"
    status = ("--subresource=status",)
    cluster_wide = not inst.per_namespace
    return {
        "operator": [
            *[(True, v, r, jobs, ()) for r in (IJ, MEX) for v in ("get", "list", "watch", "delete")],
            *[(True, "patch", r, jobs, status) for r in (IJ, MEX)],
            *[(True, "update", r, jobs, ("--subresource=finalizers",)) for r in (IJ, MEX)],
            *[(True, v, "pods", jobs, ()) for v in ("get", "list", "watch", "create", "delete", "patch")],
            (True, "create", "events", jobs, ()),
            (True, "get", "pods", jobs, ("--subresource=log",)),
            (True, "create", "configmaps", jobs, ()),
            (False, "get", "configmaps", jobs, ()),
            (True, "create", "configmaps", rel, ()),
            (True, "get", f"configmaps/{COUNTER}", rel, ()),
            (True, "update", f"configmaps/{COUNTER}", rel, ()),
            (True, "create", "leases.coordination.k8s.io", rel, ()),
            *[(True, v, "leases.coordination.k8s.io/datajobs-operator", rel, ()) for v in ("get", "update")],
            (cluster_wide, "list", "pods", None, ()),
            (cluster_wide, "watch", IJ, None, ()),
            (cluster_wide, "list", "pods", "default", ()),
            # never
            *[(False, v, "secrets", ns, ()) for v in ("get", "list", "watch") for ns in (rel, jobs, None)],
            (False, "get", keys, rel, ()),
            *[(False, v, r, jobs, ()) for r in (IJ, MEX) for v in ("create", "patch", "update")],
            (False, "update", IJ, jobs, status),
            (False, "create", "pods", jobs, ("--subresource=exec",)),
            (False, "get", "configmaps/other", rel, ()),
            (False, "list", "configmaps", rel, ()),
            (False, "delete", f"configmaps/{COUNTER}", rel, ()),
            (False, "get", f"configmaps/{COUNTER}", jobs, ()),
            (False, "get", "leases.coordination.k8s.io/other", rel, ()),
            (False, "delete", "leases.coordination.k8s.io/datajobs-operator", rel, ()),
            (False, "create", "leases.coordination.k8s.io", jobs, ()),
            (False, "list", "nodes", None, ()),
            (False, "list", "namespaces", None, ()),
            (False, "list", "customresourcedefinitions.apiextensions.k8s.io", None, ()),
            (False, "create", "serviceaccounts/token", rel, ()),
        ],
        "adapter": [
            *[(True, v, r, jobs, ()) for r in (IJ, MEX) for v in ("get", "list", "watch", "patch")],
            *[(True, v, keys, rel, ()) for v in ("get", "list", "watch")],
            (cluster_wide, "list", IJ, None, ()),
            # never
            *[(False, v, "pods", jobs, ()) for v in ("delete", "get", "list", "create", "patch")],
            *[(False, v, r, jobs, ()) for r in (IJ, MEX) for v in ("create", "delete", "update")],
            *[(False, "patch", r, jobs, status) for r in (IJ, MEX)],
            (False, "get", raw_key, rel, ()),
            (False, "list", "secrets", rel, ()),
            (False, "get", "secrets/anything", rel, ()),
            (False, "get", "secrets/anything", jobs, ()),
            (False, "list", "secrets", None, ()),
            (False, "create", "events", jobs, ()),
            (False, "update", keys, rel, ()),
            (False, "get", f"configmaps/{COUNTER}", rel, ()),
        ],
        "worker": [
            (True, "get", "pods", jobs, ()),
            (True, "patch", "pods", jobs, ()),
            (False, "delete", "pods", jobs, ()),
            (False, "list", "pods", jobs, ()),
            (False, "create", "pods", jobs, ()),
            (False, "get", "pods", rel, ()),
            (False, "get", "secrets", jobs, ()),
            (False, "patch", MEX, jobs, ()),
            (False, "patch", MEX, jobs, status),
        ],
    }


def test_each_account_has_exactly_the_access_it_needs(install: Install, kubectl: Any) -> None:
    checks = [(component, row) for component, rows in expectations(install).items() for row in rows]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(
            pool.map(
                lambda c: can_i(kubectl, install.user(c[0]), c[1][1], c[1][2], c[1][3], *c[1][4]), checks
            )
        )
    wrong = []
    for (component, (allowed, verb, resource, ns, extra)), answer in zip(checks, answers, strict=True):
        if answer != allowed:
            wrong.append(
                f"{component} {'should' if allowed else 'must not'}: {verb} {resource} "
                f"{' '.join(extra)} in {ns or 'all namespaces'}"
            )
    assert not wrong, "\n".join(wrong)


def expect_forbidden(call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(client.ApiException) as err:
        call(*args, **kwargs)
    assert err.value.status == 403, err.value


def test_real_calls_with_the_accounts_tokens_are_refused(
    install: Install, kube_api: client.ApiClient
) -> None:
    core_admin = client.CoreV1Api(kube_api)
    core_admin.create_namespaced_secret(
        install.jobs_namespace, {"metadata": {"name": "db-password"}, "stringData": {"password": "hunter2"}}
    )
    victim = core_admin.create_namespaced_pod(
        install.jobs_namespace,
        {
            "metadata": {"name": "victim"},
            "spec": {"containers": [{"name": "c", "image": "example.invalid/x"}]},
        },
    )
    ij = {
        "apiVersion": f"{GROUP}/v1alpha1",
        "kind": "IntegrityJob",
        "metadata": {"name": "not-allowed"},
        "spec": SPECS["IntegrityJob"](),
    }

    adapter_api = install.api("adapter")
    core, custom = client.CoreV1Api(adapter_api), client.CustomObjectsApi(adapter_api)
    # its own keys Secret: yes; anything else: no
    assert core.read_namespaced_secret(f"{install.fullname}-adapter-keys", install.namespace).data[
        "keys.yaml"
    ]
    selector = f"metadata.name={install.fullname}-adapter-keys"
    assert len(core.list_namespaced_secret(install.namespace, field_selector=selector).items) == 1
    expect_forbidden(core.read_namespaced_secret, f"{install.fullname}-api-key", install.namespace)
    expect_forbidden(core.read_namespaced_secret, "db-password", install.jobs_namespace)
    expect_forbidden(core.list_namespaced_secret, install.namespace)
    expect_forbidden(core.delete_namespaced_pod, victim.metadata.name, install.jobs_namespace)
    expect_forbidden(
        custom.create_namespaced_custom_object, GROUP, "v1alpha1", install.jobs_namespace, "integrityjobs", ij
    )
    assert custom.list_namespaced_custom_object(GROUP, "v1alpha1", install.jobs_namespace, "integrityjobs")

    operator_api = install.api("operator")
    core = client.CoreV1Api(operator_api)
    for ns in (install.namespace, install.jobs_namespace):
        expect_forbidden(core.list_namespaced_secret, ns)
    expect_forbidden(core.read_namespaced_secret, "db-password", install.jobs_namespace)
    expect_forbidden(core.read_namespaced_secret, f"{install.fullname}-adapter-keys", install.namespace)
    expect_forbidden(core.list_secret_for_all_namespaces)
    expect_forbidden(
        client.CustomObjectsApi(operator_api).create_namespaced_custom_object,
        GROUP,
        "v1alpha1",
        install.jobs_namespace,
        "integrityjobs",
        ij,
    )
    assert core.read_namespaced_pod(victim.metadata.name, install.jobs_namespace)  # pods: yes

    worker = client.CoreV1Api(install.api("worker"))
    expect_forbidden(worker.delete_namespaced_pod, victim.metadata.name, install.jobs_namespace)
    expect_forbidden(worker.read_namespaced_secret, "db-password", install.jobs_namespace)
    assert (
        core_admin.read_namespaced_pod(
            victim.metadata.name, install.jobs_namespace
        ).metadata.deletion_timestamp
        is None
    )


def test_a_workers_token_can_change_only_its_own_pod(
    install: Install, kube_api: client.ApiClient, kubectl: Any, cluster: Any, tmp_path: Path
) -> None:
    """RBAC grants the worker `patch pods` in its namespace; the chart's admission policy narrows that to
    the pod its (real, pod-bound) token belongs to, and to annotations."""
    core_admin = client.CoreV1Api(kube_api)
    ns, sa = install.accounts["worker"]

    def pod(name: str) -> client.V1Pod:
        spec = {"serviceAccountName": sa, "containers": [{"name": "worker", "image": "example.invalid/w:1"}]}
        return core_admin.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": spec})

    own, other = pod("own-worker"), pod("other-worker")
    worker = client.CoreV1Api(install.pod_api(kubectl, cluster, own, tmp_path))
    note = {"metadata": {"annotations": {"datajobs.io/progress": '{"rowsMasked": 1}'}}}

    def refused(
        name: str, body: dict[str, Any], api: client.CoreV1Api = worker, dry_run: str | None = None
    ) -> str:
        try:
            api.patch_namespaced_pod(name, ns, body, dry_run=dry_run)
        except client.ApiException as exc:
            return f"{exc.status} {exc.body}" if exc.status == 403 else ""
        return ""

    # the policy's binding takes a moment to be in force: probe with dry runs, which change nothing
    wait_for(
        lambda: refused("other-worker", note, dry_run="All"),
        timeout=30,
        message="the policy refuses another pod",
    )
    why = refused("other-worker", note)
    assert "only its own pod" in why
    worker.patch_namespaced_pod("own-worker", ns, note)  # its own pod: yes
    assert core_admin.read_namespaced_pod("own-worker", ns).metadata.annotations["datajobs.io/progress"]
    assert "only its pod's annotations" in refused("own-worker", {"metadata": {"labels": {"x": "y"}}})
    unbound = client.CoreV1Api(install.api("worker"))  # a token bound to no pod
    assert "only its own pod" in refused("own-worker", note, unbound)
    assert (core_admin.read_namespaced_pod("other-worker", ns).metadata.annotations or {}) == {}
    assert other.metadata.uid == core_admin.read_namespaced_pod("other-worker", ns).metadata.uid
