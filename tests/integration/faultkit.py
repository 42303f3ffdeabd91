"""Fault-injection support: a control plane of our own to crash, a kubelet and recorders that ride out
outages, leader Lease reads, and the final-state checks every fault test shares."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, watch
from operatorkit import GROUP, PLURALS, SPECS, TERMINAL, VERSION, Jobs

from datajobs.localcluster import ClusterError, LocalCluster, ensure_binaries
from datajobs.localcluster.crds import apply_crds, load_crd_files
from datajobs.localcluster.rest import Rest

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKER_SELECTOR = "app.kubernetes.io/managed-by=datajobs-operator"


class FaultCluster:
    """A control plane only the fault tests use (they kill its API server and etcd), with the CRDs."""

    def __init__(self, local: LocalCluster) -> None:
        self.local = local
        self.kubeconfig = str(local.kubeconfig)
        self.api = config.new_client_from_config(config_file=self.kubeconfig)

    def namespace(self, name: str) -> str:
        client.CoreV1Api(self.api).create_namespace(
            client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
        )
        return name

    def compact_etcd(self) -> int:
        """Compact etcd's history up to now (etcd's v3 HTTP gateway): a watch from an older resourceVersion
        can then only end in 410 Gone, so the watcher must list again. Returns the revision."""
        argv, _ = self.local._commands["etcd"]
        url = next(a.split("=", 1)[1] for a in argv if a.startswith("--listen-client-urls="))

        def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
            with urllib.request.urlopen(request, timeout=30) as resp:
                return dict(json.loads(resp.read()))

        revision = int(post("/v3/kv/range", {"key": base64.b64encode(b"/").decode()})["header"]["revision"])
        post("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    def restart(self, component: str, while_down: Any = None) -> float:
        """SIGKILL `component`, run `while_down()`, start it again; seconds until the API server was ready."""
        started = time.monotonic()
        self.local.kill_component(component)
        if while_down is not None:
            while_down()
        self.local.start_component(component)
        return time.monotonic() - started


@pytest.fixture(scope="module")
def fault_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    local = LocalCluster(
        tmp_path_factory.mktemp("fault-cluster"), ensure_binaries(), nodes=1, pods_per_node=2000
    )
    try:
        local.start()
    except ClusterError as exc:
        pytest.fail(f"the fault-injection control plane did not start: {exc}", pytrace=False)
    try:
        patient = Rest(local.server, local.pki, timeout=60.0)  # the shared machine may be busy
        apply_crds(patient, load_crd_files(REPO_ROOT / "crds"), field_manager="datajobs-tests", timeout=180.0)
        yield FaultCluster(local)
    finally:
        local.stop()


def tolerant(call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call(...)`, or None while the API server is away (the fault tests' own clients must ride it out)."""
    try:
        return call(*args, **kwargs)
    except Exception:  # urllib3 connection errors, 5xx while etcd is down, …
        return None


class ToughKubelet(threading.Thread):
    """Plays the kubelet like operatorkit.Kubelet (finishes Running worker pods, exit 0), through outages."""

    def __init__(self, jobs: Jobs, keep_running: set[str] | None = None) -> None:
        super().__init__(daemon=True)
        self.jobs = jobs
        self.keep_running = keep_running if keep_running is not None else set()
        self.finished: set[str] = set()
        self._halt = threading.Event()

    def __enter__(self) -> ToughKubelet:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._halt.set()
        self.join(timeout=30)

    def run(self) -> None:
        while not self._halt.is_set():
            for pod in tolerant(self.jobs.pods) or []:
                job = pod.metadata.labels.get("datajobs.io/job", "")
                if (
                    pod.status.phase == "Running"
                    and not pod.metadata.deletion_timestamp
                    and job not in self.keep_running
                    and pod.metadata.uid not in self.finished
                ):
                    try:
                        self.jobs.finish_pod(job, 0)
                        self.finished.add(pod.metadata.uid)
                    except Exception:  # deleted meanwhile, or the API server is away: next pass
                        pass
            self._halt.wait(0.05)


