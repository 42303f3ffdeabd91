"""The Helm chart: helm lint, what helm template renders (RBAC, pods, Secrets), bad values, helm install."""

# ruff: noqa: F811 (pytest fixtures imported from chartkit are redefined as parameters)

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from chartkit import CHART, Helm, HelmError, find, helm, helm_offline, kinds, release, secret_value  # noqa: F401
from kubernetes import client

from datajobs import devnode
from datajobs.adapter.keys import parse_keys
from datajobs.cli import build_parser
from datajobs.localcluster.nodeconfig import TAINT, pod_placement
from helpers import wait_for

NS = "datajobs-system"
JOBS = ["integrityjobs", "maskingexecutions"]

OPERATOR_RULES = [
    {"apiGroups": ["datajobs.io"], "resources": JOBS, "verbs": ["get", "list", "watch", "delete"]},
    {"apiGroups": ["datajobs.io"], "resources": [f"{r}/status" for r in JOBS], "verbs": ["patch"]},
    {"apiGroups": ["datajobs.io"], "resources": [f"{r}/finalizers" for r in JOBS], "verbs": ["update"]},
    {
        "apiGroups": [""],
        "resources": ["pods"],
        "verbs": ["get", "list", "watch", "create", "delete", "patch"],
    },
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
]
OPERATOR_STATE_RULES = [
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
    {
        "apiGroups": [""],
        "resources": ["configmaps"],
        "resourceNames": ["datajobs-execution-ids"],
        "verbs": ["get", "update"],
    },
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    {
        "apiGroups": ["coordination.k8s.io"],
        "resources": ["leases"],
        "resourceNames": ["datajobs-operator"],
        "verbs": ["get", "update"],
    },
]
ADAPTER_RULES = [
    {"apiGroups": ["datajobs.io"], "resources": JOBS, "verbs": ["get", "list", "watch", "patch"]}
]
WORKER_RULES = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def assert_locked_down(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctr = container(deployment)
    sc = ctr["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert ctr["resources"]["requests"] and ctr["resources"]["limits"]["memory"]
    assert {"name": "tmp", "mountPath": "/tmp"} in ctr["volumeMounts"]


# --- lint and template (no cluster) ----------------------------------------------------------------------


def test_helm_lint_is_clean(helm_offline: Helm) -> None:
    out = helm_offline.run("lint", "--strict", str(CHART))
    assert "1 chart(s) linted, 0 chart(s) failed" in out.stdout
    assert "[WARNING]" not in out.stdout and "[ERROR]" not in out.stdout


def test_chart_crds_are_the_generated_ones() -> None:
    for path in sorted((CHART / "crds").glob("*.yaml")):
        assert path.read_text() == (CHART.parents[1] / "crds" / path.name).read_text(), path.name
    assert {p.name for p in (CHART / "crds").glob("*.yaml")} == {
        "integrityjobs.datajobs.io.yaml",
        "maskingexecutions.datajobs.io.yaml",
    }


def test_default_render_has_every_object_least_privilege_rbac_and_locked_down_pods(
    helm_offline: Helm,
) -> None:
    docs = helm_offline.template(namespace=NS, release="dj")
    assert kinds(docs) == {
        ("ServiceAccount", "dj-datajobs-operator", NS),
        ("ServiceAccount", "dj-datajobs-operator-adapter", NS),
        ("ServiceAccount", "dj-datajobs-operator-worker", NS),
        ("Secret", "dj-datajobs-operator-api-key", NS),
        ("Secret", "dj-datajobs-operator-adapter-keys", NS),
        ("ClusterRole", "dj-datajobs-operator", ""),
        ("ClusterRoleBinding", "dj-datajobs-operator", ""),
        ("ClusterRole", "dj-datajobs-operator-adapter", ""),
        ("ClusterRoleBinding", "dj-datajobs-operator-adapter", ""),
        ("Role", "dj-datajobs-operator-state", NS),
        ("RoleBinding", "dj-datajobs-operator-state", NS),
        ("Role", "dj-datajobs-operator-adapter-keys", NS),
        ("RoleBinding", "dj-datajobs-operator-adapter-keys", NS),
        ("Role", "dj-datajobs-operator-worker", NS),
        ("RoleBinding", "dj-datajobs-operator-worker", NS),
        ("Deployment", "dj-datajobs-operator", NS),
        ("Service", "dj-datajobs-operator-metrics", NS),
        ("Deployment", "dj-datajobs-operator-adapter", NS),
        ("Service", "dj-datajobs-operator-adapter", NS),
        ("ValidatingAdmissionPolicy", "dj-datajobs-operator-worker-own-pod", ""),
        ("ValidatingAdmissionPolicyBinding", "dj-datajobs-operator-worker-own-pod", ""),
    }
    # RBAC: exactly these rules, nothing else, for each account
    assert find(docs, "ClusterRole", "dj-datajobs-operator")["rules"] == OPERATOR_RULES
    assert find(docs, "Role", "dj-datajobs-operator-state")["rules"] == OPERATOR_STATE_RULES
    assert find(docs, "ClusterRole", "dj-datajobs-operator-adapter")["rules"] == ADAPTER_RULES
    assert find(docs, "Role", "dj-datajobs-operator-adapter-keys")["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "resourceNames": ["dj-datajobs-operator-adapter-keys"],
            "verbs": ["get", "list", "watch"],
        }
    ]
    assert find(docs, "Role", "dj-datajobs-operator-worker")["rules"] == WORKER_RULES
    for kind, name, sa in [
        ("ClusterRoleBinding", "dj-datajobs-operator", "dj-datajobs-operator"),
        ("RoleBinding", "dj-datajobs-operator-state", "dj-datajobs-operator"),
        ("ClusterRoleBinding", "dj-datajobs-operator-adapter", "dj-datajobs-operator-adapter"),
        ("RoleBinding", "dj-datajobs-operator-adapter-keys", "dj-datajobs-operator-adapter"),
    ]:
        binding = find(docs, kind, name)
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NS}]
        assert binding["roleRef"]["name"] == name
    assert not any("secrets" in r["resources"] for r in OPERATOR_RULES + OPERATOR_STATE_RULES)

    operator = find(docs, "Deployment", "dj-datajobs-operator")
    assert operator["spec"]["replicas"] == 1
    # leader election (a Lease) lets the new pod of a rolling update start as a standby
    assert operator["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert operator["spec"]["template"]["spec"]["serviceAccountName"] == "dj-datajobs-operator"
    assert_locked_down(operator)
    ctr = container(operator)
    assert ctr["image"] == "ghcr.io/datajobs/datajobs-operator:0.1.0"
    assert ctr["args"][:3] == ["--log-level=INFO", "--log-format=json", "run"]
    args = ctr["args"][3:]
    assert f"--state-namespace={NS}" in args
    assert "--worker-service-account=dj-datajobs-operator-worker" in args
    assert "--worker-image=ghcr.io/datajobs/datajobs-operator:0.1.0" in args
    assert not any(a.startswith("--namespace") for a in args)  # every namespace
    assert {
        "--metrics-port=9090",
        "--liveness-port=8081",
        "--bind-address=0.0.0.0",
        "--max-running=10",
    } <= set(args)
    for probe in ("livenessProbe", "startupProbe", "readinessProbe"):
        assert ctr[probe]["httpGet"] == {"path": "/healthz", "port": "healthz"}, probe
    assert {p["name"]: p["containerPort"] for p in ctr["ports"]} == {"healthz": 8081, "metrics": 9090}

    adapter = find(docs, "Deployment", "dj-datajobs-operator-adapter")
    assert adapter["spec"]["template"]["spec"]["serviceAccountName"] == "dj-datajobs-operator-adapter"
    assert_locked_down(adapter)
    actr = container(adapter)
    assert actr["args"][2:] == [
        "adapter",
        "--host=0.0.0.0",
        "--port=8080",
        f"--api-keys-secret={NS}/dj-datajobs-operator-adapter-keys",
    ]
    assert actr["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert actr["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    service = find(docs, "Service", "dj-datajobs-operator-adapter")
    assert service["spec"]["selector"] == adapter["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert operator["spec"]["selector"] != adapter["spec"]["selector"]

    # generated key: the raw key in one Secret, only its hash in the adapter's keys document
    key = base64.b64decode(find(docs, "Secret", "dj-datajobs-operator-api-key")["data"]["api-key"]).decode()
    assert len(key) >= 32
    doc = base64.b64decode(
        find(docs, "Secret", "dj-datajobs-operator-adapter-keys")["data"]["keys.yaml"]
    ).decode()
    (parsed,) = parse_keys(doc, "rendered")
    assert parsed.digest == hashlib.sha256(key.encode()).digest()
    assert parsed.namespaces == frozenset({"*"}) and parsed.name == "dj-generated"
    assert key not in doc


def test_per_namespace_mode_grants_roles_only_in_the_watched_namespaces(helm_offline: Helm) -> None:
    docs = helm_offline.template({"watchNamespaces": ["team-a", "team-b"]}, namespace=NS, release="dj")
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    for ns in ("team-a", "team-b"):
        assert find(docs, "Role", "dj-datajobs-operator", ns)["rules"] == OPERATOR_RULES
        assert find(docs, "Role", "dj-datajobs-operator-adapter", ns)["rules"] == ADAPTER_RULES
        assert find(docs, "Role", "dj-datajobs-operator-worker", ns)["rules"] == WORKER_RULES
        assert find(docs, "ServiceAccount", "dj-datajobs-operator-worker", ns)
        binding = find(docs, "RoleBinding", "dj-datajobs-operator", ns)
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "dj-datajobs-operator", "namespace": NS}
        ]
    # the counter lives in the release namespace whatever is watched
    assert find(docs, "Role", "dj-datajobs-operator-state", NS)["rules"] == OPERATOR_STATE_RULES
    args = container(find(docs, "Deployment", "dj-datajobs-operator"))["args"]
    assert [a for a in args if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    aargs = container(find(docs, "Deployment", "dj-datajobs-operator-adapter"))["args"]
    assert [a for a in aargs if a.startswith("--namespace")] == ["--namespace=team-a", "--namespace=team-b"]
    assert not [
        d
        for d in docs
        if d["kind"] == "ServiceAccount"
        and d["metadata"]["name"].endswith("worker")
        and d["metadata"]["namespace"] == NS
    ]


def parse(argv: list[str]) -> argparse.Namespace:
    parser, mains = build_parser(argv)
    args = parser.parse_args(argv)
    assert args.command in mains
    return args


def test_rendered_container_args_are_what_the_cli_accepts(helm_offline: Helm) -> None:
    """The Deployments' args parse with `datajobs`'s own parser into the intended settings."""
    values = {"watchNamespaces": ["team-a"], "operator": {"maxRunningPerNamespace": 2}}
    docs = helm_offline.template(values, namespace=NS, release="dj")
    op = parse(container(find(docs, "Deployment", "dj-datajobs-operator"))["args"])
    assert (op.command, op.log_format, op.state_namespace, op.namespace) == ("run", "json", NS, ["team-a"])
    assert (op.max_running, op.max_running_per_namespace, op.workers) == (10, 2, 8)
    assert (op.worker_service_account, op.metrics_port, op.liveness_port) == (
        "dj-datajobs-operator-worker",
        9090,
        8081,
    )
    ad = parse(container(find(docs, "Deployment", "dj-datajobs-operator-adapter"))["args"])
    assert (ad.command, ad.port, ad.namespace) == ("adapter", 8080, ["team-a"])
    assert ad.api_keys_secret == f"{NS}/dj-datajobs-operator-adapter-keys"


def test_adapter_can_be_disabled(helm_offline: Helm) -> None:
    docs = helm_offline.template({"adapter": {"enabled": False}}, namespace=NS, release="dj")
    names = {name for _, name, _ in kinds(docs)}
    assert not [n for n in names if "adapter" in n or "api-key" in n]
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert find(docs, "Deployment", "dj-datajobs-operator")


def test_existing_secret_replaces_the_generated_key(helm_offline: Helm) -> None:
    docs = helm_offline.template(
        {"adapter": {"apiKeys": {"existingSecret": "my-keys"}}}, namespace=NS, release="dj"
    )
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert (
        f"--api-keys-secret={NS}/my-keys"
        in container(find(docs, "Deployment", "dj-datajobs-operator-adapter"))["args"]
    )
    assert find(docs, "Role", "dj-datajobs-operator-adapter-keys")["rules"][0]["resourceNames"] == ["my-keys"]


def test_service_monitor_only_when_enabled(helm_offline: Helm) -> None:
    assert not [d for d in helm_offline.template() if d["kind"] == "ServiceMonitor"]
    docs = helm_offline.template(
        {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}}, release="dj"
    )
    monitor = find(docs, "ServiceMonitor", "dj-datajobs-operator")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics", "http"]


def test_values_are_passed_through(helm_offline: Helm) -> None:
    docs = helm_offline.template(
        {
            "image": {"repository": "registry.example/dj", "tag": "1.2.3"},
            "operator": {"maxRunning": 3, "maxRunningPerNamespace": 1, "reconcileWorkers": 8},
            "worker": {"image": "registry.example/worker:9", "serviceAccount": {"create": False, "name": ""}},
            "log": {"level": "DEBUG", "format": "text"},
        },
        release="dj",
    )
    ctr = container(find(docs, "Deployment", "dj-datajobs-operator"))
    assert ctr["image"] == "registry.example/dj:1.2.3"
    assert {
        "--max-running=3",
        "--max-running-per-namespace=1",
        "--workers=8",
        "--worker-image=registry.example/worker:9",
        "--log-level=DEBUG",
        "--log-format=text",
    } <= set(ctr["args"])
    assert not [a for a in ctr["args"] if a.startswith("--worker-service-account")]
    assert not [d for d in docs if d["metadata"]["name"].endswith("-worker")]


def test_worker_placement_and_pull_policy_reach_the_operator_flags(helm_offline: Helm) -> None:
    """worker.nodeSelector/tolerations/imagePullPolicy become flags the operator's own parser accepts."""
    docs = helm_offline.template(
        {
            "image": {"pullPolicy": "Never"},
            "worker": {
                "nodeSelector": {"datajobs.io/node": "real", "zone": "a"},
                "tolerations": [
                    {"key": "datajobs.io/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"},
                    {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"},
                ],
            },
        },
        namespace=NS,
        release="dj",
    )
    op = parse(container(find(docs, "Deployment", "dj-datajobs-operator"))["args"])
    assert op.worker_image_pull_policy == "Never"  # follows image.pullPolicy unless worker.imagePullPolicy
    assert sorted(op.worker_node_selector) == [("datajobs.io/node", "real"), ("zone", "a")]
    assert op.worker_toleration == [
        ("datajobs.io/node", "real", "NoSchedule"),
        ("dedicated", "", "NoExecute"),
    ]
    default = parse(
        container(find(helm_offline.template(release="dj"), "Deployment", "dj-datajobs-operator"))["args"]
    )
    assert (default.worker_image_pull_policy, default.worker_node_selector, default.worker_toleration) == (
        "IfNotPresent",
        [],
        [],
    )
    own = helm_offline.template({"worker": {"imagePullPolicy": "Always"}}, release="dj")
    assert parse(
        container(find(own, "Deployment", "dj-datajobs-operator"))["args"]
    ).worker_image_pull_policy == ("Always")


def test_make_devs_values_put_the_built_image_and_every_pod_on_the_real_node(
    helm_offline: Helm, tmp_path: Path
) -> None:
    """What `datajobs dev` installs: the placement file, then devnode.chart_values() (two --values files)."""
    ref = "localhost/datajobs/datajobs-operator:0123abcd"
    dev_values = tmp_path / "chart-values.yaml"
    dev_values.write_text(yaml.safe_dump(devnode.chart_values(ref)))
    files = [devnode.PLACEMENT_VALUES, dev_values]
    docs = helm_offline.template(namespace=NS, release="datajobs-operator", files=files)
    placement = pod_placement()
    for name in ("datajobs-operator", "datajobs-operator-adapter"):
        pod = find(docs, "Deployment", name)["spec"]["template"]["spec"]
        assert (pod["nodeSelector"], pod["tolerations"]) == (
            placement["nodeSelector"],
            placement["tolerations"],
        )
        assert (
            container({"spec": {"template": {"spec": pod}}})["image"],
            pod["containers"][0]["imagePullPolicy"],
        ) == (
            ref,
            "Never",
        )
    op = parse(container(find(docs, "Deployment", "datajobs-operator"))["args"])
    assert op.worker_image == ref and op.worker_image_pull_policy == "Never"
    assert op.worker_node_selector == list(placement["nodeSelector"].items())
    assert op.worker_toleration == [(TAINT["key"], TAINT["value"], TAINT["effect"])]
    ad = parse(container(find(docs, "Deployment", "datajobs-operator-adapter"))["args"])
    assert ad.api_keys_secret == f"{NS}/{devnode.KEYS_SECRET}"
    assert find(docs, "ServiceAccount", "datajobs-operator-worker", "default")
    assert not [d for d in docs if d["kind"] == "Secret"]  # dev's own keys, not a generated one


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"operator": {"maxRunning": 0}}, "/operator/maxRunning"),
        ({"operator": {"maxRunning": "ten"}}, "/operator/maxRunning"),
        ({"operatr": {}}, "additional properties 'operatr' not allowed"),
        ({"operator": {"replicas": 0}}, "/operator/replicas"),
        (
            {"operator": {"replicas": 2, "leaderElection": {"enabled": False}}},
            "needs operator.leaderElection",
        ),
        (
            {
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": False,
                    "capabilities": {"drop": ["ALL"]},
                }
            },
            "/securityContext/readOnlyRootFilesystem",
        ),
        ({"podSecurityContext": {"runAsNonRoot": False}}, "/podSecurityContext/runAsNonRoot"),
        ({"watchNamespaces": ["Not_A_Namespace"]}, "/watchNamespaces/0"),
        ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"adapter": {"apiKeys": {"namespaces": []}}}, "/adapter/apiKeys/namespaces"),
        ({"log": {"level": "TRACE"}}, "/log/level"),
        ({"serviceMonitor": {"interval": "often"}}, "/serviceMonitor/interval"),
        ({"adapter": {"port": 70000}}, "/adapter/port"),
        ({"worker": {"tolerations": [{"key": "k", "effect": "Sometimes"}]}}, "/worker/tolerations/0/effect"),
        ({"worker": {"nodeSelector": {"zone": 1}}}, "/worker/nodeSelector/zone"),
    ],
)
def test_values_that_violate_the_schema_fail_helm_template(
    helm_offline: Helm, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(HelmError) as err:
        helm_offline.template(values)
    assert complaint in str(err.value)


def test_schema_accepts_the_documented_values_file() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(values, json.loads((CHART / "values.schema.json").read_text()))


# --- install into the local cluster -----------------------------------------------------------------------


def test_helm_install_creates_the_release_and_its_pods(
    helm: Helm, release: Any, namespace: str, kube_api: client.ApiClient, kubectl: Any, crds: list[str]
) -> None:
    name = release()
    full = f"{name}-datajobs-operator"
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)

    status = helm.run("status", name, "--namespace", namespace).stdout
    assert "STATUS: deployed" in status
    notes = helm.run("get", "notes", name, "--namespace", namespace).stdout
    assert "kubectl patch mex mask-crm-167 --type merge" in notes
    assert "cancelRequested:" in notes and 'curl -X POST -H "X-API-KEY: $KEY"' in notes
    assert f"secret {full}-api-key" in notes

    # the API server stored the pod templates as rendered (nothing defaulted away or rejected)
    operator = apps.read_namespaced_deployment(full, namespace).to_dict()
    assert operator["spec"]["replicas"] == 1 and operator["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = operator["spec"]["template"]["spec"]
    assert pod["service_account_name"] == full
    assert pod["security_context"]["run_as_non_root"] is True
    assert pod["security_context"]["seccomp_profile"]["type"] == "RuntimeDefault"
    ctr = pod["containers"][0]
    assert ctr["security_context"]["read_only_root_filesystem"] is True
    assert ctr["security_context"]["capabilities"]["drop"] == ["ALL"]
    assert f"--state-namespace={namespace}" in ctr["args"]
    assert ctr["liveness_probe"]["http_get"]["path"] == "/healthz"
    adapter = apps.read_namespaced_deployment(f"{full}-adapter", namespace).to_dict()
    actr = adapter["spec"]["template"]["spec"]["containers"][0]
    assert actr["readiness_probe"]["http_get"]["path"] == "/readyz"
    assert f"--api-keys-secret={namespace}/{full}-adapter-keys" in actr["args"]

    # the controllers made their pods, and kwok "ran" them
    for deployment in (full, f"{full}-adapter"):
        wait_for(
            lambda d=deployment: (
                (apps.read_namespaced_deployment_status(d, namespace).status.available_replicas or 0) == 1
            ),
            timeout=60,
            message=f"{deployment} available",
        )
    pods = core.list_namespaced_pod(namespace, label_selector=f"app.kubernetes.io/instance={name}").items
    assert sorted(p.metadata.labels["app.kubernetes.io/component"] for p in pods) == ["adapter", "operator"]
    assert all(p.spec.node_name for p in pods)

    assert core.read_namespaced_service(f"{full}-adapter", namespace).spec.ports[0].port == 80
    assert core.read_namespaced_service_account(f"{full}-worker", namespace)
    assert rbac.read_cluster_role(full).rules[0].resources == JOBS
    key = secret_value(kube_api, namespace, f"{full}-api-key", "api-key")
    (parsed,) = parse_keys(
        secret_value(kube_api, namespace, f"{full}-adapter-keys", "keys.yaml"), "installed"
    )
    assert parsed.digest == hashlib.sha256(key.encode()).digest()
    assert {"integrityjobs.datajobs.io", "maskingexecutions.datajobs.io"} <= set(
        kubectl("get", "crd", "-o", "name")
        .stdout.replace("customresourcedefinition.apiextensions.k8s.io/", "")
        .split()
    )

    # an upgrade keeps the generated key (the chart looks the Secret up)
    helm.run("upgrade", name, str(CHART), "--namespace", namespace, "--set", "operator.maxRunning=4")
    assert secret_value(kube_api, namespace, f"{full}-api-key", "api-key") == key
    args = apps.read_namespaced_deployment(full, namespace).spec.template.spec.containers[0].args
    assert "--max-running=4" in args

    helm.run("uninstall", name, "--namespace", namespace, "--wait", "--timeout", "60s")
    wait_for(
        lambda: not rbac.list_cluster_role(label_selector=f"app.kubernetes.io/instance={name}").items,
        timeout=30,
        message="ClusterRoles removed by helm uninstall",
    )


def test_helm_install_refuses_bad_values_before_touching_the_cluster(
    helm: Helm, namespace: str, kube_api: client.ApiClient
) -> None:
    with pytest.raises(HelmError, match="/operator/maxRunning"):
        helm.install("dj-bad", namespace, {"operator": {"maxRunning": -1}})
    assert not client.AppsV1Api(kube_api).list_namespaced_deployment(namespace).items
    assert "dj-bad" not in helm.run("list", "--namespace", namespace, "--all", "-q").stdout.split()


def test_the_worker_policy_is_on_by_default_and_the_template_policy_on_request(helm_offline: Helm) -> None:
    docs = helm_offline.template({}, release="dj")
    policy = find(docs, "ValidatingAdmissionPolicy", "dj-datajobs-operator-worker-own-pod")
    assert ":dj-datajobs-operator-worker'" in policy["spec"]["matchConditions"][0]["expression"]
    assert "authentication.kubernetes.io/pod-uid" in policy["spec"]["validations"][0]["expression"]
    binding = find(docs, "ValidatingAdmissionPolicyBinding", "dj-datajobs-operator-worker-own-pod")
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert not [d for d in docs if d["metadata"]["name"].endswith("-job-template")]
    args = container(find(docs, "Deployment", "dj-datajobs-operator"))["args"]
    assert "--worker-start-deadline=300" in args
    resources = next(a for a in args if a.startswith("--worker-resources="))
    assert json.loads(resources.split("=", 1)[1]) == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "512Mi"},
    }

    docs = helm_offline.template(
        {
            "worker": {"ownPodOnly": False},
            "jobTemplatePolicy": {"enabled": True, "allowedServiceAccounts": ["runner"]},
        },
        release="dj",
    )
    assert not [d for d in docs if d["metadata"]["name"].endswith("-worker-own-pod")]
    template = find(docs, "ValidatingAdmissionPolicy", "dj-datajobs-operator-job-template")
    expressions = " ".join(v["expression"] for v in template["spec"]["validations"])
    for needle in ("hostNetwork", "hostPath", "privileged", "in ['runner']"):
        assert needle in expressions, needle
