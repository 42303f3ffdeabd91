"""The adapter's HTTP surface over real loopback HTTP, with an in-memory stand-in for the API server."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from jsonschema import Draft202012Validator

from datajobs.adapter.app import build_app
from datajobs.adapter.cache import KEY_FUNCTIONS, JobIndex
from datajobs.adapter.cancel import Canceller
from datajobs.adapter.handlers import AdapterState
from datajobs.adapter.jobapi import Conflict, JobApiError, NotFound
from datajobs.adapter.keys import KeyRing, hash_key, parse_keys
from datajobs.adapter.metrics import AdapterMetrics
from datajobs.adapter.openapi import build_openapi
from datajobs.models import INTEGRITY_JOB, KINDS, MASKING_EXECUTION, KindInfo

ADMIN, TEAM_A = "admin-key-0123456789", "team-a-key-9876543210"
KEYS = f"""
keys:
- {{name: admin, sha256: "{hash_key(ADMIN)}", namespaces: ["*"]}}
- {{name: team-a, sha256: "{hash_key(TEAM_A)}", namespaces: [ns-a]}}
"""
OPENAPI = build_openapi("test")


def schema_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]})


def integrity(name: str, ns: str, status: str = "RUNNING", uid: str | None = None) -> dict[str, Any]:
    uid = uid or f"uid-{name}"
    return {
        "apiVersion": "datajobs.io/v1alpha1",
        "kind": "IntegrityJob",
        "metadata": {"name": name, "namespace": ns, "uid": uid, "generation": 1, "resourceVersion": "1"},
        "spec": {"destinationId": "dest-1"},
        "status": {
            "id": uid,
            "org_schema": "org",
            "submitted_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:00:01Z",
            "ended_at": "0001-01-01T00:00:00Z",
            "destination_id": "dest-1",
            "status": status,
            "model_ids": ["m1"],
            "model_sample_primary_ids": {},
            "data_integrity_results": [],
            "log_message": "",
            "observedGeneration": 1,
            "conditions": [],
        },
    }


def masking(name: str, ns: str, execution_id: int, status: str = "RUNNING") -> dict[str, Any]:
    return {
        "apiVersion": "datajobs.io/v1alpha1",
        "kind": "MaskingExecution",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"uid-{name}",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"jobId": 7},
        "status": {
            "executionId": execution_id,
            "jobId": 7,
            "status": status,
            "rowsMasked": 0,
            "submitTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 1,
            "conditions": [],
        },
    }


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            result.pop(k, None)
        else:
            result[k] = merge(result.get(k), v)
    return result


class FakeCluster:
    """Objects, a JobApi over them with resourceVersion preconditions, and the cache the handlers read."""

    def __init__(self, objects: list[dict[str, Any]]) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.indexes = {k.plural: JobIndex(KEY_FUNCTIONS[k.plural]) for k in KINDS}
        self.synced = True
        self.patches: list[dict[str, Any]] = []
        self.rv = 100
        self.before_patch: Callable[[dict[str, Any]], Awaitable[None]] | None = None
        for obj in objects:
            self.put(obj)

    def plural(self, obj: dict[str, Any]) -> str:
        return INTEGRITY_JOB.plural if obj["kind"] == "IntegrityJob" else MASKING_EXECUTION.plural

    def put(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.rv)
        m = obj["metadata"]
        self.objects[(self.plural(obj), m["namespace"], m["name"])] = obj
        self.indexes[self.plural(obj)].apply("MODIFIED", copy.deepcopy(obj))

    def set_status(self, plural: str, ns: str, name: str, **fields: Any) -> None:
        obj = copy.deepcopy(self.objects[(plural, ns, name)])
        obj["status"].update(fields)
        self.put(obj)

    def index(self, kind: KindInfo) -> JobIndex:
        return self.indexes[kind.plural]

    def unsynced(self) -> list[str]:
        return [] if self.synced else ["integrityjobs"]

    async def get(self, kind: KindInfo, namespace: str, name: str) -> dict[str, Any]:
        try:
            return copy.deepcopy(self.objects[(kind.plural, namespace, name)])
        except KeyError:
            raise NotFound(404, "not found") from None

    async def merge_patch(
        self, kind: KindInfo, namespace: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        if self.before_patch is not None:
            hook, self.before_patch = self.before_patch, None
            await hook(body)
        current = await self.get(kind, namespace, name)
        if body["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise Conflict(409, "the object has been modified")
        self.patches.append(body)
        updated = merge(current, {k: v for k, v in body.items() if k != "metadata"})
        updated["metadata"]["generation"] += 1
        self.put(updated)
        return await self.get(kind, namespace, name)


@asynccontextmanager
async def serve(cluster: FakeCluster) -> AsyncIterator[tuple[aiohttp.ClientSession, AdapterMetrics]]:
    ring = KeyRing()
    ring.set_source("test", parse_keys(KEYS, "test"))
    metrics = AdapterMetrics()
    canceller = Canceller(cluster, on_conflict=metrics.count_conflict)
    state = AdapterState(keys=ring, cache=cluster, canceller=canceller, metrics=metrics, max_body_bytes=1024)
    server = TestServer(build_app(state), host="127.0.0.1", port=0)
    await server.start_server()
    try:
        async with aiohttp.ClientSession(base_url=str(server.make_url("/"))) as session:
            yield session, metrics
    finally:
        await server.close()


def default_cluster() -> FakeCluster:
    return FakeCluster(
        [
            integrity("ij-a", "ns-a"),
            integrity("ij-b", "ns-b"),
            integrity("ij-done", "ns-a", status="SUCCEEDED"),
            masking("mex-a", "ns-a", 1),
            masking("mex-b", "ns-b", 2),
            masking("mex-q", "ns-a", 3, status="QUEUED"),
        ]
    )


def run(
    scenario: Callable[[aiohttp.ClientSession, FakeCluster, AdapterMetrics], Awaitable[None]],
    cluster: FakeCluster | None = None,
) -> FakeCluster:
    cluster = cluster or default_cluster()

    async def main() -> None:
        async with serve(cluster) as (session, metrics):
            await scenario(session, cluster, metrics)

    asyncio.run(main())
    return cluster


PREQUEL_CANCEL = "/destinations/dest-1/data-integrity/uid-ij-a/cancel"
ADMIN_P = {"X-API-KEY": ADMIN}
ADMIN_D = {"Authorization": ADMIN}


async def call(session: aiohttp.ClientSession, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    async with session.request(method, path, **kw) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        return resp.status, await resp.json()


def test_prequel_cancel_then_repeat() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        status, body = await call(s, "POST", PREQUEL_CANCEL, headers=ADMIN_P)
        assert status == 200, body
        schema_validator("DataIntegrityJobSuccessResponse").validate(body)
        assert body["status"] == "success" and body["message"] == "cancellation requested"
        assert body["data"]["job"]["id"] == "uid-ij-a" and body["data"]["job"]["status"] == "RUNNING"
        assert "conditions" not in body["data"]["job"] and "observedGeneration" not in body["data"]["job"]
        assert len(cluster.patches) == 1
        requested = cluster.patches[0]["spec"]["cancelRequested"]
        assert requested["expectedStatus"] is None and requested["graceful"] is False
        assert cluster.patches[0]["metadata"]["resourceVersion"]
        status, body = await call(s, "POST", PREQUEL_CANCEL, headers=ADMIN_P)
        assert status == 200 and body["message"] == "cancellation already in progress"
        assert len(cluster.patches) == 1
        status, body = await call(s, "GET", PREQUEL_CANCEL.removesuffix("/cancel"), headers=ADMIN_P)
        assert status == 200 and body["data"]["job"]["id"] == "uid-ij-a"

    run(scenario)


def test_delphix_cancel_with_guards() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        execution = schema_validator("Execution")
        error = schema_validator("ErrorMessage")
        status, body = await call(s, "POST", "/executions/1/cancel?expectedStatus=QUEUED", headers=ADMIN_D)
        assert status == 400 and body == {
            "errorMessage": (
                "execution 1 was not cancelled: expected status QUEUED but the actual status is RUNNING"
            )
        }
        error.validate(body)
        assert cluster.patches == []
        status, body = await call(
            s,
            "POST",
            "/executions/1/cancel?expectedStatus=RUNNING&graceful=true",
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert status == 200, body
        execution.validate(body)
        assert body == {
            "executionId": 1,
            "jobId": 7,
            "status": "RUNNING",
            "rowsMasked": 0,
            "submitTime": "2026-01-01T00:00:00Z",
        }
        assert cluster.patches[-1]["spec"]["cancelRequested"]["graceful"] is True
        assert cluster.patches[-1]["spec"]["cancelRequested"]["expectedStatus"] == "RUNNING"
        # the same request again: in progress, no patch; a different one replaces the pending request
        assert (
            await call(
                s,
                "POST",
                "/executions/1/cancel?graceful=TRUE&expectedStatus=RUNNING",
                headers={"X-API-KEY": ADMIN},
            )
        )[0] == 200
        assert len(cluster.patches) == 1
        assert (await call(s, "POST", "/executions/1/cancel", headers=ADMIN_D))[0] == 200
        assert len(cluster.patches) == 2
        cluster.set_status("maskingexecutions", "ns-a", "mex-a", status="CANCELLED")
        status, body = await call(s, "POST", "/executions/1/cancel", headers=ADMIN_D)
        assert status == 400 and "already CANCELLED" in body["errorMessage"]
        assert len(cluster.patches) == 2
        status, body = await call(s, "GET", "/executions/1", headers=ADMIN_D)
        assert status == 200 and body["status"] == "CANCELLED"
        execution.validate(body)

    run(scenario)


def test_finished_prequel_job_is_a_400() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        status, body = await call(
            s, "POST", "/destinations/dest-1/data-integrity/uid-ij-done/cancel", headers=ADMIN_P
        )
        assert status == 400 and "already SUCCEEDED" in body["message"]
        schema_validator("ErrorResponse").validate(body)
        assert body["data"] is None and cluster.patches == []

    run(scenario)


def test_auth_failures_and_namespace_scope() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, metrics: AdapterMetrics) -> None:
        for headers in ({}, {"X-API-KEY": "nope"}, {"X-API-KEY": ""}, {"Authorization": ADMIN}):
            status, body = await call(s, "POST", PREQUEL_CANCEL, headers=headers)
            assert status == 401 and body["status"] == "error" and body["data"] is None, headers
        for headers in ({}, {"Authorization": "nope"}, {"Authorization": "Bearer nope"}, {"X-API-KEY": "x"}):
            status, body = await call(s, "POST", "/executions/1/cancel", headers=headers)
            assert status == 403 and set(body) == {"errorMessage"}, headers
        # team-a may touch ns-a only: ns-b's jobs do not exist for it
        team_p, team_d = {"X-API-KEY": TEAM_A}, {"Authorization": TEAM_A}
        status, body = await call(s, "GET", "/destinations/dest-1/data-integrity/uid-ij-b", headers=team_p)
        missing_status, missing = await call(
            s, "GET", "/destinations/dest-1/data-integrity/uid-none", headers=team_p
        )
        assert status == missing_status == 404
        assert body["message"] == missing["message"].replace("uid-none", "uid-ij-b")
        assert (await call(s, "POST", "/executions/2/cancel", headers=team_d)) == (
            404,
            {"errorMessage": "execution 2 not found"},
        )
        assert (await call(s, "POST", "/executions/99/cancel", headers=team_d)) == (
            404,
            {"errorMessage": "execution 99 not found"},
        )
        assert (await call(s, "GET", "/executions/1", headers=team_d))[0] == 200
        assert cluster.patches == []
        text = metrics.render().decode()
        assert 'datajobs_adapter_auth_failures_total{vendor="prequel"} 4.0' in text
        assert 'datajobs_adapter_auth_failures_total{vendor="delphix"} 4.0' in text

    run(scenario)


BAD_INPUTS = [
    ("POST", "/executions/abc/cancel", {}, None),
    ("POST", "/executions/1.5/cancel", {}, None),
    ("POST", "/executions/%201/cancel", {}, None),
    ("POST", "/executions/1_0/cancel", {}, None),
    ("POST", "/executions/99999999999999999999/cancel", {}, None),
    ("GET", "/executions/x", {}, None),
    ("POST", "/executions/1/cancel", {"expectedStatus": "queued"}, None),
    ("POST", "/executions/1/cancel", {"expectedStatus": ""}, None),
    ("POST", "/executions/1/cancel", {"expectedStatus": "SUCCEEDED"}, None),
    ("POST", "/executions/1/cancel", {"graceful": "yes"}, None),
    ("POST", "/executions/1/cancel", {"graceful": "1"}, None),
    ("POST", "/executions/1/cancel", {"force": "true"}, None),
    ("POST", "/executions/1/cancel", [("graceful", "true"), ("graceful", "false")], None),
    ("GET", "/executions/1", {"graceful": "true"}, None),
    ("POST", "/executions/1/cancel", {}, b"not json"),
    ("POST", "/executions/1/cancel", {}, b'{"expectedStatus": "QUEUED"}'),
    ("POST", "/executions/1/cancel", {}, b"[1]"),
    ("POST", "/executions/1/cancel", {}, b"[" * 1000 + b"]" * 1000),
    ("POST", "/executions/1/cancel", {}, b"\xff\xfe\x00"),
    ("POST", "/executions/1/cancel", {}, b" " * 2000),
    ("POST", PREQUEL_CANCEL, {"graceful": "true"}, None),
    ("POST", PREQUEL_CANCEL, {}, b'{"graceful": true}'),
    ("POST", PREQUEL_CANCEL, {}, b"{" * 5000),
    ("POST", PREQUEL_CANCEL, {}, b"x" * 5000),
]


@pytest.mark.parametrize(("method", "path", "query", "body"), BAD_INPUTS)
def test_bad_input_is_a_400_and_never_a_patch(method: str, path: str, query: Any, body: bytes | None) -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        headers = ADMIN_P if path.startswith("/destinations") else ADMIN_D
        status, answer = await call(s, method, path, params=query, data=body, headers=headers)
        assert status == 400, answer
        name = "ErrorResponse" if path.startswith("/destinations") else "ErrorMessage"
        schema_validator(name).validate(answer)
        assert cluster.patches == []

    run(scenario)


def test_chunked_oversized_body_is_a_400() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 512

        status, body = await call(s, "POST", "/executions/1/cancel", data=chunks(), headers=ADMIN_D)
        assert status == 400 and "too large" in body["errorMessage"]
        assert cluster.patches == []

    run(scenario)


def test_accepted_bodies() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        for body in (b"", b"{}", b"null", b" {} \n"):
            assert (await call(s, "GET", "/executions/1", data=body, headers=ADMIN_D))[0] == 200

    run(scenario)


def test_unknown_paths_and_methods_answer_in_the_vendor_shape() -> None:
    async def scenario(s: aiohttp.ClientSession, _: FakeCluster, __: AdapterMetrics) -> None:
        status, body = await call(s, "GET", "/executions/1/cancel", headers=ADMIN_D)
        assert status == 405 and set(body) == {"errorMessage"}
        async with s.get("/executions/1/cancel") as resp:
            assert resp.headers["Allow"] == "POST"
        status, body = await call(s, "DELETE", "/destinations/d/data-integrity/j", headers=ADMIN_P)
        assert status == 405 and body["status"] == "error"
        status, body = await call(s, "GET", "/destinations/d/other", headers=ADMIN_P)
        assert status == 404 and body["status"] == "error"
        status, body = await call(s, "GET", "/executions", headers=ADMIN_D)
        assert status == 404 and set(body) == {"errorMessage"}

    run(scenario)


def test_conflict_rereads_and_decides_on_the_new_status() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, metrics: AdapterMetrics) -> None:
        async def dispatch(
            _: dict[str, Any],
        ) -> None:  # the operator starts the job after the adapter read it
            cluster.set_status("maskingexecutions", "ns-a", "mex-q", status="RUNNING")

        cluster.before_patch = dispatch
        status, body = await call(s, "POST", "/executions/3/cancel?expectedStatus=QUEUED", headers=ADMIN_D)
        assert status == 400 and "actual status is RUNNING" in body["errorMessage"]
        assert cluster.patches == []
        assert (
            'datajobs_adapter_patch_conflicts_total{kind="MaskingExecution"} 1.0' in metrics.render().decode()
        )

    run(scenario)


def test_not_synced_is_a_503_and_readyz_says_so() -> None:
    cluster = default_cluster()
    cluster.synced = False

    async def scenario(s: aiohttp.ClientSession, _: FakeCluster, __: AdapterMetrics) -> None:
        status, body = await call(s, "POST", "/executions/1/cancel", headers=ADMIN_D)
        assert status == 503 and set(body) == {"errorMessage"}
        status, body = await call(s, "GET", "/readyz")
        assert status == 503 and body == {"status": "not ready", "waiting": ["integrityjobs"]}
        assert (await call(s, "GET", "/healthz")) == (200, {"status": "ok"})

    run(scenario, cluster)


def test_an_api_server_that_is_away_or_throttling_is_a_503_in_the_vendor_shape_never_a_500() -> None:
    failures: list[Exception] = [
        aiohttp.ClientConnectorError(
            aiohttp.client_reqrep.ConnectionKey("127.0.0.1", 1, False, True, None, None, None),
            ConnectionRefusedError(111, "refused"),
        ),
        TimeoutError(),
        JobApiError(503, "etcdserver: request timed out"),
        JobApiError(429, "too many requests"),
    ]

    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        for failure in failures:

            async def fail(_: dict[str, Any], failure: Exception = failure) -> None:
                raise failure

            cluster.before_patch = fail
            async with s.post(PREQUEL_CANCEL, headers=ADMIN_P) as resp:
                body = await resp.json()
                assert resp.status == 503, (failure, body)
                assert resp.headers["Retry-After"] == "1"
                assert body == {"status": "error", "message": body["message"], "data": None}
            cluster.before_patch = fail
            async with s.post("/executions/1/cancel", headers=ADMIN_D) as resp:
                assert resp.status == 503 and set(await resp.json()) == {"errorMessage"}
        cluster.before_patch = None  # the API server is back: the same call succeeds
        status, body = await call(s, "POST", PREQUEL_CANCEL, headers=ADMIN_P)
        assert status == 200 and body["message"] == "cancellation requested"

    run(scenario)


def test_an_api_server_refusal_that_is_not_an_outage_stays_a_500() -> None:
    async def scenario(s: aiohttp.ClientSession, cluster: FakeCluster, _: AdapterMetrics) -> None:
        async def forbidden(_: dict[str, Any]) -> None:
            raise JobApiError(403, "forbidden")

        cluster.before_patch = forbidden
        status, body = await call(s, "POST", PREQUEL_CANCEL, headers=ADMIN_P)
        assert status == 500 and body["status"] == "error"

    run(scenario)


def test_openapi_metrics_and_access_log(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(s: aiohttp.ClientSession, _: FakeCluster, __: AdapterMetrics) -> None:
        status, doc = await call(s, "GET", "/openapi.json")
        assert status == 200 and doc["openapi"].startswith("3.1")
        for schema in doc["components"]["schemas"].values():
            Draft202012Validator.check_schema(schema)
        ops = {(m, p) for p, item in doc["paths"].items() for m in item}
        assert ("post", "/executions/{executionId}/cancel") in ops
        assert ("post", "/destinations/{destination_id}/data-integrity/{job_id}/cancel") in ops
        assert (await call(s, "GET", "/executions/1", headers=ADMIN_D))[0] == 200
        assert (await call(s, "GET", "/executions/1?token=hunter2", headers=ADMIN_D))[0] == 400
        async with s.get("/metrics") as resp:
            text = await resp.text()
        assert resp.status == 200 and resp.content_type == "text/plain"
        assert (
            'datajobs_adapter_requests_total{code="200",method="GET",route="/executions/{executionId}"} 1.0'
            in text
        )
        assert (
            'datajobs_adapter_request_duration_seconds_bucket{code="400",le="+Inf",method="GET",'
            'route="/executions/{executionId}"} 1.0'
        ) in text
        assert 'datajobs_adapter_cache_objects{kind="MaskingExecution"} 3.0' in text

    with caplog.at_level(logging.INFO, logger="datajobs.adapter.access"):
        run(scenario)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "datajobs.adapter.access"]
    hit = [line for line in lines if line["path"] == "/executions/1"]
    assert hit and hit[0]["status"] == 200 and hit[0]["key"] == "admin"
    assert hit[0]["route"] == "/executions/{executionId}"
    assert hit[1]["query"] == {"token": "<redacted>"}
    assert ADMIN not in caplog.text and "hunter2" not in caplog.text
