"""Assemble the CustomResourceDefinition of each kind from its models and KindInfo."""

from __future__ import annotations

from typing import Any

from datajobs.crdgen.podtemplate import load as load_pod_template
from datajobs.crdgen.schema import structural_schema
from datajobs.models.kinds import CATEGORY, GROUP, INTEGRITY_JOB, KINDS, MASKING_EXECUTION, VERSION, KindInfo

# The worker pod carries the job's name as the value of the `datajobs.io/job` label, and label values
# are limited to 63 characters, so longer names would be accepted here and then fail at dispatch.
MAX_NAME_LENGTH = 63

# Once a job is CANCELLED, spec.cancelRequested is frozen: it may be neither removed nor changed.
# Why a root-level rule: it needs both spec and status, and only the root sees both. Why this shape:
# - It is a transition rule (oldSelf), so it runs on updates only, and the root always exists on both
#   sides of an update: no optionalOldSelf is needed.
# - It constrains cancelRequested alone, so every other update of a cancelled job still passes: kopf's
#   finalizer and annotation patches, label edits, and the operator's own status writes (on /status the
#   API server keeps the old spec, so the comparison is trivially equal).
# - It compares presence on both sides before the values, so a CANCELLED job that (against the
#   lifecycle) had no request would not be frozen for every other update either.
# - It checks oldSelf's status, not self's: the status a user sends with a spec update is discarded
#   (status subresource), and the old one is what the operator wrote.
CANCEL_FROZEN_RULE: dict[str, Any] = {
    "rule": (
        "!has(oldSelf.status) || !has(oldSelf.status.status) || oldSelf.status.status != 'CANCELLED' || "
        "(has(self.spec.cancelRequested) == has(oldSelf.spec.cancelRequested) && "
        "(!has(self.spec.cancelRequested) || self.spec.cancelRequested == oldSelf.spec.cancelRequested))"
    ),
    "message": "spec.cancelRequested cannot be removed or changed once the job is CANCELLED",
    "fieldPath": ".spec.cancelRequested",
    "reason": "FieldValueForbidden",
}

# Once a job has left QUEUED its worker runs with the spec it was dispatched with, so every spec field but
# cancelRequested is frozen: an edit is refused (not accepted and silently ignored). One rule per field, so
# the API server names the field. Same shape as CANCEL_FROZEN_RULE: a root transition rule that reads the
# old status, compares presence before values, and passes every status write (the spec is unchanged there).
FROZEN_AFTER_QUEUED = (
    "!has(oldSelf.status) || !has(oldSelf.status.status) || oldSelf.status.status == 'QUEUED'"
)


def spec_frozen_rules(info: KindInfo) -> list[dict[str, Any]]:
    """One rule per spec field except cancelRequested: unchanged once the job has left QUEUED."""
    rules = []
    for name, field in info.spec_model.model_fields.items():
        key = field.alias or name
        if key == "cancelRequested":
            continue
        same = (
            f"has(self.spec.{key}) == has(oldSelf.spec.{key}) && "
            f"(!has(self.spec.{key}) || self.spec.{key} == oldSelf.spec.{key})"
        )
        rules.append(
            {
                "rule": f"{FROZEN_AFTER_QUEUED} || ({same})",
                "messageExpression": (
                    f"'spec.{key} cannot be changed once the job has left QUEUED (it is ' + "
                    "oldSelf.status.status + '): the worker runs with the spec it was dispatched with; "
                    "only spec.cancelRequested may still be set'"
                ),
                "fieldPath": f".spec.{key}",
                "reason": "FieldValueForbidden",
            }
        )
    return rules


_AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
_STATUS_COLUMN = {
    "name": "Status",
    "type": "string",
    "jsonPath": ".status.status",
    "description": "The current status of the job.",
}
PRINTER_COLUMNS: dict[str, list[dict[str, Any]]] = {
    INTEGRITY_JOB.kind: [
        _STATUS_COLUMN,
        {
            "name": "Destination",
            "type": "string",
            "jsonPath": ".spec.destinationId",
            "description": "The destination checked.",
        },
        _AGE_COLUMN,
    ],
    MASKING_EXECUTION.kind: [
        _STATUS_COLUMN,
        {"name": "Job", "type": "integer", "jsonPath": ".spec.jobId", "description": "The masking job."},
        {
            "name": "Execution",
            "type": "integer",
            "jsonPath": ".status.executionId",
            "description": "The execution ID the operator assigned.",
        },
        _AGE_COLUMN,
    ],
}


def openapi_schema(info: KindInfo) -> dict[str, Any]:
    """The openAPIV3Schema of one kind: standard envelope, generated spec and status, root rules."""
    return {
        "description": info.description,
        "type": "object",
        "required": ["spec"],
        "properties": {
            "apiVersion": {
                "description": (
                    "APIVersion defines the versioned schema of this representation of an object."
                ),
                "type": "string",
            },
            "kind": {
                "description": "Kind is the REST resource this object represents.",
                "type": "string",
            },
            "metadata": {
                "type": "object",
                "properties": {"name": {"type": "string", "maxLength": MAX_NAME_LENGTH}},
            },
            "spec": structural_schema(info.spec_model, load_pod_template),
            "status": structural_schema(info.status_model, load_pod_template),
        },
        "x-kubernetes-validations": [CANCEL_FROZEN_RULE, *spec_frozen_rules(info)],
    }


def crd(info: KindInfo) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": info.crd_name},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.singular,
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema(info)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS[info.kind],
                }
            ],
        },
    }


def render_crds() -> list[dict[str, Any]]:
    """One CustomResourceDefinition per kind, in KINDS order (used by `datajobs crds` and `datajobs dev`)."""
    return [crd(info) for info in KINDS]
