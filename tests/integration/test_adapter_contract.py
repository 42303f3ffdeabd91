"""Adapter contract: every 200 and error body against the vendor schemas, on real HTTP and a real API server.

The operator is played by the test (status written through the status subresource, as the operator does),
so these tests pin the adapter's own behaviour. This module also holds the fixtures the other adapter
integration modules import.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from kubernetes import client

from datajobs.adapter.keys import hash_key
from datajobs.adapter.openapi import build_openapi
from datajobs.adapter.server import AdapterConfig, ThreadedAdapter
from helpers import wait_for

GROUP, VERSION = "datajobs.io", "v1alpha1"
IJ, MEX = "integrityjobs", "maskingexecutions"
ADMIN_KEY = "adapter-test-admin-key-4f7c1d"
LOCAL_KEY = "adapter-test-local-key-9a2b3c"
ELSEWHERE_KEY = "adapter-test-elsewhere-key-77e1"
GO_ZERO = "0001-01-01T00:00:00Z"
T0 = "2026-01-01T00:00:00Z"

VENDOR_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "vendor"


def vendor_validator(file: str, definition: str) -> Draft202012Validator:
    doc = json.loads((VENDOR_DIR / file).read_text())
    return Draft202012Validator(
        {**doc, "$ref": f"#/$defs/{definition}"}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


PREQUEL_OK = vendor_validator("prequel.schema.json", "CancelDataIntegrityJobResponse")
PREQUEL_ERROR = vendor_validator("prequel.schema.json", "ErrorResponse")
DELPHIX_EXECUTION = vendor_validator("delphix.schema.json", "Execution")
# The Delphix seed lists no error fields; the adapter documents its error body in its own OpenAPI document.
DELPHIX_ERROR = Draft202012Validator(
    {"$ref": "#/components/schemas/ErrorMessage", "components": build_openapi("test")["components"]}
)


# --- playing the operator ----------------------------------------------------------------------------


def integrity_status(uid: str, destination: str, status: str) -> dict[str, Any]:
    return {
        "id": uid,
        "org_schema": "analytics",
        "submitted_at": T0,
        "started_at": T0 if status != "QUEUED" else GO_ZERO,
        "ended_at": GO_ZERO,
        "destination_id": destination,
        "status": status,
        "model_ids": ["orders"],
        "model_sample_primary_ids": {"orders": ["1", "2"]},
        "data_integrity_results": [],
        "log_message": "",
    }


def masking_status(execution_id: int, status: str) -> dict[str, Any]:
    return {
        "executionId": execution_id,
        "jobId": 7,
        "connectorType": "DATABASE",
        "status": status,
        "rowsMasked": 0,
        "rowsTotal": -1,
        "submitTime": T0,
    }


class Player:
    """Creates jobs and writes their status like the operator: resourceVersion-preconditioned merges."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.ns = namespace

    def get(self, plural: str, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, plural, name)  # type: ignore[no-any-return]

    def create(self, plural: str, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, plural, body)  # type: ignore[no-any-return]

    def write_status(
        self, plural: str, name: str, fields: dict[str, Any], attempts: int = 100
    ) -> dict[str, Any]:
        for _ in range(attempts):
            obj = self.get(plural, name)
            body = {"metadata": {"resourceVersion": obj["metadata"]["resourceVersion"]}, "status": fields}
            try:
                return self.custom.patch_namespaced_custom_object_status(  # type: ignore[no-any-return]
                    GROUP, VERSION, self.ns, plural, name, body
                )
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
        raise AssertionError(f"status of {plural}/{name} kept conflicting")

    def integrity(self, name: str, status: str = "RUNNING", destination: str = "dest-1") -> dict[str, Any]:
        obj = self.create(IJ, "IntegrityJob", name, {"destinationId": destination, "modelIds": ["orders"]})
        return self.write_status(IJ, name, integrity_status(obj["metadata"]["uid"], destination, status))

    def masking(self, name: str, execution_id: int, status: str = "RUNNING") -> dict[str, Any]:
        self.create(MEX, "MaskingExecution", name, {"jobId": 7, "connectorType": "DATABASE"})
        return self.write_status(MEX, name, masking_status(execution_id, status))


