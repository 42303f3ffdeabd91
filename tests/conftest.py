"""Shared fixtures: one real local control plane per test session, a fresh namespace per test, kubectl, CRDs.

`cluster` starts etcd + kube-apiserver + controller-manager + scheduler + kwok on 127.0.0.1 (or reuses the
cluster named by $DATAJOBS_TEST_KUBECONFIG). Missing binaries are built before the first test (outside
any test timeout); if that fails, every test that needs the cluster fails with the reason — never a skip.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from datajobs.localcluster import (
    BinariesError,
    ClusterError,
    LocalCluster,
    ensure_binaries,
    find_binaries,
    imagestore,
)
from datajobs.localcluster.binaries import NODE, cache_dir, missing
from datajobs.localcluster.images import Images, ImagesError, ensure_images, find_images, images_dir
from datajobs.localcluster.nodeconfig import NODE_NAME, pod_placement
from datajobs.localcluster.realnode import RealNode, RealNodeError, unavailable_reason
from helpers import kubectl_exe, wait_for

REPO_ROOT = Path(__file__).resolve().parent.parent
CRDS_DIR = REPO_ROOT / "crds"
REUSE_ENV = "DATAJOBS_TEST_KUBECONFIG"

_binaries_error: str | None = None
_images_error: str | None = None
_images: Images | None = None


@dataclass(frozen=True)
class Cluster:
    """What tests get from the `cluster` fixture."""

    kubeconfig: str
    server: str
    bin_dir: Path | None
    local: LocalCluster | None
    """The running control plane when this session started it; None when reusing $DATAJOBS_TEST_KUBECONFIG."""


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Build missing control-plane binaries and images now, before any per-test timeout starts ticking."""
    global _binaries_error
    _build_images(config, items)
    if os.environ.get(REUSE_ENV) or not any("cluster" in getattr(i, "fixturenames", ()) for i in items):
        return
    wants_node = any("real_node" in getattr(i, "fixturenames", ()) for i in items)
    todo = missing() + (missing(NODE) if wants_node else [])
    if not todo:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"building the local control plane ({', '.join(todo)}); the first build takes "
            f"several minutes (log: {cache_dir().parent})",
            yellow=True,
        )
    try:
        ensure_binaries(tuple(todo))
    except BinariesError as exc:
        _binaries_error = str(exc)


def _build_images(config: pytest.Config, items: list[pytest.Item]) -> None:
    global _images_error, _images
    if not any("images" in getattr(i, "fixturenames", ()) for i in items):
        return
    _images = find_images(REPO_ROOT)
    if _images is not None:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"building the images (`make image`); the first build takes several minutes (logs: "
            f"{images_dir()})",
            yellow=True,
        )
    try:
        _images = ensure_images(REPO_ROOT)
    except ImagesError as exc:
        _images_error = str(exc)


@pytest.fixture(scope="session")
def images() -> Images:
    """The pause and app images of this checkout (docker-archive tars + refs), built if missing.

    The ones built (or found) before the first test: sources edited during the session do not start a
    build inside a test's timeout."""
    if _images_error is not None:
        pytest.fail(f"the images could not be built: {_images_error}", pytrace=False)
    if _images is not None:
        return _images
    try:
        return ensure_images(REPO_ROOT)
    except ImagesError as exc:
        pytest.fail(f"the images could not be built: {exc}", pytrace=False)


def _server_of(kubeconfig: str) -> str:
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    current = doc.get("current-context")
    context = next(
        (c["context"] for c in doc["contexts"] if c["name"] == current), doc["contexts"][0]["context"]
    )
    return str(next(c["cluster"]["server"] for c in doc["clusters"] if c["name"] == context["cluster"]))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """A running control plane for the whole session: `.kubeconfig` (path str), `.server`, `.bin_dir`."""
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        found = find_binaries()
        path = str(Path(reuse).resolve())
        yield Cluster(path, _server_of(path), found.bin_dir if found else None, None)
        return
    if _binaries_error is not None:
        pytest.fail(f"control plane binaries unavailable: {_binaries_error}", pytrace=False)
    try:
        binaries = ensure_binaries()
    except BinariesError as exc:
        pytest.fail(f"control plane binaries unavailable: {exc}", pytrace=False)
    # The API server is set up for a real node wherever one can run; the node itself starts only when a
    # test asks for the `real_node` fixture.
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), binaries, real_node=unavailable_reason() is None)
    try:
        local.start()
    except ClusterError as exc:
        pytest.fail(f"the local control plane did not start: {exc}", pytrace=False)
    try:
        yield Cluster(str(local.kubeconfig), local.server, local.bin_dir, local)
    finally:
        local.stop()


