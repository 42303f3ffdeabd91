"""Per-kind knowledge of the vendor status: field names, the initial QUEUED status, results from a worker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from datajobs.core.result_schema import SCHEMA as RESULT_SCHEMA
from datajobs.core.resultcheck import ShapeError, conform
from datajobs.models.kinds import INTEGRITY_JOB, MASKING_EXECUTION, KindInfo
from datajobs.models.status import JobStatus

GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # what Prequel's Go service returns for a time not reached yet
INT64_MAX = 2**63 - 1  # a status integer beyond it is refused by the API server (422) on every write
COUNTS = ("rowsMasked", "rowsTotal", "bytesProcessed", "bytesTotal")


class MalformedReport(ValueError):
    """A worker's termination message or progress annotation that does not fit the protocol."""


@dataclass(frozen=True)
class StatusShape:
    """Where each lifecycle fact lives in one kind's vendor status."""

    kind: KindInfo
    submitted: str
    started: str
    ended: str
    observed_generation: str = "observedGeneration"

    def initial(self, meta: dict[str, Any], spec: dict[str, Any], now: str, execution_id: int | None) -> dict:
        if self.kind is INTEGRITY_JOB:
            return {
                "id": meta["uid"],
                "org_schema": spec.get("orgSchema") or "",
                "submitted_at": now,
                "started_at": GO_ZERO_TIME,
                "ended_at": GO_ZERO_TIME,
                "destination_id": spec["destinationId"],
                "status": JobStatus.QUEUED.value,
                "model_ids": list(spec.get("modelIds") or []),
                "model_sample_primary_ids": dict(spec.get("modelSamplePrimaryIds") or {}),
                "data_integrity_results": [],
                "log_message": "",
            }
        status: dict[str, Any] = {
            "executionId": execution_id,
            "jobId": spec["jobId"],
            "status": JobStatus.QUEUED.value,
            "submitTime": now,
        }
        for field in ("connectorType", "sourceConnectorId", "targetConnectorId"):
            if spec.get(field) is not None:
                status[field] = spec[field]
        return status

    def apply_progress(self, status: dict[str, Any], progress: dict[str, Any]) -> None:
        """Merge a running worker's progress annotation into the status (known keys only)."""
        for key, value in progress.items():
            if key in self.progress_keys and isinstance(value, type(self.progress_keys[key])):
                if isinstance(value, bool) or (isinstance(value, int) and _count_error(key, value)):
                    continue  # progress is best effort: a number out of range is left out
                status[key] = value

    @property
    def progress_keys(self) -> dict[str, Any]:
        if self.kind is INTEGRITY_JOB:
            return {"log_message": ""}
        return {"rowsMasked": 0, "rowsTotal": 0, "bytesProcessed": 0, "bytesTotal": 0}

    def apply_result(self, status: dict[str, Any], message: str) -> str | None:
        """Merge a worker's final report into the status; returns the status the worker claims, if any.

        Raises MalformedReport when the message is present but does not fit the protocol."""
        if not message.strip():
            return None
        try:
            report = json.loads(message)
        except json.JSONDecodeError as exc:
            raise MalformedReport(f"not JSON ({exc.msg} at char {exc.pos})") from exc
        if not isinstance(report, dict):
            raise MalformedReport("not a JSON object")
        claimed = report.get("status")
        if claimed is not None and claimed not in {s.value for s in JobStatus}:
            raise MalformedReport(f"unknown status {claimed!r}")
        if self.kind is INTEGRITY_JOB:
            results = report.get("data_integrity_results", [])
            log_message = report.get("log_message", "")
            if not isinstance(results, list) or not isinstance(log_message, str):
                raise MalformedReport("data_integrity_results must be a list and log_message a string")
            try:
                parsed = [conform(r, RESULT_SCHEMA, str(i)) for i, r in enumerate(results)]
            except ShapeError as exc:
                raise MalformedReport(f"data_integrity_results: {exc}") from exc
            for index, result in enumerate(parsed):
                _check_result(index, result)
            missing = _missing_results(report, parsed, status.get("model_ids") or [])
            if missing:
                log_message = f"{log_message} -- INCOMPLETE: {missing}" if log_message else missing
                if claimed in (None, JobStatus.SUCCEEDED.value):
                    claimed = JobStatus.WARNING.value  # never SUCCEEDED as if complete
            status["data_integrity_results"] = parsed
            status["log_message"] = log_message
        else:
            for key in self.progress_keys:
                if key in report:
                    value = report[key]
                    if not isinstance(value, int) or isinstance(value, bool):
                        raise MalformedReport(f"{key} must be an integer")
                    error = _count_error(key, value)
                    if error:
                        raise MalformedReport(error)
                    status[key] = value
        return claimed

    def message_field(self) -> str | None:
        """The vendor field that carries a human-readable outcome, when the vendor has one."""
        return "log_message" if self.kind is INTEGRITY_JOB else None


