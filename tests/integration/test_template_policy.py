"""The chart's optional job-template policy, installed on the real API server: a job whose `spec.template`
is privileged, uses the node's namespaces or filesystem, or names a ServiceAccount outside the allowed
list is refused at the job (with the policy's message); an ordinary template is let through."""

# ruff: noqa: F811 (pytest fixtures imported from other modules are redefined as parameters)

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from chartkit import Helm, extra_namespace, helm, release_name  # noqa: F401 (fixtures)
from kubernetes import client
from operatorkit import GROUP, PLURALS, SPECS, VERSION, worker_template

from helpers import wait_for

ALLOWED = ["default", "datajobs-worker"]


@pytest.fixture
def policy_namespace(helm: Helm, namespace: str, extra_namespace: str, crds: list[str]) -> Iterator[str]:
    """The chart with jobTemplatePolicy on, bound to one namespace of this test's (the jobs' one)."""
    release = release_name("tpl")
    values = {
        "watchNamespaces": [extra_namespace],
        "jobTemplatePolicy": {"enabled": True, "allowedServiceAccounts": ALLOWED},
    }
    helm.install(release, namespace, values, "--skip-crds")
    try:
        yield extra_namespace
    finally:
        helm.run("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "60s", check=False)


def template(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    tpl = worker_template()
    edit(tpl["spec"])
    return tpl


def privileged(pod: dict[str, Any]) -> None:
    pod["containers"][0]["securityContext"] = {"privileged": True}


def privileged_init(pod: dict[str, Any]) -> None:
    pod["initContainers"] = [{"name": "init", "image": "busybox", "securityContext": {"privileged": True}}]


def host_path(pod: dict[str, Any]) -> None:
    pod["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]


def host_network(pod: dict[str, Any]) -> None:
    pod["hostNetwork"] = True


def host_pid(pod: dict[str, Any]) -> None:
    pod["hostPID"] = True


def other_account(pod: dict[str, Any]) -> None:
    pod["serviceAccountName"] = "cluster-admin-ish"


REFUSED = [
    (privileged, "may not run privileged containers"),
    (privileged_init, "may not run privileged initContainers"),
    (host_path, "may not mount hostPath volumes"),
    (host_network, "may not use the node's network"),
    (host_pid, "may not use the node's network, PID or IPC"),
    (other_account, "serviceAccountName must be one of: default, datajobs-worker"),
]


def allowed(pod: dict[str, Any]) -> None:
    pod["serviceAccountName"] = "datajobs-worker"
    pod["volumes"] = [{"name": "scratch", "emptyDir": {}}]
    pod["containers"][0]["securityContext"] = {"privileged": False, "runAsNonRoot": True}


@pytest.mark.parametrize("kind", list(PLURALS))
def test_the_template_policy_refuses_what_it_lists_and_lets_an_ordinary_job_through(
    kind: str, policy_namespace: str, kube_api: client.ApiClient
) -> None:
    api = client.CustomObjectsApi(kube_api)

    def create(name: str, edit: Callable[[dict[str, Any]], None], dry_run: str | None = "All") -> str:
        """'' when the API server accepted the job, else the refusal's status and body."""
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name},
            "spec": SPECS[kind](template=template(edit)),
        }
        try:
            api.create_namespaced_custom_object(
                GROUP, VERSION, policy_namespace, PLURALS[kind], body, dry_run=dry_run
            )
        except client.ApiException as exc:
            return f"{exc.status} {exc.body}"
        return ""

    # the binding takes a moment to be in force: probe with dry runs, which store nothing
    wait_for(lambda: create("probe", privileged), timeout=30, message="the template policy is in force")
    for edit, message in REFUSED:
        why = create(f"bad-{edit.__name__.replace('_', '-')}", edit, dry_run=None)
        assert why.startswith("403 ") and message in why, (edit.__name__, why)
    assert create("ordinary", allowed, dry_run=None) == ""
    stored = api.list_namespaced_custom_object(GROUP, VERSION, policy_namespace, PLURALS[kind])["items"]
    names = {o["metadata"]["name"] for o in stored}
    assert names == {"ordinary"}  # nothing refused was stored