@pytest.fixture(scope="session")
def kube_api(cluster: Cluster) -> Iterator[client.ApiClient]:
    """A kubernetes.client.ApiClient authenticated as the cluster admin."""
    api = config.new_client_from_config(config_file=cluster.kubeconfig)
    try:
        yield api
    finally:
        api.close()


def _namespace_name(test_name: str) -> str:
    stem = re.sub(r"[^a-z0-9-]+", "-", test_name.lower().removeprefix("test_")).strip("-")[:40].strip("-")
    return f"t-{stem}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(kube_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards (without waiting for it to go)."""
    core = client.CoreV1Api(kube_api)
    name = _namespace_name(request.node.name)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"datajobs.io/test": "true"}))
    )
    # With ServiceAccount admission on (a real node's cluster), a pod needs its namespace's `default` SA.
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        message=f"ServiceAccount {name}/default",
        ignore=(ApiException,),
    )
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


Kubectl = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def kubectl(cluster: Cluster) -> Kubectl:
    """`kubectl(*args, check=True, input=None, timeout=60)`: run the real kubectl against the cluster.

    Returns the CompletedProcess (text). With check=True a non-zero exit fails the test with stderr.
    """
    exe = kubectl_exe()
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig}

    def run(
        *args: str, check: bool = True, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [exe, *args], env=env, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()}")
        return proc

    return run


@pytest.fixture(scope="session")
def crds(cluster: Cluster, kube_api: client.ApiClient) -> list[str]:
    """Every crds/*.yaml applied (server-side) and Established, and its resources listable; their names."""
    files = sorted(CRDS_DIR.glob("*.yaml"))
    if not files:
        pytest.fail(f"no CRDs in {CRDS_DIR}: run `make crds`", pytrace=False)
    exe = kubectl_exe()
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig}
    docs = [d for f in files for d in yaml.safe_load_all(f.read_text()) if d]
    for path in files:
        proc = subprocess.run(
            [
                exe,
                "apply",
                "--server-side",
                "--force-conflicts",
                "--field-manager=datajobs-tests",
                "-f",
                str(path),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            pytest.fail(f"applying {path.name} failed: {proc.stderr.strip()}", pytrace=False)
    ext = client.ApiextensionsV1Api(kube_api)
    custom = client.CustomObjectsApi(kube_api)
    names = []
    for doc in docs:
        name, spec = doc["metadata"]["name"], doc["spec"]
        wait_for(
            lambda n=name: any(
                c.type == "Established" and c.status == "True"
                for c in (ext.read_custom_resource_definition(n).status.conditions or [])
            ),
            timeout=60,
            message=f"CRD {name} Established",
        )
        for version in (v["name"] for v in spec["versions"] if v.get("served", True)):
            # Right after Established the new storage may still answer 429 "(re)initializing".
            wait_for(
                lambda v=version, g=spec["group"], p=spec["names"]["plural"]: (
                    custom.list_cluster_custom_object(g, v, p, limit=1) is not None
                ),
                timeout=60,
                message=f"{name} {version} listable",
                ignore=(ApiException,),
            )
        names.append(name)
    return names


@dataclass(frozen=True)
class Node:
    """What tests get from `real_node`: the running node, the built image, and how a pod lands there."""

    node: RealNode
    name: str
    image: str
    """The image the Dockerfile builds (operator, adapter, reference workers), loaded into the node."""
    placement: dict
    """nodeSelector + tolerations: merge into a pod spec to run it on the real node."""


@pytest.fixture(scope="session")
def real_node(cluster: Cluster, images: Images) -> Node:
    """A kubelet + containerd node in the harness's own namespaces, with the project's image loaded.

    Fails (never skips) where a real node cannot run, with the reason."""
    reason = unavailable_reason()
    if reason:
        pytest.fail(f"the real-node tests need a real node: {reason}", pytrace=False)
    if cluster.local is None:
        pytest.fail(f"the real-node tests need the harness's own cluster, not ${REUSE_ENV}", pytrace=False)
    try:
        node = cluster.local.add_real_node(
            {images.pause_ref: images.pause_tar, images.app_ref: images.app_tar},
            images.pause_ref,
            image_store=imagestore.default_directory(),
        )
    except (RealNodeError, ClusterError, BinariesError) as exc:
        pytest.fail(f"the real node did not start: {exc}", pytrace=False)
    return Node(node, NODE_NAME, images.app_ref, pod_placement())
