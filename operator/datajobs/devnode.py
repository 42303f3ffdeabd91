"""`datajobs dev` on a real node: a seeded PostgreSQL, the built image, the chart installed in the cluster.

`run()` starts, in order (the slow independent parts in parallel): PostgreSQL from scripts/postgres.sh on
host 127.0.0.1, seeded by devdata and exposed to pods on the node's address; the control plane with the
CRDs; the images (localcluster.images) and the real node they are loaded into; the connection Secret and
the masking rules in namespace `default`; the Helm chart (operator, adapter, accounts) from the built image
on the real node; the adapter's Service on host 127.0.0.1:<port>. Then it prints the `ready:` line and
watches every process until Ctrl-C/SIGTERM, which stops them all.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from datajobs import dev, devdata
from datajobs.localcluster import imagestore
from datajobs.localcluster.binaries import BinariesError, ensure_binaries
from datajobs.localcluster.cluster import ClusterError, LocalCluster
from datajobs.localcluster.crds import apply_crds
from datajobs.localcluster.processes import ignore_interrupts
from datajobs.localcluster.realnode import RealNode, RealNodeError
from datajobs.localcluster.rest import ApiError, Rest

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
POSTGRES_SCRIPT = REPO / "scripts" / "postgres.sh"
CHART = REPO / "charts" / "datajobs-operator"
PLACEMENT_VALUES = CHART / "ci" / "real-node-values.yaml"
"""Every pod of the release on the real node (nodeSelector + toleration); the README's install uses it too."""
RELEASE, RELEASE_NAMESPACE = "datajobs-operator", "datajobs-system"
JOBS_NAMESPACE = "default"
POSTGRES_SECRET = "datajobs-dev-postgres"
RULES_CONFIGMAP = "datajobs-dev-masking-rules"
KEYS_SECRET = "datajobs-dev-adapter-keys"
READY_TIMEOUT = 300.0


@dataclass(frozen=True)
class Postgres:
    """A cluster started by scripts/postgres.sh: its directory and the DSN of its `postgres` database."""

    directory: Path
    dsn: str

    @property
    def port(self) -> int:
        return int(self.dsn.rsplit(":", 1)[1].split("/", 1)[0])


def start_postgres() -> Postgres:
    proc = subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
    )
    if proc.returncode != 0:
        raise ClusterError(f"scripts/postgres.sh start failed: {proc.stderr.strip()}")
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return Postgres(Path(values["PGDIR"]), values["DSN"])


def stop_postgres(pg: Postgres) -> None:
    subprocess.run(
        ["bash", str(POSTGRES_SCRIPT), "stop", str(pg.directory)], capture_output=True, timeout=120
    )


def postgres_watchdog(pg: Postgres) -> int:
    """A detached `postgres.sh stop` that runs when we die (even by SIGKILL): returns the pipe end to keep."""
    read, write = os.pipe()
    subprocess.Popen(
        ["bash", "-c", 'cat >/dev/null; exec bash "$0" stop "$1"', str(POSTGRES_SCRIPT), str(pg.directory)],
        stdin=read,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(read)
    return write


# --- what is installed (pure builders) --------------------------------------------------------------------


def connection_secret(dsn: str, masking_key: str) -> dict[str, Any]:
    """The default workers' Secret (spec.connectionSecretName): every key becomes an environment variable."""
    data = {
        "SOURCE_DSN": dsn,
        "DESTINATION_DSN": dsn,
        "TARGET_DSN": dsn,
        "INTEGRITY_SOURCE_SCHEMA": devdata.SOURCE_SCHEMA,
        "MASKING_KEY": masking_key,
    }
    return _secret(POSTGRES_SECRET, JOBS_NAMESPACE, data)


def rules_configmap() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": RULES_CONFIGMAP, "namespace": JOBS_NAMESPACE},
        "data": {"rules.yaml": yaml.safe_dump(devdata.MASKING_RULES, sort_keys=False)},
    }


def keys_secret(keys_document: str) -> dict[str, Any]:
    """The adapter's keys (adapter.apiKeys.existingSecret): the SHA-256 of `<dir>/api-key`, all namespaces."""
    return _secret(KEYS_SECRET, RELEASE_NAMESPACE, {"keys.yaml": keys_document})


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


def chart_values(app_ref: str) -> dict[str, Any]:
    """The chart's values for the dev cluster (over PLACEMENT_VALUES): the built image, dev's API key."""
    repository, _, tag = app_ref.rpartition(":")
    return {
        "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
        "log": {"format": "text"},
        # Probed every second while starting: the ready line waits for both to be Ready.
        "operator": {
            "startupProbe": {"periodSeconds": 1, "failureThreshold": 300},
            "readinessProbe": {"periodSeconds": 1},
        },
        "adapter": {"apiKeys": {"existingSecret": KEYS_SECRET}, "readinessProbe": {"periodSeconds": 1}},
        "worker": {"serviceAccount": {"namespaces": [JOBS_NAMESPACE]}},
    }


# --- the API calls ----------------------------------------------------------------------------------------


T = TypeVar("T")


