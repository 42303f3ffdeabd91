"""The operator's view of its jobs and worker pods, fed by watch events and its own writes."""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from typing import Any

from datajobs.core.observe import controller_uid, is_worker_of
from datajobs.core.report import ANNOTATION_RESULT
from datajobs.core.workerpod import ANNOTATION_PROGRESS, worker_pod_name

PodKey = tuple[str, str]  # (namespace, name)


def resource_version(body: dict[str, Any]) -> int:
    # resourceVersions are opaque by contract, but etcd-backed ones are increasing integers; comparing them
    # lets a newer object (from our own write) win over an older watch event that arrives later.
    try:
        return int(body["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


MAX_TOMBSTONES = 50_000
SHARED_STRING_MAX = 80  # longer strings (messages, results) are rarely repeated


def _compact(value: Any) -> Any:
    """The same JSON with its keys and short strings shared between objects: every decoded event brings its
    own copies of "lastTransitionTime", "RUNNING", the namespace, …; sharing them halves the bytes per job."""
    if isinstance(value, dict):
        return {sys.intern(k): _compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    if isinstance(value, str) and len(value) <= SHARED_STRING_MAX:
        return sys.intern(value)
    return value


JOB_METADATA = ("name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp")
POD_METADATA = (
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",  # a stuck stop: whether the grace-0 escalation is under way
    "finalizers",  # a stuck stop: what holds the pod
)
POD_ANNOTATIONS = (ANNOTATION_PROGRESS, ANNOTATION_RESULT)  # the worker's reports: all PodFacts reads
OWNER_FIELDS = ("apiVersion", "kind", "name", "uid", "controller")
MAX_SHARED_VALUES = 512


class _Shared:
    """One copy of each distinct value of a part that many objects hold alike (jobs made from one
    template, pods on one node): stored objects are never mutated, so equal parts can be one object.
    Least recently used first out: the values many objects share stay, the one-offs (a pod's status with
    its own timestamps) leave, so what this holds beyond the store is bounded by MAX_SHARED_VALUES texts."""

    def __init__(self) -> None:
        self._by_text: OrderedDict[str, Any] = OrderedDict()

    def __call__(self, value: Any) -> Any:
        text = json.dumps(value, sort_keys=True, separators=(",", ":"))
        shared = self._by_text.get(text)
        if shared is None:
            shared = self._by_text[text] = _compact(value)
            if len(self._by_text) > MAX_SHARED_VALUES:
                self._by_text.popitem(last=False)
        else:
            self._by_text.move_to_end(text)
        return shared


def _slim_job(body: dict[str, Any], share: _Shared, current: dict[str, Any] | None) -> dict[str, Any]:
    """Keep what decisions and pod builds read; labels, annotations, managedFields are most of the bytes.
    The spec (its pod template most of all) is shared with every job that has the same one."""
    meta = body.get("metadata") or {}
    slim = {k: _compact(v) for k, v in body.items() if k not in ("metadata", "spec")}
    slim["metadata"] = _compact({k: meta[k] for k in JOB_METADATA if k in meta})
    if "spec" in body:
        # a spec changes only with the generation: while it is the same, the one we hold is still it
        held = current.get("spec") if current is not None else None
        same = (
            held is not None
            and current is not None
            and current["metadata"].get("generation") == (meta.get("generation"))
        )
        slim["spec"] = held if same else share(body["spec"])
    return slim


def _slim_pod(body: dict[str, Any], share: _Shared) -> dict[str, Any]:
    """A worker pod reduced to what PodFacts reads (a pod's spec, with its env, is several KiB); the parts
    most pods have alike (spec, status) shared between them."""
    meta, spec, status = body.get("metadata") or {}, body.get("spec") or {}, body.get("status") or {}
    slim_meta = {k: meta[k] for k in POD_METADATA if k in meta}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in POD_ANNOTATIONS}
    if annotations:
        slim_meta["annotations"] = annotations
    owners = [{k: r[k] for k in OWNER_FIELDS if k in r} for r in meta.get("ownerReferences") or []]
    if owners:
        slim_meta["ownerReferences"] = owners
    slim_status: dict[str, Any] = {"phase": status.get("phase")}
    containers = [
        {"name": c.get("name"), "state": c.get("state")} for c in status.get("containerStatuses") or []
    ]
    if containers:
        slim_status["containerStatuses"] = containers
    unschedulable = [
        {k: c[k] for k in ("type", "status", "reason", "message") if k in c}
        for c in status.get("conditions") or []
        if c.get("type") == "PodScheduled" and c.get("status") == "False"
    ]
    if unschedulable:
        slim_status["conditions"] = unschedulable
    slim_spec = {
        "containers": [{"name": c.get("name")} for c in spec.get("containers") or []],
        "terminationGracePeriodSeconds": spec.get("terminationGracePeriodSeconds"),
        "nodeName": spec.get("nodeName"),
    }
    return {"metadata": _compact(slim_meta), "spec": share(slim_spec), "status": share(slim_status)}


class Store:
    """Latest known jobs (by uid) and pods (by namespace and name); stale versions never win.

    A pod is a job's worker only by identity (the job's namespace, the worker's name, a controller
    ownerReference to the job's uid: `worker()`), never by a label anyone can write."""

    def __init__(self) -> None:
        self.jobs: dict[str, tuple[str, dict[str, Any]]] = {}
        self.pods: dict[PodKey, dict[str, Any]] = {}
        self.gone_pods: dict[str, dict[str, Any]] = {}
        """A deleted worker's last state (its final report), by job uid, until the job has used it."""
        self._deleted_jobs: dict[str, int] = {}
        self._deleted_pods: dict[str, None] = {}  # insertion-ordered, pruned oldest first
        self._share = _Shared()

    def put_job(self, kind: str, body: dict[str, Any]) -> bool:
        uid, rv = body["metadata"]["uid"], resource_version(body)
        if uid in self._deleted_jobs and rv <= self._deleted_jobs[uid]:
            return False
        current = self.jobs.get(uid)
        if current is not None and resource_version(current[1]) >= rv:
            return False
        self.jobs[uid] = (kind, _slim_job(body, self._share, current[1] if current is not None else None))
        return True

    def drop_job(self, body: dict[str, Any]) -> None:
        uid = body["metadata"]["uid"]
        worker = self.worker(uid)
        if worker is not None:
            del self.pods[_key(worker)]
        self._deleted_jobs[uid] = resource_version(body)
        _prune(self._deleted_jobs)
        self.jobs.pop(uid, None)
        self.gone_pods.pop(uid, None)

    def put_pod(self, body: dict[str, Any]) -> str | None:
        """Store a pod; returns the uid of the job that controls it (None when nothing does), so that
        job is reconciled. Whether it really is that job's worker is `worker()`'s question."""
        meta = body["metadata"]
        owner = controller_uid(body)
        if meta["uid"] in self._deleted_pods:
            return owner
        key = _key(body)
        current = self.pods.get(key)
        if (
            current is None
            or current["metadata"]["uid"] != meta["uid"]
            or (resource_version(current) < resource_version(body))
        ):
            if owner and (current is None or current["metadata"]["uid"] != meta["uid"]):
                self.gone_pods.pop(owner, None)  # a new pod: the old one's report is history
            self.pods[key] = _slim_pod(body, self._share)
        return owner

    def drop_pod(self, body: dict[str, Any]) -> str | None:
        meta = body["metadata"]
        self._deleted_pods[meta["uid"]] = None
        _prune(self._deleted_pods)
        key = _key(body)
        current = self.pods.get(key)
        owner = controller_uid(body)
        if current is not None and current["metadata"]["uid"] == meta["uid"]:
            if owner and self.worker(owner) is current:
                # the DELETED event carries the pod's final state: a report the kubelet wrote just before
                # the delete may never have been seen as a change of its own
                newer = resource_version(body) >= resource_version(current)
                self.gone_pods[owner] = _slim_pod(body, self._share) if newer else current
            del self.pods[key]
        return owner

    def worker(self, job_uid: str) -> dict[str, Any] | None:
        """The job's worker: the pod under the worker's name in the job's namespace that the job controls."""
        entry = self.jobs.get(job_uid)
        if entry is None:
            return None
        meta = entry[1]["metadata"]
        if not meta.get("name"):
            return None
        pod = self.pods.get((meta.get("namespace") or "", worker_pod_name(meta["name"])))
        return pod if pod is not None and is_worker_of(pod, meta) else None

    # -- convergence on a (re)list ----------------------------------------------------------------------

    def vanished_jobs(
        self, kind: str, namespace: str | None, listed: set[str], list_rv: int
    ) -> list[dict[str, Any]]:
        """Jobs of `kind` (in `namespace`; None: any) a list at `list_rv` did not return although we hold no
        version newer than it: deleted while no watch was open, so no DELETED event will ever come."""
        return [
            body
            for uid, (k, body) in self.jobs.items()
            if k == kind
            and uid not in listed
            and (namespace is None or body["metadata"]["namespace"] == namespace)
            and resource_version(body) <= list_rv
        ]

    def vanished_pods(self, namespace: str | None, listed: set[str], list_rv: int) -> list[dict[str, Any]]:
        """Worker pods (by pod uid in `listed`) that a list at `list_rv` no longer returned, as above."""
        return [
            pod
            for pod in self.pods.values()
            if pod["metadata"]["uid"] not in listed
            and (namespace is None or pod["metadata"]["namespace"] == namespace)
            and resource_version(pod) <= list_rv
        ]


def _key(body: dict[str, Any]) -> PodKey:
    meta = body["metadata"]
    return (meta.get("namespace") or "", meta["name"])


def _prune(tombstones: dict[str, Any]) -> None:
    # A tombstone only matters while a stale event for that object may still arrive: seconds, not forever.
    while len(tombstones) > MAX_TOMBSTONES:
        del tombstones[next(iter(tombstones))]
