"""The API types: pydantic models that are the single source of the CRDs and the adapter's schemas.

The names and the status enum load at once; each model loads (with pydantic) when first named, so a
process that uses only the names (the operator) never pays for pydantic."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from datajobs.models.kinds import GROUP, INTEGRITY_JOB, KINDS, MASKING_EXECUTION, VERSION, KindInfo
from datajobs.models.status import TERMINAL_STATUSES, JobStatus

if TYPE_CHECKING:
    from datajobs.models.common import CancelRequest, Condition
    from datajobs.models.integrity import (
        DataIntegrityJobResource,
        DataIntegrityResultResource,
        IntegrityJobSpec,
        IntegrityJobStatus,
        MismatchedPartition,
    )
    from datajobs.models.masking import ConnectorType, Execution, MaskingExecutionSpec, MaskingExecutionStatus

_LAZY = {
    "CancelRequest": "common",
    "Condition": "common",
    "DataIntegrityJobResource": "integrity",
    "DataIntegrityResultResource": "integrity",
    "IntegrityJobSpec": "integrity",
    "IntegrityJobStatus": "integrity",
    "MismatchedPartition": "integrity",
    "ConnectorType": "masking",
    "Execution": "masking",
    "MaskingExecutionSpec": "masking",
    "MaskingExecutionStatus": "masking",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"datajobs.models.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "GROUP",
    "INTEGRITY_JOB",
    "KINDS",
    "MASKING_EXECUTION",
    "TERMINAL_STATUSES",
    "VERSION",
    "CancelRequest",
    "Condition",
    "ConnectorType",
    "DataIntegrityJobResource",
    "DataIntegrityResultResource",
    "Execution",
    "IntegrityJobSpec",
    "IntegrityJobStatus",
    "JobStatus",
    "KindInfo",
    "MaskingExecutionSpec",
    "MaskingExecutionStatus",
    "MismatchedPartition",
]