# --- HTTP ----------------------------------------------------------------------------------------------


def http(
    method: str, url: str, headers: dict[str, str] | None = None, body: bytes | None = None
) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get_content_type()
    except urllib.error.HTTPError as err:
        status, raw, ctype = err.code, err.read(), err.headers.get_content_type()
    assert ctype == "application/json", (status, raw[:200])
    return status, json.loads(raw)


def prequel(key: str | None = ADMIN_KEY) -> dict[str, str]:
    return {} if key is None else {"X-API-KEY": key}


def delphix(key: str | None = ADMIN_KEY) -> dict[str, str]:
    return {} if key is None else {"Authorization": f"Bearer {key}"}


def ij_path(job: dict[str, Any]) -> str:
    return f"/destinations/{job['status']['destination_id']}/data-integrity/{job['metadata']['uid']}"


def wait_visible(url: str, headers: dict[str, str], predicate: Callable[[Any], bool] = lambda _: True) -> Any:
    """Poll a GET until the adapter's cache has the job (and it satisfies `predicate`)."""

    def seen() -> Any:
        status, body = http("GET", url, headers)
        return status == 200 and predicate(body) and body

    return wait_for(seen, timeout=15, message=f"the adapter never served {url}")


# --- fixtures (imported by the other adapter modules) --------------------------------------------------


def write_keys(directory: Path, namespace: str) -> Path:
    path = directory / "api-keys.yaml"
    entries = [
        ("admin", ADMIN_KEY, ["*"]),
        ("local", LOCAL_KEY, [namespace]),
        ("elsewhere", ELSEWHERE_KEY, ["some-other-namespace"]),
    ]
    path.write_text(
        "keys:\n"
        + "".join(
            f'- {{name: {n}, sha256: "{hash_key(k)}", namespaces: {json.dumps(ns)}}}\n'
            for n, k, ns in entries
        )
    )
    return path


@pytest.fixture
def player(kube_api: client.ApiClient, namespace: str, crds: object) -> Player:
    return Player(kube_api, namespace)


@pytest.fixture
def start_adapter(
    cluster: Any, namespace: str, crds: object, tmp_path: Path
) -> Iterator[Callable[..., ThreadedAdapter]]:
    """Start an in-process adapter on a free loopback port, watching the test's namespace."""
    started: list[ThreadedAdapter] = []

    def start(**overrides: Any) -> ThreadedAdapter:
        config = AdapterConfig(
            host="127.0.0.1",
            port=0,
            kubeconfig=str(cluster.kubeconfig),
            namespaces=(namespace,),
            api_keys_file=write_keys(tmp_path, namespace),
            **overrides,
        )
        adapter = ThreadedAdapter(config).start()
        started.append(adapter)
        return adapter

    yield start
    for adapter in started:
        adapter.stop()


@pytest.fixture
def adapter(start_adapter: Callable[..., ThreadedAdapter]) -> ThreadedAdapter:
    return start_adapter()


# --- the tests -----------------------------------------------------------------------------------------


