"""The README's commands print what the README says they print (tests/readmekit.py: how blocks are found,
run and matched).

Here: the Helm section, against the test cluster's real node, with the image the Dockerfile builds loaded
there under the README's name (the equivalent of pushing it to your registry); its install places the pods
on the real node with the chart's `ci/real-node-values.yaml`, as the README says. The `make dev`
walkthrough runs against `datajobs dev` itself in tests/node/test_dev_node.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chartkit import helm_exe
from kubernetes import client
from pluginkit import plugin_dir

from datajobs.localcluster.nodeconfig import CONTAINERD_SOCKET, NODE_NAME
from helpers import kubectl_exe
from readmekit import README, SETUP_MARK, examples, matches, run_examples, sections

PROVIDED = {"KUBECONFIG", "ADAPTER", "KEY", "DSN"}
HELM_NAMESPACE = "datajobs-system"
README_IMAGE = "registry.example.com/datajobs-operator:0.1.0"
"""The image the README's install names (`image.repository` + the chart's appVersion)."""


# --- the matcher itself (no cluster) ----------------------------------------------------------------------


def test_expected_output_matching() -> None:
    table = "NAME   STATUS    AGE\nij/a   RUNNING   3s\n"
    assert matches("NAME STATUS AGE\nij/a RUNNING ...", table)
    assert not matches("NAME STATUS AGE\nij/a QUEUED ...", table)
    assert matches("first\n...\nlast", "first\nsecond\nthird\nlast\n")
    assert matches("first\n...\nlast", "first\nlast")
    assert not matches("first\nlast", "first\nsecond\nlast")
    assert matches('{"id": "...", "status": "RUNNING"}', '{"id": "9f-1", "status": "RUNNING"}')
    assert not matches('{"id": "...", "status": "RUNNING"}', '{"id": "9f-1", "status": "FAILED"}')


def test_readme_marks_its_examples() -> None:
    found = examples(README.read_text())
    assert len(found) >= 8, "the README's user guide lost its tested examples"
    assert all(e.expected for e in found), [e.line for e in found if not e.expected]
    (setup,) = examples(README.read_text(), SETUP_MARK)
    assigned = set(re.findall(r"^(?:export )?([A-Z_]+)=", setup.script, re.M))
    assert assigned == PROVIDED, f"the README's setup block sets {assigned}; the doc test provides {PROVIDED}"


# --- running them -----------------------------------------------------------------------------------------


def tool_env(kubeconfig: str, home: Path) -> dict[str, str]:
    """The pinned kubectl and helm (and kubectl-datajobs) first on PATH, helm's state in `home`."""
    tools = f"{Path(kubectl_exe()).parent}:{helm_exe().parent}:{plugin_dir()}"
    return {
        **os.environ,
        "KUBECONFIG": kubeconfig,
        "PATH": f"{tools}:{os.environ.get('PATH', '')}",
        "HELM_CACHE_HOME": str(home / "helm-cache"),
        "HELM_CONFIG_HOME": str(home / "helm-config"),
        "HELM_DATA_HOME": str(home / "helm-data"),
    }


@pytest.fixture
def helm_environment(
    cluster: Any, real_node: Any, crds: list[str], tmp_path: Path
) -> Iterator[dict[str, str]]:
    real_node.node.run("ctr", "-a", CONTAINERD_SOCKET, "-n", "k8s.io", "images", "tag", "--force",
                       real_node.image, README_IMAGE)  # fmt: skip
    env = tool_env(str(cluster.kubeconfig), tmp_path)
    cleanup = (
        f"helm uninstall datajobs-operator -n {HELM_NAMESPACE} --wait --timeout 60s || true; "
        f"kubectl delete namespace {HELM_NAMESPACE} --ignore-not-found --wait=false"
    )
    subprocess.run(["bash", "-c", cleanup], env=env, capture_output=True, timeout=120, check=False)
    try:
        yield env
    finally:
        subprocess.run(["bash", "-c", cleanup], env=env, capture_output=True, timeout=120, check=False)


def test_readme_helm_section_installs_the_built_image_on_the_real_node(
    helm_environment: dict[str, str], real_node: Any, kube_api: Any, tmp_path: Path
) -> None:
    helm, walkthrough = sections(README.read_text())
    assert len(helm) >= 3 and len(walkthrough) >= 8, "the README lost its tested examples"
    install, *rest = helm
    assert "helm install" in install.script and "ci/real-node-values.yaml" in install.script
    state = tmp_path / "shell-variables.sh"
    run_examples([install], helm_environment, state)

    pods = client.CoreV1Api(kube_api).list_namespaced_pod(HELM_NAMESPACE).items
    by_component = {
        p.metadata.labels["app.kubernetes.io/component"]: p for p in pods if not p.metadata.deletion_timestamp
    }
    assert set(by_component) == {"operator", "adapter"}, [p.metadata.name for p in pods]
    for component, account in (("operator", "datajobs-operator"), ("adapter", "datajobs-operator-adapter")):
        pod = by_component[component]
        assert pod.spec.node_name == NODE_NAME, (component, pod.spec.node_name)
        assert pod.spec.service_account_name == account
        assert pod.status.phase == "Running"
        (container,), (status,) = pod.spec.containers, pod.status.container_statuses
        assert container.image == README_IMAGE, container.image
        # the CRI names the image by one of its tags: both are the image `make image` built
        assert status.ready and status.image.endswith((README_IMAGE, real_node.image)), status.image

    run_examples(rest, helm_environment, state, fresh=False)
