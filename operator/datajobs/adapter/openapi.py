"""The adapter's OpenAPI 3.1 document, generated from the same pydantic models as the CRD status."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from datajobs.adapter.schemas import (
    DataIntegrityJobSuccessResponse,
    ErrorMessage,
    ErrorResponse,
    HealthResponse,
)
from datajobs.models import Execution

REF = "#/components/schemas/{model}"
PREQUEL_TAG = "Data Integrity (Prequel Data Export API)"
DELPHIX_TAG = "Execution (Delphix Masking Engine API)"
OPS_TAG = "Operations"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _json(description: str, model: type[BaseModel], headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(model)}},
    }
    if headers:
        response["headers"] = headers
    return response


def _errors(model: type[BaseModel], auth_status: str, auth_text: str) -> dict[str, Any]:
    retry_after = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "string"}}}
    return {
        "400": _json("Bad Request: invalid input, a finished job, or an expectedStatus mismatch.", model),
        auth_status: _json(auth_text, model),
        "404": _json("Not Found: no such job, or not in a namespace the key may touch.", model),
        "500": _json("Internal Server Error: the Kubernetes API server failed the request.", model),
        "503": _json("Service Unavailable: the adapter's cache has not synced yet.", model, retry_after),
    }


def _path_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


PREQUEL_PARAMS = [
    _path_param("destination_id", "Destination ID.", {"type": "string"}),
    _path_param("job_id", "Integrity Job ID (the IntegrityJob's metadata.uid).", {"type": "string"}),
]
DELPHIX_PARAMS = [_path_param("executionId", "The ID of the execution.", {"type": "integer"})]
CANCEL_QUERY = [
    {
        "name": "expectedStatus",
        "in": "query",
        "required": False,
        "description": (
            "The expected status of the execution to cancel, to prevent cancelling a queued job that has "
            "transitioned to a running state since the request was issued."
        ),
        "schema": {"type": "string", "enum": ["QUEUED", "RUNNING"]},
    },
    {
        "name": "graceful",
        "in": "query",
        "required": False,
        "description": (
            "A cancellation strategy to re-enable SQL objects that were disabled earlier in the execution "
            "before terminating."
        ),
        "schema": {"type": "boolean"},
    },
]
PREQUEL_SECURITY: list[dict[str, list[str]]] = [{"ApiKeyAuth": []}]
DELPHIX_SECURITY: list[dict[str, list[str]]] = [{"DelphixAuthorization": []}, {"ApiKeyAuth": []}]


def build_openapi(version: str) -> dict[str, Any]:
    _, top = models_json_schema(
        [
            (m, "serialization")
            for m in (DataIntegrityJobSuccessResponse, ErrorResponse, Execution, ErrorMessage, HealthResponse)
        ],
        ref_template=REF,
    )
    prequel_errors = _errors(ErrorResponse, "401", "Unauthorized: missing or invalid X-API-KEY.")
    delphix_errors = _errors(ErrorMessage, "403", "Forbidden: missing or invalid API key.")
    prequel_ok = _json("OK", DataIntegrityJobSuccessResponse)
    delphix_ok = _json("OK", Execution)
    health = {"description": "OK", "content": {"application/json": {"schema": _ref(HealthResponse)}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "datajobs adapter",
            "version": version,
            "description": (
                "Prequel's and Delphix's job endpoints, served over the datajobs operator's custom resources."
                " "
                "A cancel sets the job's spec.cancelRequested (a merge patch preconditioned on the "
                "resourceVersion read); the operator stops the worker pod and marks the job CANCELLED."
            ),
        },
        "paths": {
            "/destinations/{destination_id}/data-integrity/{job_id}/cancel": {
                "post": {
                    "tags": [PREQUEL_TAG],
                    "summary": "Cancel specific data integrity job for a destination",
                    "description": "Request cancellation of a data integrity job by ID.",
                    "operationId": "create-data-integrity-job-cancellation-request",
                    "parameters": PREQUEL_PARAMS,
                    "security": PREQUEL_SECURITY,
                    "responses": {"200": prequel_ok, **prequel_errors},
                }
            },
            "/destinations/{destination_id}/data-integrity/{job_id}": {
                "get": {
                    "tags": [PREQUEL_TAG],
                    "summary": "Get specific data integrity job for a destination",
                    "operationId": "get-data-integrity-job",
                    "parameters": PREQUEL_PARAMS,
                    "security": PREQUEL_SECURITY,
                    "responses": {"200": prequel_ok, **prequel_errors},
                }
            },
            "/executions/{executionId}/cancel": {
                "post": {
                    "tags": [DELPHIX_TAG],
                    "summary": "Cancel execution by ID",
                    "operationId": "cancelExecution",
                    "parameters": DELPHIX_PARAMS + CANCEL_QUERY,
                    "security": DELPHIX_SECURITY,
                    "responses": {"200": delphix_ok, **delphix_errors},
                }
            },
            "/executions/{executionId}": {
                "get": {
                    "tags": [DELPHIX_TAG],
                    "summary": "Get execution by ID",
                    "operationId": "getExecutionById",
                    "parameters": DELPHIX_PARAMS,
                    "security": DELPHIX_SECURITY,
                    "responses": {"200": delphix_ok, **delphix_errors},
                }
            },
            "/healthz": {
                "get": {
                    "tags": [OPS_TAG],
                    "summary": "Liveness",
                    "operationId": "healthz",
                    "security": [],
                    "responses": {"200": health},
                }
            },
            "/readyz": {
                "get": {
                    "tags": [OPS_TAG],
                    "summary": "Readiness: 200 once the job cache has synced",
                    "operationId": "readyz",
                    "security": [],
                    "responses": {"200": health, "503": {**health, "description": "Not ready yet"}},
                }
            },
            "/metrics": {
                "get": {
                    "tags": [OPS_TAG],
                    "summary": "Prometheus metrics",
                    "operationId": "metrics",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "tags": [OPS_TAG],
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": {
                        "200": {
                            "description": "OK",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": top["$defs"],
            "securitySchemes": {
                "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-KEY"},
                "DelphixAuthorization": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The API key, raw or as `Bearer <key>`.",
                },
            },
        },
    }
