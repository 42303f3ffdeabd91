"""Test support for the worker chain on the real node: the operator (a host process, as the integration
tests run it) with its default worker in the built image on the real node, a real PostgreSQL the pods
reach through the node's forwarder, and watches that record every version of a job and of its pod.

Import the fixtures into a test module: `from workerkit import jobs, node_operator, pod_postgres, ...`."""

from __future__ import annotations

import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest
import yaml
from kubernetes import client, watch
from operatorkit import GROUP, PLURALS, VERSION, Jobs, jobs, run_operator  # noqa: F401 (fixtures)
from pgcluster import Postgres, postgres  # noqa: F401 (fixture)

from helpers import kubectl_exe

WORKER_SA = "datajobs-worker"


@dataclass(frozen=True)
class PodPostgres:
    """The session's PostgreSQL and the address under which pods on the real node reach it."""

    pg: Postgres
    pod_host: str
    pod_port: int

    def create_database(self, prefix: str) -> str:
        """A fresh database; its DSN as seen from the host (use `for_pods` for a worker's Secret)."""
        return self.pg.create_database(prefix)

    def for_pods(self, dsn: str) -> str:
        host_part = self.pg.dsn.split("@", 1)[1].split("/", 1)[0]  # 127.0.0.1:<port>
        assert host_part in dsn, (host_part, dsn)
        return dsn.replace(host_part, f"{self.pod_host}:{self.pod_port}")


@pytest.fixture(scope="session")
def pod_postgres(real_node: Any, postgres: Postgres) -> PodPostgres:  # noqa: F811 (the imported fixture)
    port = int(postgres.dsn.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    host, pod_port = real_node.node.expose_to_pods(port)
    return PodPostgres(postgres, host, pod_port)


@pytest.fixture
def node_operator(run_operator: Any, kube_api: client.ApiClient, namespace: str, real_node: Any) -> Any:  # noqa: F811
    """`datajobs run` whose default worker is the built image on the real node, under a worker account
    with exactly what the protocol needs (get and patch pods, as the chart's worker Role)."""
    core, rbac = client.CoreV1Api(kube_api), client.RbacAuthorizationV1Api(kube_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": WORKER_SA}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": WORKER_SA},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": WORKER_SA},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": WORKER_SA},
            "subjects": [{"kind": "ServiceAccount", "name": WORKER_SA, "namespace": namespace}],
        },
    )
    selector = real_node.placement["nodeSelector"]
    (toleration,) = real_node.placement["tolerations"]
    args = [
        "--worker-image",
        real_node.image,
        "--worker-image-pull-policy",
        "Never",
        "--worker-service-account",
        WORKER_SA,
        *(a for k, v in selector.items() for a in ("--worker-node-selector", f"{k}={v}")),
        "--worker-toleration",
        f"{toleration['key']}={toleration['value']}:{toleration['effect']}",
    ]
    return run_operator(extra_args=tuple(args))


def make_secret(core: client.CoreV1Api, namespace: str, name: str, data: dict[str, str]) -> None:
    core.create_namespaced_secret(namespace, {"metadata": {"name": name}, "stringData": data})


def make_rules(core: client.CoreV1Api, namespace: str, name: str, rules: dict[str, Any]) -> None:
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": name}, "data": {"rules.yaml": yaml.safe_dump(rules)}}
    )


@dataclass
class Seen:
    at: float  # time.monotonic() when the test received it
    wall: float  # time.time() then (to compare with the kubelet's log timestamps)
    type: str
    resource_version: int
    obj: Any


@dataclass
class Recorder:
    """Every version of one object the API server reports (a watch in a thread), until DELETED or stop()."""

    versions: list[Seen] = field(default_factory=list)
    deleted: threading.Event = field(default_factory=threading.Event)
    _watch: watch.Watch = field(default_factory=watch.Watch)
    _error: list[BaseException] = field(default_factory=list)

    def start(self, list_fn: Any, *args: Any, name: str, rv_of: Any) -> Recorder:
        def run() -> None:
            try:
                for event in self._watch.stream(
                    list_fn, *args, field_selector=f"metadata.name={name}", timeout_seconds=300
                ):
                    obj = event["object"]
                    self.versions.append(
                        Seen(time.monotonic(), time.time(), event["type"], int(rv_of(obj)), obj)
                    )
                    if event["type"] == "DELETED":
                        self.deleted.set()
                        self._watch.stop()
            except BaseException as exc:  # surfaced by check(); the stream is closed under us by stop()
                self._error.append(exc)

        threading.Thread(target=run, daemon=True).start()
        return self

    def stop(self) -> None:
        self._watch.stop()

    def check(self) -> None:
        if self._error:
            raise AssertionError(f"the watch failed: {self._error[0]!r}")

    def first(self, predicate: Any) -> Seen | None:
        return next((s for s in list(self.versions) if predicate(s)), None)


def watch_pod(core: client.CoreV1Api, namespace: str, name: str) -> Recorder:
    return Recorder().start(
        core.list_namespaced_pod, namespace, name=name, rv_of=lambda p: p.metadata.resource_version
    )


def watch_job(api: client.ApiClient, namespace: str, kind: str, name: str) -> Recorder:
    custom = client.CustomObjectsApi(api)
    return Recorder().start(
        custom.list_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        PLURALS[kind],
        name=name,
        rv_of=lambda o: o["metadata"]["resourceVersion"],
    )


def job_status(seen: Seen) -> dict[str, Any]:
    return seen.obj.get("status") or {}


def terminated_state(pod: client.V1Pod) -> client.V1ContainerStateTerminated | None:
    for status in (pod.status and pod.status.container_statuses) or []:
        if status.name == "worker" and status.state and status.state.terminated:
            return status.state.terminated
    return None


def pod_gone(jobs_: Jobs, job: str) -> bool:
    return jobs_.pod(job) is None


class LogStream:
    """`kubectl logs -f --timestamps` of a running pod in a thread: each line with the kubelet's wall time."""

    def __init__(self, kubeconfig: str, namespace: str, pod: str) -> None:
        self.lines: list[tuple[float, str]] = []
        argv = [kubectl_exe(), "--kubeconfig", kubeconfig, "-n", namespace, "logs", "-f", "--timestamps", pod]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            stamp, _, text = line.rstrip("\n").partition(" ")
            try:  # RFC 3339 with nanoseconds: keep microseconds
                head, _, frac = stamp.rstrip("Z").partition(".")
                wall = datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00").timestamp()
            except ValueError:
                continue
            self.lines.append((wall, text))

    def first(self, needle: str) -> float | None:
        return next((wall for wall, text in list(self.lines) if needle in text), None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=10)
