"""The job status enum and its terminal values: plain Python, for the operator, which never loads pydantic."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Lifecycle state of a job; the same six values for both kinds (the vendors' enum)."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    WARNING = "WARNING"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_STATUSES = frozenset({JobStatus.SUCCEEDED, JobStatus.WARNING, JobStatus.FAILED, JobStatus.CANCELLED})
