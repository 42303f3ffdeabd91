"""The API types: pydantic models that are the single source of the CRDs and the adapter's schemas."""

from datajobs.models.common import TERMINAL_STATUSES, CancelRequest, Condition, JobStatus
from datajobs.models.integrity import (
    DataIntegrityJobResource,
    DataIntegrityResultResource,
    IntegrityJobSpec,
    IntegrityJobStatus,
    MismatchedPartition,
)
from datajobs.models.kinds import GROUP, INTEGRITY_JOB, KINDS, MASKING_EXECUTION, VERSION, KindInfo
from datajobs.models.masking import ConnectorType, Execution, MaskingExecutionSpec, MaskingExecutionStatus

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