def _count_error(key: str, value: int) -> str:
    """Why a worker's count cannot go into the status ("" when it can): -1 (not known yet) for totals,
    otherwise 0 up to int64."""
    low = -1 if key in ("rowsTotal", "bytesTotal") else 0
    return "" if low <= value <= INT64_MAX else f"{key} {value} is out of range [{low}, {INT64_MAX}]"


def _check_result(index: int, result: dict[str, Any]) -> None:
    for name, value in result.items():
        if name.startswith("total_rows_") and not 0 <= value <= INT64_MAX:
            raise MalformedReport(f"data_integrity_results[{index}].{name} {value} is out of range")
    if not 0 <= result["sampling_rate"] <= 1:
        raise MalformedReport(
            f"data_integrity_results[{index}].sampling_rate {result['sampling_rate']} is not in [0, 1]"
        )
    for p_index, part in enumerate(result.get("mismatched_partitions") or []):
        for name, value in part.items():
            if not -INT64_MAX <= value <= INT64_MAX:
                raise MalformedReport(
                    f"data_integrity_results[{index}].mismatched_partitions[{p_index}].{name} is out of range"
                )


def _missing_results(report: dict[str, Any], parsed: list[dict[str, Any]], model_ids: list[str]) -> str:
    """What the report plainly lacks: results cut to fit the termination message, or models without one."""
    cut = report.get("data_integrity_resultsTruncated")
    if isinstance(cut, int) and not isinstance(cut, bool) and cut > 0:
        return (
            f"{cut} model result(s) did not fit in the worker's 4096-byte termination message and are "
            "missing "
            "here (the worker could not write its result annotation; see its log)"
        )
    named = {r["model_name"] for r in parsed}
    absent = [m for m in model_ids if m not in named]
    if absent and len(parsed) < len(model_ids):
        return f"{len(absent)} of {len(model_ids)} models have no result (first: {absent[0]})"
    return ""


SUMMARY_MAX_CHARS = 4096


def report_summary(message: str) -> str:
    """What a worker's final report says for people: its message, and each object it left disabled with
    the SQL that restores it (docs/worker-protocol.md). Empty for no report or one that is not JSON."""
    try:
        report = json.loads(message) if message.strip() else {}
    except json.JSONDecodeError:
        return ""
    if not isinstance(report, dict):
        return ""
    parts = [text for key in ("message", "log_message") if isinstance(text := report.get(key), str) and text]
    left = report.get("leftDisabled")
    if isinstance(left, list) and left:
        items = [
            f"{e.get('object', '?')} (restore: {e.get('restoreSql', '?')})" if isinstance(e, dict) else str(e)
            for e in left
        ]
        parts.append("left disabled: " + "; ".join(items))
    summary = "; ".join(parts)
    return summary if len(summary) <= SUMMARY_MAX_CHARS else summary[: SUMMARY_MAX_CHARS - 1] + "…"


SHAPES: dict[str, StatusShape] = {
    INTEGRITY_JOB.kind: StatusShape(INTEGRITY_JOB, "submitted_at", "started_at", "ended_at"),
    MASKING_EXECUTION.kind: StatusShape(MASKING_EXECUTION, "submitTime", "startTime", "endTime"),
}
