"""The status models' vendor part is the vendors' schema: same fields, types, required set, closed objects."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel

from datajobs.adapter.vendor import vendor_view
from datajobs.crdgen import render_crds
from datajobs.models import (
    INTEGRITY_JOB,
    MASKING_EXECUTION,
    DataIntegrityJobResource,
    DataIntegrityResultResource,
    Execution,
    IntegrityJobStatus,
    MaskingExecutionStatus,
    MismatchedPartition,
)

VENDOR = Path(__file__).resolve().parents[1] / "fixtures" / "vendor"
PREQUEL = json.loads((VENDOR / "prequel.schema.json").read_text("utf-8"))
DELPHIX = json.loads((VENDOR / "delphix.schema.json").read_text("utf-8"))
K8S_FIELDS = {"observedGeneration", "conditions", "cancelRequestEvaluated", "attempts"}

# (model, fixture document, name in its $defs)
VENDOR_MODELS = [
    (DataIntegrityJobResource, PREQUEL, "DataIntegrityJobResource"),
    (DataIntegrityResultResource, PREQUEL, "DataIntegrityResultResource"),
    (MismatchedPartition, PREQUEL, "MismatchedPartition"),
    (Execution, DELPHIX, "Execution"),
]


def shape(node: dict[str, Any], defs: dict[str, Any], ref_prefix: str = "#/$defs/") -> Any:
    """What conformance compares: types (recursively), enums, formats, required sets, closure.

    `X | None` counts as X (optional, not nullable: the operator and adapter omit unset fields), and
    descriptions, titles and defaults are not part of the contract.
    """
    if "$ref" in node:
        return shape(defs[node["$ref"].removeprefix(ref_prefix)], defs, ref_prefix)
    if "anyOf" in node:
        [only] = [b for b in node["anyOf"] if b != {"type": "null"}]
        return shape({**only, **{k: v for k, v in node.items() if k != "anyOf"}}, defs, ref_prefix)
    out: dict[str, Any] = {"type": node.get("type")}
    if "enum" in node:
        out["enum"] = sorted(node["enum"])
    if "format" in node:
        out["format"] = node["format"]
    if out["type"] == "array":
        out["items"] = shape(node["items"], defs, ref_prefix)
    if out["type"] == "object" and "properties" in node:
        out["properties"] = {k: shape(v, defs, ref_prefix) for k, v in node["properties"].items()}
        out["required"] = sorted(node.get("required", []))
        out["additionalProperties"] = node.get("additionalProperties", True)
    elif out["type"] == "object":
        out["additionalProperties"] = shape(node["additionalProperties"], defs, ref_prefix)
    return out


def model_shape(model: type[BaseModel]) -> Any:
    schema = model.model_json_schema(by_alias=True)
    return shape(schema, schema.get("$defs", {}))


def fixture_shape(doc: dict[str, Any], name: str) -> Any:
    return shape(doc["$defs"][name], doc["$defs"])


def drop_formats_absent_from(fixture: Any, model: Any) -> Any:
    """The models may add a `format` the vendor page does not state (Delphix's times): a narrowing."""
    if not isinstance(model, dict):
        return model
    out = {}
    for key, value in model.items():
        if key == "format" and "format" not in fixture:
            continue
        sub = fixture.get(key, {}) if isinstance(fixture, dict) else {}
        out[key] = (
            {k: drop_formats_absent_from(sub.get(k, {}), v) for k, v in value.items()}
            if key == "properties"
            else (drop_formats_absent_from(sub, value))
        )
    return out


@pytest.mark.parametrize(("model", "doc", "name"), VENDOR_MODELS, ids=[m[2] for m in VENDOR_MODELS])
def test_vendor_model_matches_the_vendor_schema(
    model: type[BaseModel], doc: dict[str, Any], name: str
) -> None:
    expected = fixture_shape(doc, name)
    actual = drop_formats_absent_from(expected, model_shape(model))
    assert set(actual["properties"]) == set(expected["properties"])
    assert actual["required"] == expected["required"]
    assert actual["additionalProperties"] is False and expected["additionalProperties"] is False
    for field in expected["properties"]:
        assert actual["properties"][field] == expected["properties"][field], field
    assert actual == expected


@pytest.mark.parametrize(
    ("status_model", "vendor_model"),
    [(IntegrityJobStatus, DataIntegrityJobResource), (MaskingExecutionStatus, Execution)],
)
def test_status_is_the_vendor_resource_plus_kubernetes_fields(
    status_model: type[BaseModel], vendor_model: type[BaseModel]
) -> None:
    status, vendor = model_shape(status_model), model_shape(vendor_model)
    assert set(status["properties"]) == set(vendor["properties"]) | K8S_FIELDS
    assert status["required"] == vendor["required"]
    assert {k: v for k, v in status["properties"].items() if k not in K8S_FIELDS} == vendor["properties"]
    assert status["additionalProperties"] is False


@pytest.mark.parametrize(
    ("kind", "doc", "name"),
    [("IntegrityJob", PREQUEL, "DataIntegrityJobResource"), ("MaskingExecution", DELPHIX, "Execution")],
)
def test_crd_status_schema_matches_the_vendor_schema(kind: str, doc: dict[str, Any], name: str) -> None:
    crd = next(c for c in render_crds() if c["spec"]["names"]["kind"] == kind)
    status = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    expected = fixture_shape(doc, name)
    # A structural schema is closed by pruning instead of `additionalProperties: false`.
    actual = shape(status, {})
    assert set(actual["properties"]) == set(expected["properties"]) | K8S_FIELDS
    assert actual["required"] == expected["required"]
    for field, want in expected["properties"].items():
        got = drop_formats_absent_from(want, actual["properties"][field])
        assert _open(got) == _open(want), field


def _open(node: Any) -> Any:
    """Drop object closure, which a structural schema expresses by pruning (so it is not in the CRD)."""
    if isinstance(node, dict):
        return {
            k: _open(v) for k, v in node.items() if not (k == "additionalProperties" and isinstance(v, bool))
        }
    return node


def validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {**doc, "$ref": f"#/$defs/{name}"}, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def integrity_resource() -> DataIntegrityJobResource:
    return DataIntegrityJobResource(
        id="0b6f1f7e-2f0c-4c7e-9d0a-5d1f3c2b1a00",
        org_schema="acme_prod",
        submitted_at="2026-01-01T00:00:00Z",
        started_at="2026-01-01T00:00:01Z",
        ended_at="0001-01-01T00:00:00Z",
        destination_id="dest-1",
        status="RUNNING",
        model_ids=["orders"],
        model_sample_primary_ids={"orders": ["o-1"]},
        data_integrity_results=[
            DataIntegrityResultResource(
                model_name="orders",
                is_healthy=False,
                error_message="",
                sampling_rate=0.5,
                total_rows_compared=10,
                total_rows_stale=1,
                total_rows_pending=0,
                total_rows_missing=2,
                total_rows_incorrect=0,
                total_rows_orphaned=0,
                mismatched_partitions=[
                    MismatchedPartition(
                        source_row_count=5,
                        destination_row_count=3,
                        last_modified_lower_bound_epoch=1700000000,
                        last_modified_upper_bound_epoch=1700003600,
                    )
                ],
            )
        ],
        log_message="orders: 2 missing",
    )


def test_serialised_models_validate_against_the_fixtures() -> None:
    job = integrity_resource().model_dump(mode="json", by_alias=True, exclude_none=True)
    validator(PREQUEL, "DataIntegrityJobResource").validate(job)
    body = {"status": "success", "data": {"job": job}, "message": "cancellation requested"}
    validator(PREQUEL, "CancelDataIntegrityJobResponse").validate(body)
    validator(PREQUEL, "ErrorResponse").validate({"status": "error", "message": "not found", "data": None})
    execution = Execution(
        execution_id=3, job_id=167, connector_type="DATABASE", status="RUNNING", rows_total=-1
    )
    validator(DELPHIX, "Execution").validate(
        execution.model_dump(mode="json", by_alias=True, exclude_none=True)
    )
    # The status (vendor part plus Kubernetes fields) is not the vendor body: the extra fields are refused.
    status = MaskingExecutionStatus(job_id=167, observed_generation=1).model_dump(
        by_alias=True, exclude_none=True
    )
    assert not validator(DELPHIX, "Execution").is_valid(status)


def test_fixtures_reject_what_the_vendors_reject() -> None:
    job = integrity_resource().model_dump(mode="json", by_alias=True, exclude_none=True)
    assert not validator(PREQUEL, "DataIntegrityJobResource").is_valid({**job, "extra": 1})
    assert not validator(PREQUEL, "DataIntegrityJobResource").is_valid(
        {k: v for k, v in job.items() if k != "id"}
    )
    body = {"status": "success", "data": {"job": {**job, "status": 5}}, "message": ""}
    assert not validator(PREQUEL, "CancelDataIntegrityJobResponse").is_valid(body)
    assert not validator(DELPHIX, "Execution").is_valid({"jobId": 1, "status": "DONE"})
    assert not validator(DELPHIX, "Execution").is_valid({"executionId": 1})
    assert not validator(DELPHIX, "CancelExecutionParameters").is_valid(
        {"executionId": 1, "expectedStatus": "DONE"}
    )


@pytest.mark.parametrize("doc", [PREQUEL, DELPHIX], ids=["prequel", "delphix"])
def test_fixtures_are_valid_self_contained_draft_2020_12(doc: dict[str, Any]) -> None:
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(doc)
    refs = re.findall(r'"\$ref": "([^"]+)"', json.dumps(doc))
    assert all(r.startswith("#/$defs/") and r.removeprefix("#/$defs/") in doc["$defs"] for r in refs)
    assert len(refs) == (4 if doc is PREQUEL else 0)


def test_prequel_fixture_is_the_published_openapi() -> None:
    """The five component schemas are verbatim, and the 200 schema is the endpoint's (minus $schema/$id)."""
    source = (VENDOR / "source" / "prequel-cancel-data-integrity-job.md").read_text("utf-8")
    openapi = yaml.safe_load(source.split("````yaml", 1)[1].split("\n", 1)[1].split("````", 1)[0])
    as_defs = json.loads(json.dumps(openapi).replace("#/components/schemas/", "#/$defs/"))
    for name, schema in as_defs["components"]["schemas"].items():
        assert PREQUEL["$defs"][name] == schema, name
    ok = as_defs["paths"]["/destinations/{destination_id}/data-integrity/{job_id}/cancel"]["post"][
        "responses"
    ]["200"]
    schema = ok["content"]["application/json"]["schema"]
    schema["properties"]["data"] = {"$ref": schema["properties"]["data"]["$ref"]}
    assert PREQUEL["$defs"]["CancelDataIntegrityJobResponse"] == schema


def test_delphix_fixture_is_the_published_field_list() -> None:
    source = (VENDOR / "source" / "delphix-cancel-execution.md").read_text("utf-8")
    fields = source.split("## Response 200 fields (application/json):", 1)[1].split("## Response 400", 1)[0]
    listed = re.findall(r"- `(\w+)` \((\w+)(, required)?\)", fields)
    execution = DELPHIX["$defs"]["Execution"]
    assert [name for name, _, _ in listed] == list(execution["properties"])
    assert {name: typ for name, typ, _ in listed} == {
        k: v["type"] for k, v in execution["properties"].items()
    }
    assert [name for name, _, req in listed if req] == execution["required"] == ["jobId"]
    assert execution["properties"]["status"]["enum"] == [
        "CANCELLED",
        "FAILED",
        "QUEUED",
        "RUNNING",
        "SUCCEEDED",
        "WARNING",
    ]
    assert execution["properties"]["connectorType"]["enum"] == ["DATABASE", "FILE", "VSAM"]


@pytest.mark.parametrize("kind", [INTEGRITY_JOB, MASKING_EXECUTION], ids=lambda k: k.kind)
def test_the_adapters_view_drops_every_kubernetes_field_issue_14_added(kind: Any) -> None:
    """A retried, deadline-failed job's status (attempts, DeadlineExceeded and Retrying conditions, a cancel
    verdict) is served as the vendor resource alone, and still validates against the vendor's schema."""
    status: dict[str, Any] = {
        "IntegrityJob": {
            "id": "u1",
            "org_schema": "org",
            "submitted_at": "2026-01-01T00:00:00Z",
            "started_at": "2026-01-01T00:00:01Z",
            "ended_at": "2026-01-01T00:00:09Z",
            "destination_id": "dest-1",
            "status": "FAILED",
            "model_ids": ["m1"],
            "model_sample_primary_ids": {},
            "data_integrity_results": [],
            "log_message": "the deadline of 5 s passed",
        },
        "MaskingExecution": {
            "executionId": 3,
            "jobId": 7,
            "status": "FAILED",
            "rowsMasked": 0,
            "submitTime": "2026-01-01T00:00:00Z",
        },
    }[kind.kind]
    vendor_fields = set(status)
    condition = {"status": "True", "lastTransitionTime": "2026-01-01T00:00:09Z", "message": "m"}
    status |= {
        "attempts": 3,
        "observedGeneration": 2,
        "cancelRequestEvaluated": {"requestedAt": "2026-01-01T00:00:05Z", "accepted": False},
        "conditions": [
            {"type": t, "reason": t, **condition} for t in ("DeadlineExceeded", "Retrying", "CancelStuck")
        ],
    }
    view = vendor_view(kind, {"metadata": {"name": "j", "namespace": "n"}, "status": status})
    assert set(view) <= vendor_fields and not set(view) & K8S_FIELDS
    assert view["status"] == "FAILED"