class Recorder(threading.Thread):
    """Watches one namespace's jobs (both kinds) and worker pods through outages (resuming from the last
    resourceVersion, relisting on 410) and records the most jobs RUNNING at once per kind and every pod
    uid each job ever had."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        super().__init__(daemon=True)
        self.custom, self.core, self.ns = client.CustomObjectsApi(api), client.CoreV1Api(api), namespace
        self.running: dict[str, set[str]] = defaultdict(set)
        self.max_running: Counter[str] = Counter()
        self.pods_of: dict[str, set[str]] = defaultdict(set)  # job uid -> worker pod uids
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._loop, args=(kind,), daemon=True) for kind in [*PLURALS, "Pod"]
        ]

    def __enter__(self) -> Recorder:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._halt.set()

    def _list(self, kind: str, **kw: Any) -> Any:
        if kind == "Pod":
            return self.core.list_namespaced_pod(self.ns, label_selector=WORKER_SELECTOR, **kw)
        return self.custom.list_namespaced_custom_object(GROUP, VERSION, self.ns, PLURALS[kind], **kw)

    def _loop(self, kind: str) -> None:
        rv: str | None = None
        while not self._halt.is_set():
            try:
                if rv is None:
                    listing = self._list(kind)
                    items = listing.items if kind == "Pod" else listing["items"]
                    for item in items:
                        self._see(kind, "ADDED", item)
                    rv = (
                        listing.metadata.resource_version
                        if kind == "Pod"
                        else listing["metadata"]["resourceVersion"]
                    )
                w = watch.Watch()
                for event in w.stream(
                    self._list_fn(kind), **self._watch_args(kind), resource_version=rv, timeout_seconds=30
                ):
                    if self._halt.is_set():
                        w.stop()
                        return
                    obj = event["object"]
                    rv = (
                        obj.metadata.resource_version if kind == "Pod" else obj["metadata"]["resourceVersion"]
                    )
                    self._see(kind, event["type"], obj)
            except client.ApiException as exc:
                if exc.status == 410:
                    rv = None
                self._halt.wait(0.2)
            except Exception:  # the API server is away: try again
                self._halt.wait(0.2)

    def _list_fn(self, kind: str) -> Any:
        if kind == "Pod":
            return self.core.list_namespaced_pod
        return self.custom.list_namespaced_custom_object

    def _watch_args(self, kind: str) -> dict[str, Any]:
        if kind == "Pod":
            return {"namespace": self.ns, "label_selector": WORKER_SELECTOR}
        return {"group": GROUP, "version": VERSION, "namespace": self.ns, "plural": PLURALS[kind]}

    def _see(self, kind: str, event_type: str, obj: Any) -> None:
        with self._lock:
            if kind == "Pod":
                job_uid = (obj.metadata.labels or {}).get("datajobs.io/job-uid")
                if job_uid:
                    self.pods_of[job_uid].add(obj.metadata.uid)
                return
            uid = obj["metadata"]["uid"]
            if event_type != "DELETED" and (obj.get("status") or {}).get("status") == "RUNNING":
                self.running[kind].add(uid)
            else:
                self.running[kind].discard(uid)
            self.max_running[kind] = max(self.max_running[kind], len(self.running[kind]))


def lease_holder(api: client.ApiClient, namespace: str) -> str | None:
    lease = tolerant(client.CoordinationV1Api(api).read_namespaced_lease, "datajobs-operator", namespace)
    return None if lease is None else lease.spec.holder_identity


def create_burst(jobs: Jobs, names: list[tuple[str, str]]) -> None:
    for kind, name in names:
        spec = SPECS[kind](job_id=len(name)) if kind == "MaskingExecution" else SPECS[kind]()
        jobs.create(kind, name, spec)


def all_final(jobs: Jobs, names: list[tuple[str, str]]) -> list[tuple[str, dict[str, Any]]] | None:
    items = [(kind, tolerant(jobs.get, kind, name)) for kind, name in names]
    if all(j is not None and (j.get("status") or {}).get("status") in TERMINAL for _, j in items):
        return items  # type: ignore[return-value]
    return None


def assert_correct_final_state(
    jobs: Jobs, items: list[tuple[str, dict[str, Any]]], cancelled: set[str], recorder: Recorder | None = None
) -> None:
    """Each job ended as expected; at most one pod per job (ever, if recorded), none orphaned, none left for
    a cancelled job; executionIds unique."""
    by_name = {j["metadata"]["name"]: j for _, j in items}
    for name, job in by_name.items():
        expected = "CANCELLED" if name in cancelled else "SUCCEEDED"
        assert job["status"]["status"] == expected, (name, job["status"])
    uids = {j["metadata"]["uid"] for j in by_name.values()}
    pods = jobs.pods()
    per_job = Counter(p.metadata.labels["datajobs.io/job-uid"] for p in pods)
    assert all(n == 1 for n in per_job.values()), per_job  # no duplicate pods
    assert set(per_job) <= uids, set(per_job) - uids  # no orphaned pods
    for name in cancelled:
        assert jobs.pod(name) is None, name
    if recorder is not None:
        doubled = {uid: pods for uid, pods in recorder.pods_of.items() if len(pods) > 1}
        assert not doubled, f"jobs dispatched more than once: {doubled}"
    ids = [j["status"]["executionId"] for j in by_name.values() if j["kind"] == "MaskingExecution"]
    assert len(ids) == len(set(ids)), ids  # no executionId reused
