"""IntegrityJob: spec, and a status that carries Prequel's DataIntegrityJobResource verbatim."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from datajobs.models.common import (
    CamelModel,
    CancelRequest,
    Condition,
    active_deadline_field,
    attempts_field,
    backoff_limit_field,
    cancel_request_evaluated_field,
    cancel_requested_field,
    conditions_field,
    connection_secret_field,
    observed_generation_field,
    pod_template_field,
    start_deadline_field,
    ttl_after_finished_field,
)


class IntegrityJobSpec(CamelModel):
    """Desired state of an IntegrityJob: a data-integrity check of a destination against its source."""

    destination_id: str = Field(
        min_length=1,
        max_length=253,
        description="The unique identifier of the destination to check. Immutable.",
        json_schema_extra={
            "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "destinationId is immutable"}]
        },
    )
    org_schema: str | None = Field(default=None, max_length=253, description="The organisation's schema.")
    model_ids: list[str] | None = Field(
        default=None, max_length=1000, description="List of model identifiers to check."
    )
    model_sample_primary_ids: dict[str, list[str]] | None = Field(
        default=None,
        description="Mapping of primary ids used for sampling in each model (checks exactly these ids).",
    )
    sampling_rate: float | None = Field(
        default=None, gt=0, le=1, description="The rate at which data is sampled (0 < rate <= 1)."
    )
    connection_secret_name: str | None = connection_secret_field()
    start_deadline_seconds: int | None = start_deadline_field()
    active_deadline_seconds: int | None = active_deadline_field()
    ttl_seconds_after_finished: int | None = ttl_after_finished_field()
    backoff_limit: int | None = backoff_limit_field()
    template: dict[str, Any] | None = pod_template_field()
    cancel_requested: CancelRequest | None = cancel_requested_field()


class MismatchedPartition(BaseModel):
    """A partition (time bucket over the last-modified column) whose hashes did not match."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"additionalProperties": False})

    source_row_count: int = Field(description="Number of rows in the partition at the source.")
    destination_row_count: int = Field(description="Number of rows in the partition at the destination.")
    last_modified_lower_bound_epoch: int = Field(
        description="Lower bound of the partition's last-modified values, in seconds since the epoch."
    )
    last_modified_upper_bound_epoch: int = Field(
        description="Upper bound of the partition's last-modified values, in seconds since the epoch."
    )


class DataIntegrityResultResource(BaseModel):
    """Result of the integrity check of one model (Prequel's DataIntegrityResultResource)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"additionalProperties": False})

    model_name: str = Field(description="Name of the model checked for integrity.")
    is_healthy: bool = Field(description="Indicator of whether the model data is healthy.")
    error_message: str = Field(description="Error message if there is an issue with the data integrity.")
    sampling_rate: float = Field(description="The rate at which data is sampled for integrity checks.")
    total_rows_compared: int = Field(description="Total number of rows compared during the integrity check.")
    total_rows_stale: int = Field(description="Number of rows that are outdated or no longer relevant.")
    total_rows_pending: int = Field(description="Number of rows pending to be updated or processed.")
    total_rows_missing: int = Field(description="Number of rows that are expected but missing.")
    total_rows_incorrect: int = Field(description="Number of rows that do not match the expected values.")
    total_rows_orphaned: int = Field(
        description=(
            "Number of rows that exist without corresponding parent entries. This is likely due to hard "
            "deletes in the source"
        )
    )
    mismatched_partitions: list[MismatchedPartition] | None = Field(
        default=None, description="The partitions that did not have matching hashes."
    )


class DataIntegrityJobResource(BaseModel):
    """Prequel's DataIntegrityJobResource, field for field."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"additionalProperties": False})

    id: str = Field(description="Integrity job ID (the IntegrityJob's metadata.uid).")
    org_schema: str = Field(description="The organisation's schema.")
    submitted_at: str = Field(
        description="Timestamp when the job was submitted.", json_schema_extra={"format": "date-time"}
    )
    started_at: str = Field(
        description="Timestamp when the job started execution (0001-01-01T00:00:00Z until then).",
        json_schema_extra={"format": "date-time"},
    )
    ended_at: str = Field(
        description="Timestamp when the job ended execution (0001-01-01T00:00:00Z until then).",
        json_schema_extra={"format": "date-time"},
    )
    destination_id: str = Field(
        description="The unique identifier of the destination associated with this job."
    )
    status: str = Field(description="The current status of the job.")
    model_ids: list[str] = Field(description="List of model identifiers related to the job.")
    model_sample_primary_ids: dict[str, list[str]] = Field(
        description="Mapping of primary ids used for sampling in each model."
    )
    data_integrity_results: list[DataIntegrityResultResource] = Field(
        description="Results of the data integrity checks."
    )
    log_message: str = Field(
        description="A message logging the result of the integrity check for each specific model."
    )


class IntegrityJobStatus(DataIntegrityJobResource):
    """Observed state: the vendor resource plus Kubernetes' observedGeneration and conditions."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={})

    observedGeneration: int | None = observed_generation_field()
    conditions: list[Condition] | None = conditions_field()
    cancelRequestEvaluated: CancelRequest | None = cancel_request_evaluated_field()
    attempts: int | None = attempts_field()


VENDOR_FIELDS = tuple(DataIntegrityJobResource.model_fields)
