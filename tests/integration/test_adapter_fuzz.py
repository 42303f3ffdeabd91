"""Schemathesis fuzzing of the OpenAPI document: no 5xx, no response outside the documented shapes."""

# ruff: noqa: F811 (pytest fixtures imported from test_adapter_contract are redefined as parameters)

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_adapter_contract import (  # noqa: F401 (fixtures)
    ADMIN_KEY,
    DELPHIX_ERROR,
    DELPHIX_EXECUTION,
    ELSEWHERE_KEY,
    IJ,
    LOCAL_KEY,
    MEX,
    PREQUEL_ERROR,
    PREQUEL_OK,
    Player,
    adapter,
    delphix,
    http,
    ij_path,
    player,
    prequel,
    start_adapter,
    wait_visible,
)

from datajobs.adapter.server import ThreadedAdapter

EXAMPLES = 1500
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
KEYS = {
    "admin": ADMIN_KEY,
    "local": LOCAL_KEY,
    "elsewhere": ELSEWHERE_KEY,
    "wrong": "not-a-key",
    "none": None,
}


def auth_headers(path: str, key_name: str, style: str) -> dict[str, str]:
    key = KEYS[key_name]
    if key is None:
        return {}
    if path.startswith("/destinations") or style == "x-api-key":
        return {"X-API-KEY": key}
    return {"Authorization": key if style == "raw" else f"Bearer {key}"}


def test_fuzz_the_openapi_document(adapter: ThreadedAdapter, player: Player) -> None:
    # real jobs in every state, so that generated requests also reach the guards and the patch
    integrity = [player.integrity(f"ij-{s.lower()}", status=s) for s in ("QUEUED", "RUNNING", "SUCCEEDED")]
    for i, s in enumerate(("QUEUED", "RUNNING", "FAILED", "CANCELLED")):
        player.masking(f"mex-{s.lower()}", 1300 + i, status=s)
    for job in integrity:
        wait_visible(adapter.url + ij_path(job), prequel())
    for i in range(4):
        wait_visible(f"{adapter.url}/executions/{1300 + i}", delphix())
    status, doc = http("GET", adapter.url + "/openapi.json")
    assert status == 200

    schema = schemathesis.openapi.from_dict(doc)
    strategies = []
    for result in schema.get_all_operations():
        op = result.ok()
        strategies.append(op.as_strategy(generation_mode=GenerationMode.POSITIVE))
        if op.path_parameters or op.query:
            strategies.append(op.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        if "{executionId}" in op.path:
            strategies.append(
                st.sampled_from(range(1300, 1304)).flatmap(
                    lambda i, op=op: op.as_strategy(path_parameters={"executionId": i})
                )
            )
        if "{job_id}" in op.path:
            strategies.append(
                st.sampled_from(integrity).flatmap(
                    lambda j, op=op: op.as_strategy(
                        path_parameters={"destination_id": "dest-1", "job_id": j["metadata"]["uid"]}
                    )
                )
            )
    session = requests.Session()
    seen: Counter[tuple[str, str, int]] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(
        case=st.one_of(strategies),
        key=st.sampled_from(["admin", "admin", "admin", "local", "elsewhere", "wrong", "none"]),
        style=st.sampled_from(["bearer", "raw", "x-api-key"]),
    )
    def fuzz(case: Any, key: str, style: str) -> None:
        headers = auth_headers(case.path, key, style)
        response = case.call(base_url=adapter.url, session=session, headers=headers)
        seen[(case.method, case.path, response.status_code)] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)
        # and the vendors' own schemas, for the vendor endpoints
        if case.path.startswith("/destinations"):
            (PREQUEL_OK if response.status_code == 200 else PREQUEL_ERROR).validate(response.json())
        elif case.path.startswith("/executions"):
            (DELPHIX_EXECUTION if response.status_code == 200 else DELPHIX_ERROR).validate(response.json())

    fuzz()
    total = sum(seen.values())
    logging.getLogger(__name__).info("fuzz: %d requests: %s", total, sorted(seen.items()))
    assert total >= 1000
    assert not [k for k in seen if k[2] >= 500]
    codes = {code for (_, path, code) in seen if path.startswith(("/destinations", "/executions"))}
    # the run reached every documented outcome of the vendor endpoints, not only the auth gate
    assert {200, 400, 401, 403, 404} <= codes, codes
    # nothing was patched on a job whose guard or state forbade it
    for name in ("ij-succeeded",):
        assert "cancelRequested" not in player.get(IJ, name)["spec"]
    for name in ("mex-failed", "mex-cancelled"):
        assert "cancelRequested" not in player.get(MEX, name)["spec"]