def patiently(call: Callable[[], T], what: str, timeout: float = 120.0) -> T:
    """An idempotent API call, asked again while the API server times out (as on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except (TimeoutError, urllib.error.URLError) as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: the API server did not answer within {timeout:.0f} s") from exc
            log.info("%s: %s; asking again", what, exc)


def put(rest: Rest, obj: dict[str, Any]) -> None:
    """Server-side apply one namespaced core object (Secret, ConfigMap) or a Namespace."""
    kind, meta = obj["kind"], obj["metadata"]
    if kind == "Namespace":
        path = f"/api/v1/namespaces/{meta['name']}"
    else:
        path = f"/api/v1/namespaces/{meta['namespace']}/{kind.lower()}s/{meta['name']}"
    patiently(lambda: rest.apply(path, obj, field_manager="datajobs-dev"), f"apply {path}")


def helm_install(helm: Path, kubeconfig: Path, values_file: Path, home: Path) -> None:
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    env.pop("KUBECONFIG", None)
    argv = [
        str(helm), "upgrade", "--install", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
        "--kubeconfig", str(kubeconfig), "--values", str(PLACEMENT_VALUES), "--values", str(values_file),
    ]  # fmt: skip
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"helm install of {CHART} failed ({proc.returncode}): {proc.stderr.strip()}")


def deployments_ready(rest: Rest, names: list[str]) -> bool:
    for name in names:
        status = (
            rest.get(f"/apis/apps/v1/namespaces/{RELEASE_NAMESPACE}/deployments/{name}").get("status") or {}
        )
        if not status.get("readyReplicas"):
            return False
    return True


def _answers(probe: Callable[[], bool]) -> bool:
    try:
        return probe()
    except (TimeoutError, urllib.error.URLError):
        return False


def wait(
    what: str, probe: Callable[[], bool], node: RealNode, cluster: LocalCluster, deadline: float
) -> None:
    while not _answers(probe):
        node.check()
        dead = [c for c in cluster.children if not c.alive()]
        if dead:
            raise ClusterError(
                f"{dead[0].name} exited (code {dead[0].popen.returncode}); see {dead[0].log_path}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.3)


# --- run --------------------------------------------------------------------------------------------------


def _seeded_postgres() -> Postgres:
    pg = start_postgres()
    try:
        devdata.seed(pg.dsn)
    except BaseException:
        stop_postgres(pg)
        raise
    return pg


def _images() -> Any:
    from datajobs.localcluster.images import ensure_images

    return ensure_images()


def run(args: argparse.Namespace) -> int:
    """`datajobs dev` with a real node (the caller checked that this machine can run one)."""
    from datajobs.localcluster.images import ImagesError

    directory: Path = args.dir.resolve()
    if not dev.port_free(args.adapter_port):
        log.error("port %d on 127.0.0.1 is in use: pass --adapter-port", args.adapter_port)
        return 1
    started = time.monotonic()
    shutil.rmtree(directory / "cluster", ignore_errors=True)
    cluster = LocalCluster(directory / "cluster", nodes=args.nodes, real_node=True)
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dev")
    postgres: Future[Postgres] = pool.submit(_seeded_postgres)
    images = pool.submit(_images)
    pg: Postgres | None = None
    watchdog: int | None = None
    try:
        helm = ensure_binaries(["helm"])["helm"]
        cluster.start()
        rest = dev.patient_rest(cluster)
        patiently(lambda: apply_crds(rest, dev.crd_documents()), "apply the CRDs")
        kubeconfig = directory / "kubeconfig"
        dev.write_private(kubeconfig, cluster.kubeconfig.read_text())
        keys = dev.write_api_key(directory)
        built = images.result()
        node = cluster.add_real_node(
            {built.pause_ref: built.pause_tar, built.app_ref: built.app_tar},
            built.pause_ref,
            image_store=imagestore.default_directory(),
        )
        pg = postgres.result()
        watchdog = postgres_watchdog(pg)
        dsn_file = directory / "postgres-dsn"
        dev.write_private(dsn_file, devdata.dsn_for(pg.dsn, devdata.DATABASE) + "\n")
        host, port = node.expose_to_pods(pg.port)
        pod_dsn = f"postgresql://postgres@{host}:{port}/{devdata.DATABASE}"
        put(rest, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": RELEASE_NAMESPACE}})
        put(rest, connection_secret(pod_dsn, secrets.token_urlsafe(24)))
        put(rest, rules_configmap())
        put(rest, keys_secret(keys.keys_document.read_text()))
        values_file = directory / "chart-values.yaml"
        values_file.write_text(yaml.safe_dump(chart_values(built.app_ref), sort_keys=False))
        helm_install(helm, kubeconfig, values_file, directory / "helm")
        deadline = time.monotonic() + READY_TIMEOUT
        names = [RELEASE, f"{RELEASE}-adapter"]
        ready = lambda: deployments_ready(cluster.rest, names)  # noqa: E731
        wait("the operator and the adapter Ready", ready, node, cluster, deadline)
        adapter_service = f"/api/v1/namespaces/{RELEASE_NAMESPACE}/services/{RELEASE}-adapter"
        service = patiently(lambda: cluster.rest.get(adapter_service), "get the adapter's Service")
        node.expose_to_host(
            args.adapter_port, (service["spec"]["clusterIP"], service["spec"]["ports"][0]["port"])
        )
        url = f"http://127.0.0.1:{args.adapter_port}"
        wait(f"{url}/readyz", lambda: dev.http_ok(url + "/readyz"), node, cluster, deadline)
        log.info("ready in %.1f s", time.monotonic() - started)
        dev.announce(kubeconfig, url, keys, f"node=real postgres={dsn_file}")
        while True:
            time.sleep(0.5)
            node.check()
            if dev.control_plane_died(cluster):
                return 1
    except KeyboardInterrupt:
        log.info("interrupted: stopping")
        return 0
    except (BinariesError, ClusterError, RealNodeError, ImagesError, ApiError, TimeoutError) as exc:
        log.error("%s", exc or type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
        return 1
    finally:
        ignore_interrupts()
        cluster.stop()
        pool.shutdown(wait=True, cancel_futures=True)
        if pg is None and postgres.done() and not postgres.cancelled() and postgres.exception() is None:
            pg = postgres.result()
        if pg is not None:
            stop_postgres(pg)
        if watchdog is not None:
            os.close(watchdog)
        sys.stdout.flush()
