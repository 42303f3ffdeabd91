"""The engine: keeps the store, grants queue slots, and runs reconciles that apply the core's decisions."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from datajobs.controller import metrics
from datajobs.controller.apisession import CONNECTION_ERRORS, ApiError, Conflict, Gone
from datajobs.controller.config import OperatorConfig, namespace_share
from datajobs.controller.counter import ExecutionIds
from datajobs.controller.faults import crash_point
from datajobs.controller.kubeio import KubeIO, NotOurPod
from datajobs.controller.podwatch import PodInformer
from datajobs.controller.store import Store
from datajobs.controller.workqueue import WorkQueue
from datajobs.core.actions import Action, DeleteJob, KeepLogs
from datajobs.core.backoff import Backoff
from datajobs.core.conditions import CANCEL_STUCK, get_condition
from datajobs.core.keptlogs import LOG_LIMIT_BYTES, LOG_TAIL_LINES, MAX_CONTAINERS, kept_logs_configmap
from datajobs.core.lifecycle import (
    CreatePod,
    Decision,
    DeletePod,
    Emit,
    JobFacts,
    PodFacts,
    Recheck,
    create_retry_seconds,
    decide,
    status_refused,
    worker_name_taken,
    worker_refused,
    worker_rejected,
)
from datajobs.core.observe import controller_uid, is_worker_of, pod_facts, queue_slot, sort_key
from datajobs.core.queue import DispatchQueue, Slot
from datajobs.core.shapes import SHAPES
from datajobs.core.workerpod import MANAGED_BY, WORKER_POD_SELECTOR, WorkerDefaults, build_worker_pod
from datajobs.models.kinds import KINDS, MASKING_EXECUTION

log = logging.getLogger("datajobs.operator")
# a stopped pod's job is reconciled again once its grace is over (plus this margin)
GONE_CHECK_MARGIN_SECONDS = 5.0
KEEP_LOGS_TIMEOUT_SECONDS = 5.0  # a stop waits at most this long for the worker's log to be read
# kopf delivers a (re)list as a burst of events without a type; our own list follows once they stop
RELIST_QUIET_SECONDS = 1.0
RELIST_MAX_DELAY_SECONDS = 10.0
RELIST_RETRY = Backoff(base=1.0, cap=30.0)


RFC3339_MICRO = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime(RFC3339_MICRO)


class Engine:
    """One per operator process. kopf handlers feed it job events and its own informer pod events; its
    workers reconcile one job at a time."""

    def __init__(self, io: KubeIO, config: OperatorConfig) -> None:
        self.io = io
        self.config = config
        self.store = Store()
        self.work = WorkQueue()
        self.queues = {
            k.kind: DispatchQueue(
                config.max_running, namespace_share(config.max_running, config.max_running_per_namespace)
            )
            for k in KINDS
        }
        self.ids = ExecutionIds(io, config.state_namespace)
        self.defaults = WorkerDefaults(
            image=config.worker_image,
            image_pull_policy=config.worker_image_pull_policy,
            service_account=config.worker_service_account,
            node_selector=config.worker_node_selector,
            tolerations=config.worker_tolerations,
        )
        if config.worker_resources is not None:
            self.defaults = replace(self.defaults, resources=config.worker_resources)
        self._tasks: list[asyncio.Task[None]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._side_tasks: set[asyncio.Task[None]] = set()
        self._events = asyncio.Semaphore(16)
        self._first_seen: dict[str, float] = {}
        # uid -> first sight of a job with no status yet: its submit time once written, and its queue place
        self._submitted: dict[str, str] = {}
        self._last_submit = datetime.min.replace(tzinfo=UTC)
        self._cancel_seen: dict[str, tuple[int, float]] = {}
        # pod uid -> when its deletion should be over (monotonic): ours to delete, until its event shows it
        self._stop_requested: dict[str, float] = {}
        # job uid -> (refused creates of its worker so far, when the next may be tried: monotonic)
        self._create_backoff: dict[str, tuple[int, float]] = {}
        self.synced = False
        self.leading = False
        # only the leader acts: checked before every write, so a replica that lost its Lease stops at once
        self.may_act: Callable[[], bool] = lambda: True
        self._relist_wanted = asyncio.Event()
        self._relist_lock = asyncio.Lock()
        self._pods_listed_at: dict[str | None, str] = {}  # namespace -> the last pod list's resourceVersion
        self._instance = socket.gethostname()

    # -- lifecycle of the engine -------------------------------------------------------------------------

    async def start(self) -> None:
        """List every job and worker pod (so decisions never see half a cluster) and keep the view converged:
        every later (re)list replaces it. A standby stops here; `lead()` starts acting."""
        await self.relist()
        self._tasks.append(asyncio.create_task(self._relister(), name="relist"))
        for namespace in self.config.namespaces or (None,):
            informer = PodInformer(self.io, namespace, WORKER_POD_SELECTOR, self.relist_pods, self.pod_event)
            watch = informer.run(self._pods_listed_at[namespace])
            self._tasks.append(asyncio.create_task(watch, name=f"pod-watch-{namespace or 'all'}"))
        self.synced = True
        log.info("engine started: %d jobs, %d worker pods", len(self.store.jobs), len(self.store.pods))

    async def lead(self) -> None:
        """Start acting (dispatch, cancel, status writes) on a view listed after leadership was won."""
        await self.relist()
        self._workers = [
            asyncio.create_task(self._worker(), name=f"reconcile-{i}")
            for i in range(self.config.reconcile_workers)
        ]
        self.leading = True
        log.info("engine acting: %d jobs, %d worker pods", len(self.store.jobs), len(self.store.pods))

    def pause(self) -> None:
        """Stop acting at once (leadership lost); the view stays current, `lead()` resumes. A reconcile
        cut short is repaired like one cut by a crash: every step is idempotent."""
        for task in self._workers:
            task.cancel()
        self._workers = []
        self.leading = False

    async def relist(self) -> None:
        """List jobs and worker pods (paginated) and make the store exactly that: what the list returns is
        stored, what we hold and it no longer returns (deleted while no watch was open) is dropped."""
        async with self._relist_lock:
            for namespace in self.config.namespaces or (None,):
                await self._relist_namespace(namespace)
            for uid in list(self.store.jobs):
                self.work.add(uid, background=True)
            for kind in KINDS:
                self._schedule(kind.kind)
            metrics.RELISTS.inc()

    async def relist_pods(self, namespace: str | None) -> str:
        """List the worker pods again (the pod watch's revision expired); the list's resourceVersion."""
        async with self._relist_lock:
            listed = await self._list_pods(namespace)
        metrics.RELISTS.inc()
        return listed

    async def _list_pods(self, namespace: str | None) -> str:
        # page by page: a relist of 20,000 pods never holds them all decoded at once
        pod_uids: set[str] = set()
        pods_rv = ""
        async for pods, page_rv in self.io.pod_pages(namespace, WORKER_POD_SELECTOR):
            pods_rv = page_rv
            for pod in pods:
                self._pod_event(None, pod, background=True)
                pod_uids.add(pod["metadata"]["uid"])
        for pod in self.store.vanished_pods(namespace, pod_uids, _int(pods_rv)):
            log.info("worker pod %s/%s was deleted while unwatched", *_ns_name(pod))
            self._pod_event("DELETED", pod)
        self._pods_listed_at[namespace] = pods_rv
        return pods_rv

    async def _relist_namespace(self, namespace: str | None) -> None:
        await self._list_pods(namespace)
        # page by page: a relist of 20,000 jobs never holds them all decoded at once
        unseen: list[tuple[str, dict[str, Any]]] = []  # jobs never given a status: their order is FIFO's
        versions: dict[str, tuple[set[str], str]] = {}
        for kind in KINDS:
            uids: set[str] = set()
            rv = ""
            async for items, page_rv in self.io.job_pages(kind.kind, namespace):
                rv = page_rv
                for item in items:
                    item.setdefault("apiVersion", kind.api_version)
                    item.setdefault("kind", kind.kind)
                    uids.add(item["metadata"]["uid"])
                    if (item.get("status") or {}).get(SHAPES[kind.kind].submitted):
                        self._observe_job(kind.kind, item, schedule=False)
                    else:
                        unseen.append((kind.kind, item))
            versions[kind.kind] = (uids, rv)
        # jobs submitted while we were away get their submit times in creation order, not list order
        unseen.sort(key=lambda e: (e[1]["metadata"].get("creationTimestamp") or "", e[1]["metadata"]["name"]))
        for kind_name, item in unseen:
            self._observe_job(kind_name, item, schedule=False)
        for kind_name, (uids, rv) in versions.items():
            for body in self.store.vanished_jobs(kind_name, namespace, uids, _int(rv)):
                log.info("%s %s/%s was deleted while unwatched", kind_name, *_ns_name(body))
                self._job_event(kind_name, "DELETED", body)

    def want_relist(self) -> None:
        """Ask for a relist soon (the API server came back, or kopf's watch listed again)."""
        self._relist_wanted.set()

    async def _relister(self) -> None:
        """Relist when asked (debounced: after kopf's own list is delivered) and every resync period."""
        failures = 0
        while True:
            try:
                await asyncio.wait_for(self._relist_wanted.wait(), timeout=self.config.resync_seconds)
            except TimeoutError:
                pass
            waited = 0.0
            while waited < RELIST_MAX_DELAY_SECONDS:
                self._relist_wanted.clear()
                await asyncio.sleep(RELIST_QUIET_SECONDS)
                waited += RELIST_QUIET_SECONDS
                if not self._relist_wanted.is_set():
                    break
            try:
                await self.relist()
                failures = 0
            except Exception as exc:  # the API server busy or away: try again
                delay = RELIST_RETRY.delay(failures)
                failures += 1
                log.warning("relisting jobs and pods failed, retrying in %.1fs: %s", delay, exc)
                await asyncio.sleep(delay)
                self._relist_wanted.set()

    async def stop(self) -> None:
        tasks = self._tasks + self._workers + list(self._side_tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- events in -----------------------------------------------------------------------------------------

    def job_event(self, kind: str, event_type: str | None, body: dict[str, Any]) -> None:
        """A watch event from kopf; one without a type after our start means kopf listed again."""
        if event_type is None and self.synced:
            self.want_relist()
        self._job_event(kind, event_type, body)

    def pod_event(self, event_type: str, body: dict[str, Any]) -> None:
        """A watch event from the engine's own pod informer (its lists come through relist_pods)."""
        self._pod_event(event_type, body)

    def _job_event(self, kind: str, event_type: str | None, body: dict[str, Any]) -> None:
        uid = body["metadata"]["uid"]
        if event_type == "DELETED":
            self.store.drop_job(body)
            self.queues[kind].observe(uid, body["metadata"]["namespace"], Slot.NONE)
            self._first_seen.pop(uid, None)
            self._submitted.pop(uid, None)
            self._cancel_seen.pop(uid, None)
            self._create_backoff.pop(uid, None)
            self._schedule(kind)
            return
        self._observe_job(kind, body)
        self.work.add(uid, background=event_type is None)  # kopf's (re)list: nothing happened to it

    def _pod_event(self, event_type: str | None, body: dict[str, Any], background: bool = False) -> None:
        if event_type == "DELETED":
            self._stop_requested.pop(body["metadata"]["uid"], None)
        job_uid = self.store.drop_pod(body) if event_type == "DELETED" else self.store.put_pod(body)
        if job_uid and job_uid in self.store.jobs:
            self.work.add(job_uid, background=background)

    def _observe_job(self, kind: str, body: dict[str, Any], schedule: bool = True) -> None:
        if not self.store.put_job(kind, body):
            return
        meta, status = body["metadata"], body.get("status") or {}
        self._first_seen.setdefault(meta["uid"], time.monotonic())
        if isinstance(status.get("executionId"), int):
            self.ids.raise_floor(status["executionId"])
        slot = queue_slot(body)
        self.queues[kind].observe(
            meta["uid"], meta["namespace"], slot, sort_key(body, self._submit_time(kind, body))
        )
        if slot is Slot.NONE:
            self._first_seen.pop(meta["uid"], None)
        if schedule:
            self._schedule(kind)

    def _submit_time(self, kind: str, body: dict[str, Any]) -> str:
        """The recorded submit time, else our first sight of the job (strictly increasing: FIFO is exact)."""
        uid = body["metadata"]["uid"]
        recorded = (body.get("status") or {}).get(SHAPES[kind].submitted)
        if recorded:
            self._submitted.pop(uid, None)
            return str(recorded)
        stamp = self._submitted.get(uid)
        if stamp is None:
            now = max(datetime.now(UTC), self._last_submit + timedelta(microseconds=1))
            self._last_submit = now
            stamp = self._submitted[uid] = now.strftime(RFC3339_MICRO)
        return stamp

    def _schedule(self, kind: str) -> None:
        for uid in self.queues[kind].grant():
            self.work.add(uid)

    # -- reconcile ---------------------------------------------------------------------------------------

    async def _worker(self) -> None:
        while True:
            uid = cast(str, await self.work.get())  # the queue holds job uids
            try:
                await self.reconcile(uid)
                self.work.forget(uid)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = self.store.jobs.get(uid, ("unknown",))[0]
                metrics.RECONCILE_ERRORS.labels(kind=kind).inc()
                delay = self.work.add_rate_limited(uid)
                log.warning(
                    "reconcile of job uid=%s failed, retrying in %.1fs: %s", uid, delay, exc, exc_info=exc
                )
            finally:
                self.work.done(uid)

    async def _recheck_pod(self, pod: dict[str, Any]) -> bool:
        """Ask the API server about one pod (e.g. another took our worker's name); True when ours is gone
        (and dropped, its job reconciled), False when it still exists (our view refreshed)."""
        meta = pod["metadata"]
        try:
            fresh = await self.io.get_pod(meta["namespace"], meta["name"])
        except Gone:
            self._pod_event("DELETED", pod)
            return True
        if fresh["metadata"]["uid"] != meta["uid"]:  # deleted, and a pod of the same name made since
            self._pod_event("DELETED", pod)
            self._pod_event("MODIFIED", fresh)
            return True
        self._pod_event("MODIFIED", fresh)
        return False

    async def reconcile(self, uid: str) -> None:
        entry = self.store.jobs.get(uid)
        if entry is None or not self.may_act():
            return
        kind, body = entry
        meta, status = body["metadata"], body.get("status")
        execution_id = None
        if kind == MASKING_EXECUTION.kind and not (status or {}).get("status"):
            execution_id = await self.ids.next()
        facts = JobFacts(
            kind=kind,
            meta=meta,
            spec=body.get("spec") or {},
            status=status,
            pod=self._pod_facts(uid),
            may_dispatch=self.queues[kind].is_granted(uid),
            now=now_rfc3339(),
            execution_id=execution_id,
            submitted=self._submitted.get(uid),
            start_deadline_seconds=self.config.worker_start_deadline_seconds,
            gone_pod=pod_facts(self.store.gone_pods.get(uid)),
            active_deadline_seconds=self.config.active_deadline_seconds,
            ttl_seconds_after_finished=self.config.ttl_seconds_after_finished,
        )
        self._note_cancel(facts)
        decision = decide(facts)
        if any(isinstance(a, CreatePod) and a.first for a in decision.actions):
            decision = await self._create_first(kind, body, facts, decision)
        for keep in (a for a in decision.actions if isinstance(a, KeepLogs)):
            await self._keep_logs(body, keep)  # before the status write: who reads FAILED finds the log kept
        written = await self._write(kind, body, decision)
        if written is None or not self.may_act():
            return
        body = written
        if queue_slot(body) is Slot.NONE:
            self.store.gone_pods.pop(uid, None)  # finished: the gone worker's report is in the status now
        for action in decision.actions:
            if isinstance(action, CreatePod):
                if action.first or self._create_held_back(uid):
                    continue  # (created before the status write)
                crash_point("before-create-pod")
                follow = await self._create_pod(kind, body, facts)
                if follow is not None:
                    await self._apply(kind, body, follow)
            elif isinstance(action, DeletePod):
                crash_point("before-stop-pod")
                mode = "graceful" if action.graceful else "immediate"
                try:
                    await self.io.stop_pod(
                        meta["namespace"], action.name, action.uid, mode, action.grace_seconds
                    )
                except NotOurPod as exc:  # another pod took the name since we saw ours: leave it be
                    log.warning("not stopping %s/%s: %s", meta["namespace"], action.name, exc)
                    pod = self.store.worker(uid)
                    if pod is not None:
                        await self._recheck_pod(pod)
                    self.work.add(uid)
                    continue
                self._stop_requested[action.uid] = time.monotonic() + action.grace_seconds
                self.work.add_after(uid, action.grace_seconds + GONE_CHECK_MARGIN_SECONDS)
                self._observe_cancel_latency(kind, uid, "delete_requested")
            elif isinstance(action, Emit):
                self._emit(body, action)
            elif isinstance(action, Recheck):
                self.work.add_after(uid, action.after_seconds)
            elif isinstance(action, DeleteJob):
                await self._delete_job(kind, body)

    async def _keep_logs(self, body: dict[str, Any], action: KeepLogs) -> None:
        """Copy the tail of each container's log into the job's `<job>-worker-log` ConfigMap before the
        pod may go. Best effort: a log the API server cannot give is noted there, and nothing here ever
        holds up a stop. The first copy of a job's worker wins (a second create finds it: 409)."""
        meta = body["metadata"]
        pod = self.store.worker(meta["uid"]) or {}
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or [] if c.get("name")]
        logs: dict[str, str] = {}
        for container in names[:MAX_CONTAINERS] or ["worker"]:
            try:
                logs[container] = await asyncio.wait_for(
                    self.io.pod_log(
                        meta["namespace"], action.pod_name, container, LOG_TAIL_LINES, LOG_LIMIT_BYTES
                    ),
                    KEEP_LOGS_TIMEOUT_SECONDS,
                )
            except (ApiError, *CONNECTION_ERRORS) as exc:
                why = f"HTTP {exc.status}: {exc.message}" if isinstance(exc, ApiError) else type(exc).__name__
                logs[container] = f"(the log of container {container} was not available: {why})"
        configmap = kept_logs_configmap(
            body, action.pod_name, action.pod_uid, action.why, logs, now_rfc3339()
        )
        try:
            await self.io.create_configmap(meta["namespace"], configmap)
        except Conflict:
            log.debug("logs of %s/%s kept already", meta["namespace"], action.pod_name)
        except ApiError as exc:
            log.warning(
                "could not keep the log of %s/%s: HTTP %s %s",
                meta["namespace"],
                action.pod_name,
                exc.status,
                exc.message,
            )

    async def _delete_job(self, kind: str, body: dict[str, Any]) -> None:
        """A finished job's ttlSecondsAfterFinished is over: delete it (only this uid); the garbage
        collector removes what it owns (its worker pod, its kept logs)."""
        meta = body["metadata"]
        log.info(
            "deleting finished job %s/%s kind=%s (ttlSecondsAfterFinished)",
            meta["namespace"],
            meta["name"],
            kind,
        )
        try:
            await self.io.delete_job(kind, meta["namespace"], meta["name"], meta["uid"])
        except Gone:
            pass
        except ApiError as exc:
            if exc.status != 409:  # 409: another object took the name since; not ours to delete
                raise

    async def _apply(self, kind: str, body: dict[str, Any], decision: Decision) -> None:
        """Write a status-only decision and post its Events (no pod actions)."""
        written = await self._write(kind, body, decision)
        if written is not None:
            for action in decision.actions:
                if isinstance(action, Emit):
                    self._emit(written, action)

    def _pod_facts(self, uid: str) -> PodFacts | None:
        pod = self.store.worker(uid)
        facts = pod_facts(pod)
        if facts is not None and pod is not None and not facts.deleting:
            if pod["metadata"]["uid"] in self._stop_requested:
                facts = replace(facts, deleting=True)  # our delete is in flight; don't send another
        return facts

    async def _write(
        self, kind: str, body: dict[str, Any], decision: Decision, last_resort: bool = False
    ) -> dict[str, Any] | None:
        """Write the decided status (if any) at the resourceVersion it was decided on; None if stale."""
        if decision.status is None:
            return body
        if not self.may_act():
            return None
        meta = body["metadata"]
        before = (body.get("status") or {}).get("status")
        if decision.status.get("status") == "CANCELLED" and before == "RUNNING":
            crash_point("before-cancelled-write")
        try:
            written = await self.io.write_status(kind, body, decision.status)
        except Conflict:
            metrics.STATUS_WRITES.labels(kind=kind, result="conflict").inc()
            try:
                fresh = await self.io.get_job(kind, meta["namespace"], meta["name"])
            except Gone:
                self._job_event(kind, "DELETED", body)
                return None
            self._observe_job(kind, fresh)
            self.work.add(meta["uid"])
            return None
        except Gone:
            self._job_event(kind, "DELETED", body)
            return None
        except ApiError as exc:
            if exc.status not in (400, 422):
                raise  # the API server busy, …: worth retrying
            metrics.STATUS_WRITES.labels(kind=kind, result="refused").inc()
            await self._status_refused(kind, body, exc, last_resort)
            return None
        metrics.STATUS_WRITES.labels(kind=kind, result="ok").inc()
        after = decision.status["status"]
        if before != after:
            log.info(
                "job %s/%s kind=%s status %s -> %s",
                meta["namespace"],
                meta["name"],
                kind,
                before or "(new)",
                after,
                extra={
                    "job": f"{meta['namespace']}/{meta['name']}",
                    "kind": kind,
                    "uid": meta["uid"],
                    "from_status": before,
                    "to_status": after,
                },
            )
            if after == "CANCELLED":
                self._observe_cancel_latency(kind, meta["uid"], "cancelled")
        self._observe_job(kind, written)
        return written

    async def _status_refused(
        self, kind: str, body: dict[str, Any], exc: ApiError, last_resort: bool
    ) -> None:
        """The API server refused a status as invalid: retrying the same write would loop forever. Fail
        the job with the reason instead (its last good status kept); if even that is refused, say so in a
        Warning Event and the log, and leave the job for a person."""
        meta = body["metadata"]
        reason = f"HTTP {exc.status}: {exc.message}"
        log.error("status of %s/%s refused by the API server: %s", meta["namespace"], meta["name"], reason)
        facts = JobFacts(kind, meta, body.get("spec") or {}, body.get("status"), None, False, now_rfc3339())
        if last_resort:  # the FAILED status itself was refused
            self._emit(
                body, Emit("StatusWriteRefused", f"the job's status cannot be written: {reason}", True)
            )
            return
        fallback = status_refused(facts, reason)
        written = await self._write(kind, body, fallback, last_resort=True)
        if written is not None:
            for action in fallback.actions:
                if isinstance(action, Emit):
                    self._emit(written, action)

    async def _create_first(
        self, kind: str, body: dict[str, Any], facts: JobFacts, decision: Decision
    ) -> Decision:
        """Create the worker of a job being dispatched, then decide its status once more with the pod
        seen: the one status write records both the dispatch and the pod (or why there is none)."""
        decided = {**body, "status": decision.status}  # what the pod is built from; not written yet
        others: list[Action] = [a for a in decision.actions if not isinstance(a, CreatePod)]
        if not self.may_act():  # (leadership lost since the reconcile began: nothing is written either)
            return Decision(status=None)
        crash_point("before-create-pod")
        follow = await self._create_pod(kind, decided, facts)
        if follow is None:  # created (or ours from before): the pod as created is what the status tells
            crash_point("before-dispatch-write")
            pod = self.store.worker(body["metadata"]["uid"])
            seen = decide(replace(facts, status=decision.status, pod=pod_facts(pod), may_dispatch=False))
            follow = seen
        return Decision(status=follow.status or decision.status, actions=others + follow.actions)

    async def _create_pod(self, kind: str, body: dict[str, Any], facts: JobFacts) -> Decision | None:
        """Create the job's worker pod from `body`; None when it exists (created, or ours from before),
        else the decision that tells why not (refused, rejected, name taken: a retry is scheduled)."""
        pod = build_worker_pod(kind, body, self.defaults)
        try:
            created = await self.io.create_pod(pod)
            if created is None:  # the name is taken: ours from before a crash, or someone else's pod
                created = await self.io.get_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])
                if not is_worker_of(created, body["metadata"]):
                    return self._name_taken(kind, body, facts, created)
            # The watch event comes later; until then a cancel must not take "no pod seen" for "pod gone".
            self.store.put_pod(created)
        except ApiError as exc:
            if exc.status == 403:  # a quota or an admission policy: visible on the job, retried with backoff
                delay = self._retry_after(body["metadata"]["uid"])
                log.warning(
                    "worker pod of %s/%s refused (HTTP 403), trying again in %.0f s: %s",
                    facts.meta["namespace"],
                    facts.meta["name"],
                    delay,
                    exc.message,
                )
                self.work.add_after(body["metadata"]["uid"], delay)
                return worker_refused(_facts_of(kind, body, facts), exc.message)
            if exc.status not in (400, 422):
                raise  # the API server busy, …: worth retrying
            reason = f"HTTP {exc.status}: {exc.message}"
            log.warning(
                "worker pod of %s/%s rejected: %s", facts.meta["namespace"], facts.meta["name"], reason
            )
            return worker_rejected(_facts_of(kind, body, facts), reason)
        self._create_backoff.pop(body["metadata"]["uid"], None)
        started = self._first_seen.get(body["metadata"]["uid"])
        if started is not None:
            metrics.DISPATCH_LATENCY.labels(kind=kind).observe(time.monotonic() - started)
        return None

    def _retry_after(self, uid: str) -> float:
        """Back off after a refused create: the next one waits 2, 4, 8, … s, whatever events come."""
        attempt = self._create_backoff.get(uid, (0, 0.0))[0]
        delay = create_retry_seconds(attempt)
        self._create_backoff[uid] = (attempt + 1, time.monotonic() + delay)
        return delay

    def _create_held_back(self, uid: str) -> bool:
        """True (and a reconcile scheduled for then) while a refused create's backoff lasts."""
        backoff = self._create_backoff.get(uid)
        if backoff is None:
            return False
        wait = backoff[1] - time.monotonic()
        if wait > 0:
            self.work.add_after(uid, wait)
            return True
        return False

    def _name_taken(
        self, kind: str, body: dict[str, Any], facts: JobFacts, squatter: dict[str, Any]
    ) -> Decision:
        """A pod that is not this job's worker holds the worker's name: report it, never adopt or delete it,
        and try again later (its owner may remove it; the start deadline bounds the wait)."""
        meta = squatter["metadata"]
        owner = controller_uid(squatter)
        log.warning(
            "worker pod name %s/%s is taken by a pod this job does not own (uid %s, controller %s)",
            meta["namespace"],
            meta["name"],
            meta.get("uid"),
            owner or "none",
        )
        self.work.add_after(body["metadata"]["uid"], self._retry_after(body["metadata"]["uid"]))
        return worker_name_taken(_facts_of(kind, body, facts), meta["name"], owner)

    # -- observability -----------------------------------------------------------------------------------

    def _note_cancel(self, facts: JobFacts) -> None:
        if facts.spec.get("cancelRequested") is None:
            return
        generation = int(facts.meta.get("generation") or 1)
        seen = self._cancel_seen.get(facts.meta["uid"])
        if seen is None or seen[0] != generation:
            self._cancel_seen[facts.meta["uid"]] = (generation, time.monotonic())

    def _observe_cancel_latency(self, kind: str, uid: str, phase: str) -> None:
        seen = self._cancel_seen.get(uid)
        if seen is not None:
            metrics.CANCEL_LATENCY.labels(kind=kind, phase=phase).observe(time.monotonic() - seen[1])

    def _emit(self, body: dict[str, Any], action: Emit) -> None:
        meta = body["metadata"]
        now = now_rfc3339()
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": body.get("apiVersion"),
                "kind": body.get("kind"),
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": action.reason,
            "message": action.message[:1024],
            "type": "Warning" if action.warning else "Normal",
            "source": {"component": MANAGED_BY},
            "reportingComponent": MANAGED_BY,
            "reportingInstance": self._instance,
            "firstTimestamp": now[:19] + "Z",
            "lastTimestamp": now[:19] + "Z",
            "count": 1,
        }
        task = asyncio.create_task(self._post_event(event))
        self._side_tasks.add(task)
        task.add_done_callback(self._side_tasks.discard)

    async def _post_event(self, event: dict[str, Any]) -> None:
        async with self._events:
            try:
                await self.io.create_event(event)
            except Exception as exc:  # events are best effort: never fail a transition for one
                log.debug("event %s not posted: %s", event["reason"], exc)

    def stuck_counts(self) -> dict[str, int]:
        """Jobs per kind whose stopped worker outlived its grace (CancelStuck=True)."""
        result = {k.kind: 0 for k in KINDS}
        for kind, body in self.store.jobs.values():
            cond = get_condition(body.get("status"), CANCEL_STUCK)
            if cond is not None and cond.get("status") == "True":
                result[kind] += 1
        return result

    def counts(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {k.kind: {} for k in KINDS}
        for kind, body in self.store.jobs.values():
            value = (body.get("status") or {}).get("status") or "PENDING"
            result[kind][value] = result[kind].get(value, 0) + 1
        return result


def _int(resource_version: str) -> int:
    try:
        return int(resource_version)
    except ValueError:
        return 0  # not an etcd revision: nothing can be proven deleted


def _ns_name(body: dict[str, Any]) -> tuple[str, str]:
    return body["metadata"]["namespace"], body["metadata"]["name"]


def _facts_of(kind: str, body: dict[str, Any], facts: JobFacts) -> JobFacts:
    return JobFacts(kind, body["metadata"], facts.spec, body.get("status"), None, False, now_rfc3339())
