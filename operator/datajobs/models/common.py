"""Types shared by both kinds: the job status enum, the cancel request, and metav1.Condition."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from datajobs.models.status import TERMINAL_STATUSES as TERMINAL_STATUSES  # (re-exported)
from datajobs.models.status import JobStatus as JobStatus


class CamelModel(BaseModel):
    """Base for Kubernetes-style (camelCase) objects that reject unknown fields."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CancelRequest(CamelModel):
    """A request to cancel the job. Its presence in the spec is the request."""

    expected_status: Literal["QUEUED", "RUNNING"] | None = Field(
        default=None,
        description=(
            "The expected status of the job to cancel, to prevent cancelling a queued job that has "
            "transitioned to a running state since the request was issued (a compare-and-set guard). "
            "When it does not match the job's status, the request is rejected and the job goes on."
        ),
    )
    graceful: bool = Field(
        default=False,
        description=(
            "A cancellation strategy: when true the worker gets its full termination grace period to "
            "re-enable SQL objects (triggers, constraints) that were disabled earlier in the execution "
            "before terminating; when false it is stopped promptly and no cleanup is promised."
        ),
    )
    requested_at: str | None = Field(
        default=None,
        description=(
            "When the request was issued (set by the HTTP adapter). A client that repeats a request sets "
            "a new value, so the request is a new generation and is evaluated afresh."
        ),
        max_length=64,
        json_schema_extra={"format": "date-time"},
    )
    escalate_after_seconds: int | None = Field(
        default=None,
        ge=1,
        le=86400,
        description=(
            "Optional escalation of a stuck cancel: when the worker pod still exists this many seconds "
            "after the CancelStuck condition was raised (its grace long over: a finalizer, a lost node), "
            "the operator deletes it again with a grace period of 0. The job is still CANCELLED only once "
            "the pod is gone. Default: no escalation."
        ),
    )


# metav1.Condition's own validation (k8s.io/apimachinery/pkg/apis/meta/v1/types.go).
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Condition(BaseModel):
    """Standard Kubernetes condition (metav1.Condition)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(
        description="Type of condition in CamelCase.", max_length=316, pattern=CONDITION_TYPE_PATTERN
    )
    status: Literal["True", "False", "Unknown"] = Field(description="Status of the condition.")
    observedGeneration: int | None = Field(
        default=None, ge=0, description="The .metadata.generation that the condition was set based upon."
    )
    lastTransitionTime: str = Field(
        description="Last time the condition transitioned from one status to another.",
        json_schema_extra={"format": "date-time"},
    )
    reason: str = Field(
        description="A programmatic identifier for the reason of the last transition, in CamelCase.",
        max_length=1024,
        min_length=1,
        pattern=CONDITION_REASON_PATTERN,
    )
    message: str = Field(description="A human readable message about the transition.", max_length=32768)


def conditions_field(**extra: Any) -> Any:
    """The `conditions` list, keyed by type like every built-in Kubernetes status."""
    return Field(
        default=None,
        description="Standard Kubernetes conditions: Queued, Running, Cancelling, CancelRequest, Finished.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], **extra},
    )


def cancel_request_evaluated_field() -> Any:
    return Field(
        default=None,
        description=(
            "The spec.cancelRequested the CancelRequest condition is the verdict on: a request with other "
            "content is evaluated afresh; other changes never re-open a verdict."
        ),
    )


def observed_generation_field() -> Any:
    return Field(default=None, ge=0, description="The most recent generation the operator has acted on.")


POD_TEMPLATE_MARKER = "x-datajobs-pod-template-spec"


def pod_template_field() -> Any:
    """A core/v1 PodTemplateSpec; the CRD generator substitutes Kubernetes' own schema for it."""
    return Field(
        default=None,
        description=(
            "Pod template for the worker. When omitted, the operator's configured default worker "
            "(`datajobs worker <kind>`) is used. The operator adds labels, the owner reference, "
            "restartPolicy: Never and the job's parameters as DATAJOBS_* environment variables."
        ),
        json_schema_extra={POD_TEMPLATE_MARKER: True},
    )


def cancel_requested_field() -> Any:
    return Field(
        default=None,
        description=(
            "Set this to request cancellation (its presence is the request). Honours expectedStatus "
            "and graceful. Once the job is CANCELLED it can be neither removed nor changed."
        ),
    )


def connection_secret_field() -> Any:
    return Field(
        default=None,
        min_length=1,
        max_length=253,
        description=(
            "Name of a Secret in the job's namespace with the worker's connection details; its keys become "
            "environment variables of the worker container (see docs/worker-protocol.md)."
        ),
    )


def start_deadline_field() -> Any:
    return Field(
        default=None,
        ge=1,
        le=604800,
        description=(
            "How long the worker may take to start (seconds from dispatch until its container runs), e.g. "
            "while its image is pulled or it waits for a node. Past it the job ends FAILED with the reason "
            "and its pod is removed. Default: the operator's --worker-start-deadline (300 s)."
        ),
    )


def active_deadline_field() -> Any:
    return Field(
        default=None,
        ge=1,
        le=2592000,
        description=(
            "How long the job may run (seconds from dispatch). Past it the operator stops the worker "
            "gracefully and, once its pod is gone, the job ends FAILED with reason DeadlineExceeded. "
            "Default: the operator's --active-deadline (off unless set)."
        ),
    )


def ttl_after_finished_field() -> Any:
    return Field(
        default=None,
        ge=0,
        le=31536000,
        description=(
            "Delete the job this many seconds after it finished (any terminal status), with everything it "
            "owns (its worker pod, its kept logs). Default: the operator's --ttl-after-finished (off "
            "unless set)."
        ),
    )


def backoff_limit_field() -> Any:
    return Field(
        default=None,
        ge=0,
        le=10,
        description=(
            "How many times a failed worker (a non-zero exit, a crash, OOM: not the user's doing) is run "
            "again, after 2, 4, 8, ... s. A cancel, a deadline or a rejected cancel is never retried. "
            "status.attempts is the attempt running now. Default 0."
        ),
    )


def attempts_field() -> Any:
    return Field(
        default=None,
        ge=1,
        description="The attempt running now, or the last one (absent: the first); see spec.backoffLimit.",
    )