def test_prequel_cancel_and_get_bodies_match_the_vendor_schema(
    adapter: ThreadedAdapter, player: Player
) -> None:
    job = player.integrity("ij-running")
    url = adapter.url + ij_path(job)
    got = wait_visible(url, prequel())
    PREQUEL_OK.validate(got)
    assert got["data"]["job"] == integrity_status(job["metadata"]["uid"], "dest-1", "RUNNING")

    status, body = http("POST", url + "/cancel", prequel())
    assert status == 200, body
    PREQUEL_OK.validate(body)
    assert body["status"] == "success" and body["message"] == "cancellation requested"
    assert body["data"]["job"]["status"] == "RUNNING"
    after = player.get(IJ, "ij-running")
    requested = after["spec"]["cancelRequested"]
    assert requested["graceful"] is False and "expectedStatus" not in requested
    assert requested["requestedAt"].endswith("Z")
    assert after["metadata"]["generation"] == job["metadata"]["generation"] + 1

    # a repeat while the request is pending: 200, and no second patch
    status, body = http("POST", url + "/cancel", prequel())
    assert status == 200 and body["message"] == "cancellation already in progress"
    PREQUEL_OK.validate(body)
    assert player.get(IJ, "ij-running")["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]


def test_delphix_cancel_and_get_bodies_match_the_vendor_schema(
    adapter: ThreadedAdapter, player: Player
) -> None:
    job = player.masking("mex-running", 501)
    url = adapter.url + "/executions/501"
    got = wait_visible(url, delphix())
    DELPHIX_EXECUTION.validate(got)
    assert got == masking_status(501, "RUNNING")

    status, body = http(
        "POST", url + "/cancel?expectedStatus=RUNNING&graceful=true", {"X-API-KEY": ADMIN_KEY}
    )
    assert status == 200, body
    DELPHIX_EXECUTION.validate(body)
    assert body == masking_status(501, "RUNNING")
    after = player.get(MEX, "mex-running")
    assert after["spec"]["cancelRequested"]["expectedStatus"] == "RUNNING"
    assert after["spec"]["cancelRequested"]["graceful"] is True
    assert after["metadata"]["generation"] == job["metadata"]["generation"] + 1

    # the identical request again (raw key in Authorization): in progress, no patch
    status, body = http(
        "POST", url + "/cancel?graceful=true&expectedStatus=RUNNING", {"Authorization": ADMIN_KEY}
    )
    assert status == 200
    DELPHIX_EXECUTION.validate(body)
    assert (
        player.get(MEX, "mex-running")["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]
    )

    # the operator accepts it and the worker terminates: still 200 in progress for any new request
    accepted = [
        {
            "type": "CancelRequest",
            "status": "True",
            "observedGeneration": after["metadata"]["generation"],
            "lastTransitionTime": T0,
            "reason": "Accepted",
            "message": "cancel accepted",
        },
        {
            "type": "Cancelling",
            "status": "True",
            "observedGeneration": after["metadata"]["generation"],
            "lastTransitionTime": T0,
            "reason": "WaitingForWorker",
            "message": "stopping the worker pod",
        },
    ]
    cancelling = player.write_status(MEX, "mex-running", {"conditions": accepted})
    wait_visible(url, delphix())
    status, body = http("POST", url + "/cancel", delphix())
    assert status == 200 and body["status"] == "RUNNING"
    assert (
        player.get(MEX, "mex-running")["metadata"]["resourceVersion"]
        == cancelling["metadata"]["resourceVersion"]
    )

    # the worker is gone: CANCELLED, and a cancel is now a 400 that says so
    player.write_status(MEX, "mex-running", {"status": "CANCELLED", "endTime": T0})
    wait_visible(url, delphix(), lambda b: b["status"] == "CANCELLED")
    status, body = http("POST", url + "/cancel", delphix())
    assert status == 400 and "already CANCELLED" in body["errorMessage"]
    DELPHIX_ERROR.validate(body)


ERROR_CASES: list[tuple[str, str, str, dict[str, str], bytes | None, int, str]] = [
    # (vendor, job to target, path suffix, headers, body, expected status, fragment of the message)
    ("prequel", "ij-done", "/cancel", prequel(), None, 400, "already SUCCEEDED"),
    ("prequel", "ij-run", "/cancel?graceful=true", prequel(), None, 400, "unknown query parameter"),
    (
        "prequel",
        "ij-run",
        "/cancel",
        prequel(),
        b'{"expectedStatus": "RUNNING"}',
        400,
        "unknown request body",
    ),
    ("prequel", "ij-run", "/cancel", prequel(), b"\x00not json", 400, "not valid JSON"),
    ("prequel", "ij-run", "/cancel", prequel(), b" " * (64 * 1024 + 1), 400, "too large"),
    ("prequel", "ij-run", "/cancel", prequel(None), None, 401, "X-API-KEY"),
    ("prequel", "ij-run", "/cancel", prequel("wrong"), None, 401, "X-API-KEY"),
    ("prequel", "ij-run", "/cancel", delphix(), None, 401, "X-API-KEY"),
    ("prequel", "unknown-uid", "/cancel", prequel(), None, 404, "not found"),
    ("prequel", "wrong-destination", "/cancel", prequel(), None, 404, "not found"),
    ("prequel", "ij-no-status", "/cancel", prequel(), None, 404, "not found"),
    ("prequel", "ij-run", "", prequel(), None, 200, ""),
    (
        "delphix",
        "mex-run",
        "/cancel?expectedStatus=QUEUED",
        delphix(),
        None,
        400,
        "expected status QUEUED but the actual status is RUNNING",
    ),
    (
        "delphix",
        "mex-queued",
        "/cancel?expectedStatus=RUNNING",
        delphix(),
        None,
        400,
        "expected status RUNNING but the actual status is QUEUED",
    ),
    ("delphix", "mex-done", "/cancel", delphix(), None, 400, "already FAILED"),
    ("delphix", "bad-id", "/cancel", delphix(), None, 400, "must be an integer"),
    ("delphix", "mex-run", "/cancel?expectedStatus=CANCELLED", delphix(), None, 400, "QUEUED or RUNNING"),
    ("delphix", "mex-run", "/cancel?graceful=maybe", delphix(), None, 400, "true or false"),
    ("delphix", "mex-run", "/cancel?graceful=true&graceful=false", delphix(), None, 400, "more than once"),
    ("delphix", "mex-run", "/cancel?executionId=1", delphix(), None, 400, "unknown query parameter"),
    ("delphix", "mex-run", "/cancel", delphix(), b"[]", 400, "body"),
    ("delphix", "mex-run", "/cancel", delphix(None), None, 403, "API key"),
    ("delphix", "mex-run", "/cancel", {"Authorization": "Bearer wrong"}, None, 403, "API key"),
    ("delphix", "mex-run", "/cancel", prequel("wrong"), None, 403, "API key"),
    ("delphix", "unknown-id", "/cancel", delphix(), None, 404, "not found"),
    ("delphix", "mex-no-status", "/cancel", delphix(), None, 404, "not found"),
    ("delphix", "mex-run", "", delphix(), None, 200, ""),
]


def test_every_error_code_has_the_vendor_shape_and_changes_nothing(
    adapter: ThreadedAdapter, player: Player
) -> None:
    jobs = {
        "ij-run": player.integrity("ij-run"),
        "ij-done": player.integrity("ij-done", status="SUCCEEDED"),
        "ij-no-status": player.create(IJ, "IntegrityJob", "ij-no-status", {"destinationId": "dest-1"}),
        "mex-run": player.masking("mex-run", 601),
        "mex-queued": player.masking("mex-queued", 602, status="QUEUED"),
        "mex-done": player.masking("mex-done", 603, status="FAILED"),
        "mex-no-status": player.create(MEX, "MaskingExecution", "mex-no-status", {"jobId": 7}),
    }
    paths = {
        **{name: ij_path(obj) for name, obj in jobs.items() if name.startswith("ij-") and "status" in obj},
        "ij-no-status": f"/destinations/dest-1/data-integrity/{jobs['ij-no-status']['metadata']['uid']}",
        "unknown-uid": "/destinations/dest-1/data-integrity/00000000-0000-0000-0000-000000000000",
        "wrong-destination": f"/destinations/dest-2/data-integrity/{jobs['ij-run']['metadata']['uid']}",
        "mex-run": "/executions/601",
        "mex-queued": "/executions/602",
        "mex-done": "/executions/603",
        "mex-no-status": "/executions/0",
        "bad-id": "/executions/six-hundred-one",
        "unknown-id": "/executions/999999",
    }
    for name in ("ij-run", "ij-done"):
        wait_visible(adapter.url + paths[name], prequel())
    for name in ("mex-run", "mex-queued", "mex-done"):
        wait_visible(adapter.url + paths[name], delphix())
    versions = {
        name: player.get(IJ if name.startswith("ij") else MEX, name)["metadata"]["resourceVersion"]
        for name in jobs
    }

    for vendor, target, suffix, headers, body, expected, fragment in ERROR_CASES:
        status, answer = http(
            "POST" if suffix.startswith("/cancel") else "GET",
            adapter.url + paths[target] + suffix,
            headers,
            body,
        )
        case = f"{vendor} {target}{suffix} -> {status} {answer}"
        assert status == expected, case
        if vendor == "prequel":
            (PREQUEL_OK if status == 200 else PREQUEL_ERROR).validate(answer)
            message = answer["message"]
        else:
            (DELPHIX_EXECUTION if status == 200 else DELPHIX_ERROR).validate(answer)
            message = "" if status == 200 else answer["errorMessage"]
        assert fragment in message, case

    for name, version in versions.items():  # nothing was patched: no spec change, no new resourceVersion
        obj = player.get(IJ if name.startswith("ij") else MEX, name)
        assert obj["metadata"]["resourceVersion"] == version, name
        assert "cancelRequested" not in obj["spec"], name


def test_a_key_scoped_to_another_namespace_sees_nothing(adapter: ThreadedAdapter, player: Player) -> None:
    job = player.integrity("ij-scoped")
    player.masking("mex-scoped", 701)
    ij_url, mex_url = adapter.url + ij_path(job), adapter.url + "/executions/701"
    wait_visible(ij_url, prequel(LOCAL_KEY))
    wait_visible(mex_url, delphix(LOCAL_KEY))
    unknown_ij = f"{adapter.url}/destinations/dest-1/data-integrity/{'f' * 36}"

    for method, suffix in (("GET", ""), ("POST", "/cancel")):
        status, body = http(method, ij_url + suffix, prequel(ELSEWHERE_KEY))
        PREQUEL_ERROR.validate(body)
        missing_status, missing = http(method, unknown_ij + suffix, prequel(ELSEWHERE_KEY))
        # indistinguishable from a job that does not exist (only the echoed id differs)
        assert (status, missing_status) == (404, 404)
        assert body["message"] == missing["message"].replace("f" * 36, job["metadata"]["uid"])
        status, body = http(method, mex_url + suffix, delphix(ELSEWHERE_KEY))
        assert (status, body) == (404, {"errorMessage": "execution 701 not found"})
    assert "cancelRequested" not in player.get(IJ, "ij-scoped")["spec"]
    assert "cancelRequested" not in player.get(MEX, "mex-scoped")["spec"]

    # the key scoped to this namespace may cancel
    status, body = http("POST", mex_url + "/cancel", delphix(LOCAL_KEY))
    assert status == 200 and "cancelRequested" in player.get(MEX, "mex-scoped")["spec"]


def test_a_deleted_job_is_a_404(adapter: ThreadedAdapter, player: Player) -> None:
    player.masking("mex-gone", 801)
    url = adapter.url + "/executions/801"
    wait_visible(url, delphix())
    player.custom.delete_namespaced_custom_object(GROUP, VERSION, player.ns, MEX, "mex-gone")
    wait_for(lambda: http("GET", url, delphix())[0] == 404, timeout=15, message="deleted job still served")
    status, body = http("POST", url + "/cancel", delphix())
    assert (status, body) == (404, {"errorMessage": "execution 801 not found"})


def test_health_readiness_metrics_and_openapi(adapter: ThreadedAdapter, player: Player) -> None:
    assert http("GET", adapter.url + "/healthz") == (200, {"status": "ok"})
    assert http("GET", adapter.url + "/readyz") == (200, {"status": "ready"})
    status, doc = http("GET", adapter.url + "/openapi.json")
    assert status == 200 and doc == json.loads(json.dumps(build_openapi(doc["info"]["version"])))
    player.masking("mex-metrics", 901)
    wait_visible(adapter.url + "/executions/901", delphix())
    http("POST", adapter.url + "/executions/901/cancel", delphix())
    with urllib.request.urlopen(adapter.url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert 'datajobs_adapter_cancels_total{kind="MaskingExecution",outcome="patched"} 1.0' in text
    assert "datajobs_adapter_cache_synced 1.0" in text
    assert 'datajobs_adapter_cache_objects{kind="MaskingExecution"} 1.0' in text
    assert 'route="/executions/{executionId}/cancel"' in text
