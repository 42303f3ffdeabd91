"""The kopf handlers: settings and clients at startup, then every event handed to the engine."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import aiohttp
import kopf

from datajobs.controller import metrics
from datajobs.controller.apisession import ApiError, ApiSession
from datajobs.controller.config import OperatorConfig
from datajobs.controller.engine import Engine
from datajobs.controller.kubeio import KubeIO
from datajobs.controller.leader import LeaderElector
from datajobs.models.kinds import GROUP, INTEGRITY_JOB, MASKING_EXECUTION, VERSION

_engine: Engine | None = None  # for the metrics collector, which runs outside kopf's handler context


class NoDiffBase(kopf.DiffBaseStorage):
    """kopf's change detection serves on.update/on.field handlers; ours are all on.event, so building a deep
    copy of every object on every event (12 % of the operator's CPU in a profile) buys nothing."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def _own_copy(body: kopf.Body) -> dict[str, Any]:
    # The engine only ever changes an object's top level and its metadata (dropping managedFields); the
    # nested raw dicts kopf hands out are replaced, never mutated, per event, so they can be shared.
    raw = dict(body)
    raw["metadata"] = dict(raw.get("metadata") or {})
    return raw


def in_cluster_server(env: Mapping[str, str]) -> str | None:
    """The API server as a pod reaches it: `$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, as client-go
    does (kopf's own service-account login names `kubernetes.default.svc`, which needs cluster DNS)."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def credentials(config: OperatorConfig, settings: kopf.OperatorSettings) -> kopf.ConnectionInfo | None:
    """An explicit --kubeconfig wins; otherwise the pod's ServiceAccount; otherwise $KUBECONFIG."""
    if config.kubeconfig:
        return kopf.login_with_kubeconfig(settings=settings)
    pod = kopf.login_with_service_account(settings=settings)
    server = in_cluster_server(os.environ)
    if pod is not None and server is not None:
        pod = dataclasses.replace(pod, server=server)
    return pod or kopf.login_with_kubeconfig(settings=settings)


@kopf.on.login()
def login(memo: kopf.Memo, settings: kopf.OperatorSettings, **_: Any) -> kopf.ConnectionInfo | None:
    """kopf's watches and our own API session log in the same way."""
    return credentials(memo.config, settings)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    global _engine
    config: OperatorConfig = memo.config
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.posting.level = logging.WARNING  # our engine posts the lifecycle Events itself
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)  # one "handler succeeded" line per event
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # liveness probes
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.networking.request_timeout = 60
    api = ApiSession(
        lambda: credentials(config, settings),
        max_connections=max(8, config.reconcile_workers * 2),
        qps=config.kube_api_qps,
        burst=config.kube_api_burst,
        watches=len(config.namespaces) or 1,  # the engine's pod informers
    )
    memo.api = api
    engine = Engine(KubeIO(api), config)
    api.on_reconnect = engine.want_relist  # the API server was away: what was deleted meanwhile goes
    try:
        await engine.start()
        if not config.leader_elect:
            await engine.lead()
    except (ApiError, aiohttp.ClientError, TimeoutError) as exc:
        await engine.stop()
        await api.close()
        if isinstance(exc, ApiError) and exc.status not in (429, 500, 502, 503, 504):
            raise kopf.PermanentError(f"cannot list jobs and pods: HTTP {exc.status} {exc.reason}") from exc
        raise kopf.TemporaryError(f"API server not ready: {exc}", delay=1) from exc
    memo.engine = engine
    _engine = engine
    if config.leader_elect:
        start_election(memo, engine, settings)


def start_election(memo: kopf.Memo, engine: Engine, settings: kopf.OperatorSettings) -> None:
    """Stand by until this replica holds the Lease, then let the engine act; if the Lease is lost, stop
    acting at once and stand by again."""
    config: OperatorConfig = memo.config
    # Its own session: Lease renewals must not wait behind the engine's throttled requests or retries.
    lease_api = ApiSession(lambda: credentials(config, settings), max_connections=2, qps=0, max_retries=0)
    elector = LeaderElector(
        KubeIO(lease_api),
        config.state_namespace,
        config.leader_identity,
        lease_seconds=config.lease_seconds,
        renew_deadline=config.renew_deadline_seconds,
        retry_period=config.retry_period_seconds,
    )
    engine.may_act = elector.is_leader

    memo.lease_api, memo.elector = lease_api, elector
    memo.election = asyncio.create_task(elector.run(engine.lead, engine.pause), name="leader-election")


@kopf.on.cleanup()
async def shutdown(memo: kopf.Memo, **_: Any) -> None:
    election: asyncio.Task[None] | None = memo.get("election")
    if election is not None:
        election.cancel()
        await asyncio.gather(election, return_exceptions=True)
    engine: Engine | None = memo.get("engine")
    if engine is not None:
        await engine.stop()
    if memo.get("elector") is not None:
        await memo.elector.release()  # after the engine stopped: nothing acts once a standby may
    for name in ("api", "lease_api"):
        if memo.get(name) is not None:
            await memo[name].close()


@kopf.on.probe(id="engine")
async def engine_probe(memo: kopf.Memo, **_: Any) -> dict[str, Any]:
    engine: Engine | None = memo.get("engine")
    if engine is None or not engine.synced:
        raise kopf.TemporaryError("engine not started", delay=1)
    return {"jobs": len(engine.store.jobs), "pending_reconciles": len(engine.work)}


@kopf.on.event(GROUP, VERSION, INTEGRITY_JOB.plural)
async def integrity_job_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.engine.job_event(INTEGRITY_JOB.kind, type, _own_copy(body))


@kopf.on.event(GROUP, VERSION, MASKING_EXECUTION.plural)
async def masking_execution_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.engine.job_event(MASKING_EXECUTION.kind, type, _own_copy(body))


metrics.register_engine(lambda: _engine)
