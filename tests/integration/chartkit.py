"""Test support for the Helm chart: the pinned helm, render and install, ServiceAccount kubeconfigs."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import pinned_tool

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "datajobs-operator"


class HelmError(AssertionError):
    """helm exited non-zero; the message carries its stderr."""


class Helm:
    """The pinned helm (built like the control plane's binaries), isolated in its own HELM_* directories."""

    def __init__(self, exe: Path, home: Path, kubeconfig: str | None = None) -> None:
        self.exe = exe
        self.kubeconfig = kubeconfig
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }
        self.env.pop("KUBECONFIG", None)

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = [str(self.exe), *args]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise HelmError(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.strip()}")
        return proc

    def template(
        self,
        values: dict[str, Any] | None = None,
        *,
        namespace: str = "datajobs-system",
        release: str = "dj",
        files: Sequence[Path] = (),
    ) -> list[dict[str, Any]]:
        """Render the chart (no cluster) with values `files` then `values`; return its documents."""
        file_args = [a for f in files for a in ("--values", str(f))]
        out = self.run(
            "template", release, str(CHART), "--namespace", namespace, *file_args, *values_args(values)
        ).stdout
        return [d for d in yaml.safe_load_all(out) if d]

    def install(
        self, release: str, namespace: str, values: dict[str, Any] | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "install",
            release,
            str(CHART),
            "--namespace",
            namespace,
            *values_args(values),
            *extra,
            timeout=180,
        )


def values_args(values: dict[str, Any] | None) -> list[str]:
    """`--set-json` arguments, one per top-level key (exact types, no --set string coercion)."""
    return [a for k, v in (values or {}).items() for a in ("--set-json", f"{k}={json.dumps(v)}")]


def helm_exe() -> Path:
    return pinned_tool("helm")


@pytest.fixture(scope="session")
def helm_offline(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm for lint/template: needs no cluster."""
    return Helm(helm_exe(), tmp_path_factory.mktemp("helm"))


@pytest.fixture(scope="session")
def helm(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """helm pointed at the test cluster (admin)."""
    return Helm(helm_exe(), tmp_path_factory.mktemp("helm"), cluster.kubeconfig)


def release_name(prefix: str = "dj") -> str:
    """Unique per test: the chart's ClusterRoles are named after the release."""
    return f"{prefix}-{secrets.token_hex(3)}"


def find(docs: list[dict[str, Any]], kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    for doc in docs:
        meta = doc["metadata"]
        if (
            doc["kind"] == kind
            and meta["name"] == name
            and (namespace is None or meta.get("namespace") == namespace)
        ):
            return doc
    raise AssertionError(
        f"no {kind} {name} in the rendered chart: {[(d['kind'], d['metadata']['name']) for d in docs]}"
    )


def kinds(docs: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace", "")) for d in docs}


# --- credentials of the chart's ServiceAccounts ----------------------------------------------------------


def token_for(
    kubectl: Any,
    namespace: str,
    service_account: str,
    duration: str = "2h",
    bound_pod: tuple[str, str] | None = None,
) -> str:
    """A real ServiceAccount token from the TokenRequest API (`kubectl create token`); with `bound_pod`
    (name, uid) bound to that pod, like the token the kubelet mounts into it.

    Neither kopf nor kubernetes_asyncio honours kubeconfig impersonation (`as:`), so impersonation cannot
    carry the operator's identity; a token signed by the API server's service-account key can.
    """
    bound = []
    if bound_pod is not None:
        bound = [
            "--bound-object-kind=Pod",
            f"--bound-object-name={bound_pod[0]}",
            f"--bound-object-uid={bound_pod[1]}",
        ]
    proc = kubectl("create", "token", service_account, "-n", namespace, f"--duration={duration}", *bound)
    token = str(proc.stdout).strip()
    assert token.count(".") == 2, f"not a JWT: {token[:40]!r}"
    return token


def service_account_kubeconfig(
    admin_kubeconfig: str, token: str, path: Path, namespace: str = "default", user: str = "sa"
) -> Path:
    """A kubeconfig for the admin's cluster (server + CA) that authenticates with `token`."""
    admin = yaml.safe_load(Path(admin_kubeconfig).read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": cluster["name"], "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def secret_value(kube_api: Any, namespace: str, name: str, key: str) -> str:
    from kubernetes import client

    secret = client.CoreV1Api(kube_api).read_namespaced_secret(name, namespace)
    return base64.b64decode(secret.data[key]).decode()


@pytest.fixture
def extra_namespace(kube_api: Any, namespace: str) -> Iterator[str]:
    """A second fresh namespace (the first is the release's): the jobs live here."""
    from kubernetes import client

    core = client.CoreV1Api(kube_api)
    name = f"{namespace[:50]}-jobs"
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"datajobs.io/test": "true"}))
    )
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture
def release(helm: Helm, namespace: str) -> Iterator[Any]:
    """`release(values=None, *extra) -> name`: helm install into the test's namespace; uninstalled after."""
    installed: list[str] = []

    def install(values: dict[str, Any] | None = None, *extra: str) -> str:
        name = release_name()
        helm.install(name, namespace, values, *extra)
        installed.append(name)
        return name

    yield install
    for name in installed:
        helm.run("uninstall", name, "--namespace", namespace, "--wait", "--timeout", "60s", check=False)
