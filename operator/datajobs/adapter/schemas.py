"""The adapter's wire models: the vendors' response envelopes around the job models, and health bodies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from datajobs.models import DataIntegrityJobResource

_CLOSED = ConfigDict(extra="forbid", json_schema_extra={"additionalProperties": False})


class GetDataIntegrityJobResponse(BaseModel):
    """Prequel's GetDataIntegrityJobResponse: the job, wrapped."""

    model_config = _CLOSED

    job: DataIntegrityJobResource


class DataIntegrityJobSuccessResponse(BaseModel):
    """Prequel's success envelope for the data-integrity job endpoints (cancel and get)."""

    model_config = _CLOSED

    status: Literal["success"]
    data: GetDataIntegrityJobResponse
    message: str


class ErrorResponse(BaseModel):
    """Prequel's ErrorResponse."""

    model_config = _CLOSED

    status: Literal["error"]
    message: str
    data: None = None


class ErrorMessage(BaseModel):
    """The Delphix Masking Engine's error body."""

    model_config = _CLOSED

    errorMessage: str = Field(description="Why the request failed.")


class HealthResponse(BaseModel):
    """Body of /healthz and /readyz."""

    model_config = _CLOSED

    status: Literal["ok", "ready", "not ready"]
    waiting: list[str] | None = Field(default=None, description="Caches that have not synced yet.")
